/**
 * Calling Tollbooth from a web or Node app, fully typed, from the OpenAPI document.
 *
 * Copy this file and generate the `paths` type beside it:
 *
 *     npm install openapi-fetch
 *     npm install --save-dev openapi-typescript@7 typescript@5
 *     npx openapi-typescript docs/openapi.json -o src/tollbooth/api.d.ts
 *
 * (A running stack serves the same document at GET /v1/openapi.json.)
 *
 * Every path, parameter, header, body and response below is checked by the compiler:
 * tests/clients/test_generated_clients.py generates api.d.ts from docs/openapi.json and
 * compiles this file with `tsc --strict`, so it cannot drift from the API.
 */
import createClient from "openapi-fetch";
import type { paths } from "./api";

/** One client per caller: a user's Cognito token, or a service's bearer token. */
export function tollbooth(baseUrl: string, token: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}

export type Tollbooth = ReturnType<typeof tollbooth>;

/** Errors are always {"error": {"code", "message"}}; the HTTP status says which kind. */
export class TollboothError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

/** What a consume of the same request would debit now, without debiting anything. */
export async function quote(api: Tollbooth): Promise<string> {
  const { data, error, response } = await api.POST("/v1/quotes", {
    body: {
      feature: "image_generation",
      quantity: 2,
      dimensions: { resolution: "4k", licence: "commercial" },
    },
  });
  if (error) {
    throw new TollboothError(response.status, error.error.code, error.error.message);
  }
  // Credits are decimal strings ("8.000"): never parse them into a float.
  console.log(`rounded from ${data.breakdown.exact} to ${data.breakdown.rounded}`);
  return data.credits;
}

/**
 * Debit the account for a piece of work. Pass the same Idempotency-Key when you retry the
 * same work (a job id, say): a retry gets the first answer back and is not debited twice.
 * Returns the balance after the debit, or null when the account has too few credits
 * (402: nothing was debited).
 */
export async function consume(api: Tollbooth, accountId: string, jobId: string): Promise<string | null> {
  const { data, error, response } = await api.POST("/v1/accounts/{account_id}/consume", {
    params: {
      path: { account_id: accountId },
      header: { "Idempotency-Key": jobId },
    },
    body: {
      feature: "image_generation",
      quantity: 2,
      dimensions: { resolution: "4k", licence: "commercial" },
    },
  });
  if (error) {
    if (response.status === 402) {
      return null;
    }
    throw new TollboothError(response.status, error.error.code, error.error.message);
  }
  console.log(`charged ${data.charged} (entry ${data.entry_id}, catalog ${data.catalog_version})`);
  return data.balance;
}

/** A credit-issuing service grants 12.5 bonus credits (a decimal string, at most 3 places). */
export async function grant(api: Tollbooth, accountId: string, grantId: string): Promise<string> {
  const { data, error, response } = await api.POST("/v1/accounts/{account_id}/grants", {
    params: {
      path: { account_id: accountId },
      header: { "Idempotency-Key": grantId },
    },
    body: {
      credits: "12.5",
      source: "bonus",
      reason: "Welcome bonus",
      expires_at: "2027-01-31T00:00:00Z",
    },
  });
  if (error) {
    throw new TollboothError(response.status, error.error.code, error.error.message);
  }
  for (const lot of data.lots) {
    console.log(`lot ${lot.lot_id}: ${lot.remaining} of ${lot.granted}, expires ${lot.expires_at ?? "never"}`);
  }
  return data.balance;
}
