"""A bounded schemathesis run against a running Tollbooth stack, from the OpenAPI document it serves.

Cases come from schemathesis (4.x): first its coverage cases (boundaries, wrong types,
missing fields, unexpected methods and content types), then Hypothesis-generated positive
and negative cases (``APIOperation.as_strategy``). Every exchange is sorted into:

- failures, which a test asserts there are none of: a 5xx, no answer at all, or a body that
  leaks AWS error text or a Python traceback;
- conformance problems (an undocumented status, a response off its schema, invalid data
  accepted, ...), which the test asserts there are none of too.

Bounded and reproducible: at most ``max_examples`` generated cases per operation and
generation mode, generation derandomized, and a time budget past which the remaining
cases are not sent (the report counts them, so a truncated run is never silent).

Generation is steered a little so that real writes happen: the account in the path is
pinned to a funded account for most cases, and some positive bodies get real catalog
identifiers (features, dimensions, packages, plans, licences) and a current period.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode, Response, checks
from schemathesis.core.parameters import ParameterLocation

# Text that must never reach a client: AWS SDK / DynamoDB error text, or a Python traceback.
LEAK_MARKERS = (
    "Traceback (most recent call last)",
    'File "/',
    "botocore",
    "boto3",
    "pynamodb",
    "An error occurred (",  # botocore's ClientError
    "ConditionalCheckFailed",
    "TransactionCanceled",
    "ValidationException",
    "ResourceNotFoundException",
    "ProvisionedThroughputExceeded",
    "ThrottlingException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "arn:aws:",  # an ARN names the AWS account: the API shows a caller by its role's name
)

# What the document allows as an Idempotency-Key (tollbooth.api.openapi.IdempotencyKey).
VALID_KEY = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?")

# Collected and summarized; the test asserts there are none.
CONFORMANCE_CHECKS = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]

SAMPLES_PER_GROUP = 3
CLIP = 300


@dataclass(frozen=True)
class Caller:
    """Who sends the requests: ``token`` for ``account``, pinned into the path for ``pin_share`` of cases."""

    name: str
    token: str
    account: str
    pin_share: float = 1.0


@dataclass(frozen=True)
class Limits:
    max_examples: int = 30  # generated cases per operation and generation mode
    max_coverage_cases: int = 150  # coverage cases per operation
    time_budget: float = 60.0  # seconds for the whole run; cases past it are counted, not sent


@dataclass(frozen=True)
class Exchange:
    origin: str  # how schemathesis made the case
    request: str
    status: int | None
    response: str


@dataclass
class FuzzReport:
    caller: str
    sent: int = 0
    unsent: int = 0  # past the time budget
    unsendable: Counter[str] = field(default_factory=Counter)  # the HTTP client refused to build the request
    elapsed: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    # (kind, operation, outcome) -> every exchange of that kind
    failures: dict[tuple[str, str, str], list[Exchange]] = field(default_factory=lambda: defaultdict(list))
    # (kind, "operation -> status") -> count, and one message per kind
    conformance: Counter[tuple[str, str]] = field(default_factory=Counter)
    conformance_example: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def failure_text(self) -> str:
        groups = sorted(self.failures.items())
        lines = [f"schema fuzz as {self.caller}: {sum(map(len, self.failures.values()))} failing requests"]
        lines += [f"  {len(exchanges):4d}  {kind}: {op} -> {outcome}" for (kind, op, outcome), exchanges in groups]
        for (kind, operation, outcome), exchanges in groups:
            lines.append(f"\n{kind}: {operation} -> {outcome} ({len(exchanges)} requests), e.g.:")
            shown: set[str] = set()
            for exchange in exchanges:
                if exchange.origin in shown:
                    continue
                shown.add(exchange.origin)
                lines.append(f"  [{exchange.origin}]\n    {exchange.request}\n    -> {exchange.response}")
                if len(shown) == SAMPLES_PER_GROUP:
                    break
        return "\n".join(lines)

    def summary_text(self) -> str:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        lines = [
            f"schema fuzz as {self.caller}: {self.sent} requests in {self.elapsed:.1f}s ({statuses}); "
            f"{sum(map(len, self.failures.values()))} failing; {self.unsent} not sent (time budget)"
        ]
        if self.unsendable:
            lines.append(f"  not sendable by the client: {dict(self.unsendable)}")
        by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        for (kind, operation), count in self.conformance.items():
            by_kind[kind][operation] += count
        if by_kind:
            lines.append("  conformance problems:")
        for kind, operations in sorted(by_kind.items(), key=lambda item: -item[1].total()):
            lines.append(f"    {kind}: {operations.total()}")
            for operation, count in operations.most_common():
                lines.append(f"      {count:5d}  {operation}")
            lines.append(f"      e.g. {self.conformance_example[kind]}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _clip(text: str, limit: int = CLIP) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _text(payload: Any) -> str:
    if payload is None:
        return ""
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "backslashreplace")
    return str(payload)


def _origin(case: Case) -> str:
    meta = case.meta
    if meta is None:
        return "unknown"
    description = getattr(meta.phase.data, "description", None)
    return f"{meta.phase.name.value} {meta.generation.mode.value}" + (f": {description}" if description else "")


def _describe_request(response: Response) -> str:
    request = response.request
    url = requests.utils.urlparse(request.url)
    target = url.path + (f"?{url.query}" if url.query else "")
    headers = {k.lower(): v for k, v in request.headers.items()}
    shown = [f"{name}: {headers[name]}" for name in ("content-type", "idempotency-key") if name in headers]
    return _clip(f"{request.method} {target} [{'; '.join(shown)}] {_text(request.body)}".rstrip())


def _path_is_negated(case: Case) -> bool:
    meta = case.meta
    if meta is None:
        return False
    component = meta.components.get(ParameterLocation.PATH)
    if component is not None and component.mode is GenerationMode.NEGATIVE:
        return True
    return getattr(meta.phase.data, "parameter_location", None) is ParameterLocation.PATH


def _failures_of(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _failures_of(inner)
    else:
        yield error


class SchemaFuzzer:
    def __init__(
        self,
        schema: BaseSchema,
        base_url: str,
        caller: Caller,
        catalog: dict[str, Any],
        *,
        operations: Iterable[str] | None = None,
        limits: Limits = Limits(),
    ) -> None:
        self.schema = schema
        self.base_url = base_url
        self.caller = caller
        self.catalog = catalog
        self.limits = limits
        wanted = None if operations is None else set(operations)
        self.operations: list[APIOperation] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            if wanted is None or operation.label in wanted:
                self.operations.append(operation)
        self.report = FuzzReport(caller.name)
        self.session = requests.Session()
        self.sequence = 0
        self.fixed_keys = {operation.label: f"fuzz-fixed-{uuid.uuid4()}" for operation in self.operations}
        self.deadline = 0.0

    def run(self) -> FuzzReport:
        started = time.monotonic()
        self.deadline = started + self.limits.time_budget
        try:
            for operation in self.operations:
                self._coverage(operation)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for operation in self.operations:
                    self._fuzz(operation, mode)
        finally:
            self.session.close()
            self.report.elapsed = time.monotonic() - started
        return self.report

    # -- generation -------------------------------------------------------------------------

    def _coverage(self, operation: APIOperation) -> None:
        config = self.schema.config.generation_for(operation=operation, phase="coverage")
        cases = self.schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            generation_config=config,
        )
        for index, case in enumerate(cases):
            if index == self.limits.max_coverage_cases:
                self.report.notes.append(f"{operation.label}: coverage cases cut at {index}")
                break
            if not _path_is_negated(case):
                self._pin(case)
            self._send(case)

    def _fuzz(self, operation: APIOperation, mode: GenerationMode) -> None:
        strategy = operation.as_strategy(generation_mode=mode)

        @settings(
            max_examples=self.limits.max_examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            report_multiple_bugs=False,
        )
        @given(case=strategy, data=st.data())
        def examples(case: Case, data: st.DataObject) -> None:
            if time.monotonic() > self.deadline:
                self.report.unsent += 1
                return
            if not _path_is_negated(case) and data.draw(st.floats(0, 1)) < self.caller.pin_share:
                self._pin(case)
            if mode is GenerationMode.POSITIVE and isinstance(case.body, dict) and data.draw(st.booleans()):
                self._steer(operation, case, data)
            self._send(case)

        try:
            examples()
        except HypothesisException as error:  # e.g. nothing to negate in a lone string path parameter
            self.report.notes.append(f"{operation.label}: no {mode.value} cases ({type(error).__name__})")

    def _pin(self, case: Case) -> None:
        if case.path_parameters and "account_id" in case.path_parameters:
            case.path_parameters["account_id"] = self.caller.account

    def _steer(self, operation: APIOperation, case: Case, data: st.DataObject) -> None:
        """Swap in real catalog identifiers, so generated requests get past "unknown feature"."""
        body: dict[str, Any] = case.body
        catalog = self.catalog
        path = operation.path
        if path.endswith("/consume") or path == "/v1/quotes":
            feature = data.draw(st.sampled_from(sorted(catalog["features"])))
            body["feature"] = feature
            body["quantity"] = data.draw(st.integers(1, 5))
            dimensions = catalog["features"][feature]["dimensions"]
            body["dimensions"] = {
                name: data.draw(st.sampled_from(sorted(spec["values"])))
                for name, spec in dimensions.items()
                if data.draw(st.booleans())
            }
        elif path.endswith("/purchases"):
            body["package_id"] = data.draw(st.sampled_from(sorted(catalog["packages"])))
        elif path.endswith("/allowances"):
            body["plan_id"] = data.draw(st.sampled_from(sorted(catalog["plans"])))
            start = datetime.now(UTC) - timedelta(days=data.draw(st.integers(0, 20)))
            body["period_start"] = start.isoformat()
            body.pop("period_end", None)
        elif path.endswith("/grants"):
            if body.get("licences"):
                body["licences"] = [data.draw(st.sampled_from(sorted(catalog["licences"])))]
            if body.get("features"):
                body["features"] = [data.draw(st.sampled_from(sorted(catalog["features"])))]
            if body.get("expires_at"):
                days = data.draw(st.integers(1, 400))
                body["expires_at"] = (datetime.now(UTC) + timedelta(days=days)).isoformat()

    # -- sending and sorting ----------------------------------------------------------------

    def _headers(self, case: Case) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.caller.token}"}
        generated = (case.headers or {}).get("Idempotency-Key")
        if generated is not None and not VALID_KEY.fullmatch(generated):
            return headers  # an invalid key schemathesis made on purpose: it must be refused, so send it
        if case.method.upper() == "POST":
            # A fresh key mostly (so that real writes happen), sometimes the operation's one
            # fixed key (replays and key reuse), sometimes none (the missing-key refusal).
            self.sequence += 1
            turn = self.sequence % 10
            if turn in (1, 2):
                headers["Idempotency-Key"] = self.fixed_keys[case.operation.label]
            elif turn != 0:
                headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4()}"
        return headers

    def _send(self, case: Case) -> None:
        report = self.report
        if time.monotonic() > self.deadline:
            report.unsent += 1
            return
        headers = self._headers(case)
        label, origin = case.operation.label, _origin(case)
        try:
            response = case.call(base_url=self.base_url, session=self.session, headers=headers, timeout=60)
        except (requests.ConnectionError, requests.Timeout) as error:
            request = f"{case.method} {case.formatted_path} {_clip(json.dumps(case.body, default=str))}"
            report.failures["no response", label, type(error).__name__].append(
                Exchange(origin, request, None, _clip(str(error)))
            )
            return
        except Exception as error:  # e.g. a header value the HTTP client will not send
            report.unsendable[type(error).__name__] += 1
            return
        report.sent += 1
        report.statuses[response.status_code] += 1
        text = _text(response.content)
        exchange = Exchange(origin, _describe_request(response), response.status_code, _clip(text, 160))
        if response.status_code >= 500:
            code = self._error_code(text)
            report.failures["server error", label, f"{response.status_code} {code}"].append(exchange)
        leaked = [marker for marker in LEAK_MARKERS if marker in text]
        if leaked:
            report.failures["leak", label, ", ".join(leaked)].append(exchange)
        if response.status_code < 500:
            self._conformance(case, response, headers)

    @staticmethod
    def _error_code(text: str) -> str:
        try:
            body = json.loads(text)
        except ValueError:
            return "(not JSON)"
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return str(body["error"].get("code"))
        return _clip(text, 80)

    def _conformance(self, case: Case, response: Response, headers: dict[str, str]) -> None:
        try:
            case.validate_response(response, checks=CONFORMANCE_CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as error:  # schemathesis' FailureGroup is a BaseExceptionGroup
            for failure in _failures_of(error):
                code = getattr(failure, "code", "")
                kind = f"{code} {getattr(failure, 'kind_title', type(failure).__name__)}".strip()
                self.report.conformance[kind, f"{case.operation.label} -> {response.status_code}"] += 1
                if kind not in self.report.conformance_example:
                    message = str(getattr(failure, "message", "") or failure)
                    self.report.conformance_example[kind] = (
                        f"{case.operation.label} -> {response.status_code}: {_clip(message, 200)}"
                    )
