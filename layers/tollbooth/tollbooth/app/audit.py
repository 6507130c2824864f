"""What every committed mutation tells operations: one structured log line per ledger entry
(account, kind, credits, entry, key, caller) and the credits it moved as metrics, by kind and,
for spending, by feature. No token and no personal data: a service caller shows as its role's
name (never its ARN), a user as the account it acts for. Observability never fails the work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tollbooth.app.context import shown
from tollbooth.domain.ledger import LedgerEntry, Mutation
from tollbooth.observability import count, count_by, logger

# The metric each kind of entry adds its credits (millicredits, as a positive count) to.
CREDIT_METRICS = {
    "purchase": "CreditsGranted",
    "grant": "CreditsGranted",
    "allowance": "CreditsGranted",
    "consume": "CreditsConsumed",
    "usage": "CreditsConsumed",
    "expire": "CreditsExpired",
    "refund": "CreditsClawedBack",
    "adjustment": "CreditsAdjusted",  # either way: the entry's sign says which
    "void": "CreditsVoided",
    "dispute": "CreditsClawedBack",  # a lost one; opened and won move no credits
}


def committed(mutation: Mutation) -> None:
    """Log and count a mutation that has just committed."""
    try:
        if mutation.slice_moves and not mutation.spend:
            # A hot account's escrow at work: refills (credits into slices) and recalls.
            count("EscrowRefills" if mutation.draws else "EscrowRecalls", 1)
        for entry in mutation.entries:
            logger.info("ledger entry", extra=_line(mutation.account.account_id, entry))
            metric = CREDIT_METRICS.get(entry.kind)
            if metric is not None:
                count(metric, abs(entry.amount))
            for feature, credits in _spent_by_feature(entry):
                count_by("CreditsConsumedByFeature", "feature", feature, credits)
    except Exception:
        logger.exception("mutation not logged", extra={"account_id": mutation.account.account_id})


def _line(account_id: str, entry: LedgerEntry) -> dict[str, Any]:
    caller = entry.details.get("caller")
    return {
        "account_id": account_id,
        "kind": entry.kind,
        "credits": entry.amount,
        "entry_id": entry.entry_id,
        "seq": entry.seq,
        "idempotency_key": entry.idempotency_key,
        "caller": shown(caller) if isinstance(caller, dict) else None,
    }


def _spent_by_feature(entry: LedgerEntry) -> Iterator[tuple[str, int]]:
    if entry.kind == "consume":
        yield str(entry.details.get("feature")), -entry.amount
    elif entry.kind == "usage":
        totals: dict[str, int] = {}
        for line in entry.details.get("records", []):
            totals[line["feature"]] = totals.get(line["feature"], 0) + int(line["charged"])
        yield from totals.items()
