"""The pieces every wire contract shares: the HTTP API's requests and the usage messages.

Each shape is spelled once here: strict models, names, account ids, instants, payment
references, and how a pydantic error is told to a caller. Patterns are anchored with
``\\A``/``\\Z`` semantics (pydantic's regex engine has no multi-line ``$``), so a trailing
newline never slips through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from tollbooth.domain import clock
from tollbooth.domain.catalog import IDENTIFIER_PATTERN

ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9_.:@\-]{1,128}$"
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_.:@\-]{1,128}")
# Payment-provider ids (pi_..., ch_..., GPA.1234-..., numeric store ids): printable ASCII
# without spaces, quotes or separators that could make two spellings of one payment.
# Never case-folded: providers' ids are case-sensitive.
PAYMENT_REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/#@+=\-]{0,254}$"
_ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


class Contract(BaseModel):
    """Every wire model. Its validator is built on first use, not at import: a function
    builds the few models its routes use, not all of them (a cold start pays for each)."""

    model_config = ConfigDict(defer_build=True)


class StrictModel(Contract):
    """A request or message: unknown fields are refused, and nothing mutates it."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Name = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
# A catalog identifier (a feature, package, plan or licence): lower case.
Identifier = Annotated[StrictStr, Field(pattern=IDENTIFIER_PATTERN)]
AccountId = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=ACCOUNT_ID_PATTERN)]
PaymentReference = Annotated[
    StrictStr,
    Field(
        pattern=PAYMENT_REFERENCE_PATTERN,
        description="The payment's id at the provider: 1 to 255 of A-Z a-z 0-9 _ . : / # @ + = -",
    ),
]


def is_account_id(value: str) -> bool:
    return _ACCOUNT_ID.fullmatch(value) is not None


def _iso_text(value: object) -> object:
    # pydantic would also take a Unix number (or a numeric string) as a datetime; the
    # contract says ISO-8601, and a number is too easily seconds for milliseconds.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_8601.match(value)):
        return value
    raise ValueError("must be an ISO-8601 timestamp with a time zone, for example 2027-01-31T00:00:00Z")


def _in_range(moment: datetime) -> datetime:
    clock.in_range(moment)
    return moment  # as sent: fingerprints of earlier requests stay the same


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(_in_range),
    Field(description="ISO-8601 with a time zone, between 2000-01-01 and 2099-12-31 UTC"),
]


def describe_problems(problems: Iterable[Mapping[str, Any]], limit: int = 5, skip: tuple[str, ...] = ()) -> str:
    """pydantic's errors as one line a caller can act on: ``where: what; ...``."""
    parts = []
    for problem in list(problems)[:limit]:
        location = ".".join(str(part) for part in problem.get("loc", ()) if part not in skip)
        parts.append(f"{location or 'body'}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts)
