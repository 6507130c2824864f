"""Domain errors. Each carries a stable code; api.errors maps them to HTTP."""

from __future__ import annotations

from typing import Any


class TollboothError(Exception):
    code = "error"
    # Whether the same request, sent again unchanged, can succeed: only for what passes on
    # its own (a busy account, a store that failed or throttled). The API says so with
    # Retry-After; every other error needs the request or the account to change first.
    retryable = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(TollboothError):
    code = "invalid_request"


class InvalidCursor(InvalidRequest):
    code = "invalid_cursor"


class IdempotencyKeyMissing(InvalidRequest):
    code = "idempotency_key_missing"


class Unauthenticated(TollboothError):
    code = "unauthenticated"


class Forbidden(TollboothError):
    code = "forbidden"


class NotFound(TollboothError):
    code = "not_found"


class UnknownFeature(TollboothError):
    code = "unknown_feature"


class UnknownPackage(TollboothError):
    code = "unknown_package"


class UnknownPlan(TollboothError):
    code = "unknown_plan"


class CatalogVersionNotFound(NotFound):
    code = "catalog_version_not_found"


class NoCatalogInForce(TollboothError):
    code = "no_catalog_in_force"


class InvalidPeriod(TollboothError):
    code = "invalid_period"


class PeriodConflict(TollboothError):
    """A plan's period was already granted from the same start with another end."""

    code = "period_conflict"


class GrantTooLarge(TollboothError):
    code = "grant_too_large"


class InvalidDimension(TollboothError):
    code = "invalid_dimension"


class InvalidQuantity(TollboothError):
    code = "invalid_quantity"


class InvalidExpiry(TollboothError):
    code = "invalid_expiry"


class InsufficientCredits(TollboothError):
    code = "insufficient_credits"

    def __init__(self, message: str, *, required: int, available: int, missing: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.required = required
        self.available = available
        # Which kind of credits is short, e.g. {"licence": "commercial", "feature": "image_generation"}.
        self.missing = missing or {}


class FeatureLocked(TollboothError):
    """The feature needs credits of a package or plan that unlocks it (a premium perk)."""

    code = "feature_locked"


class IdempotencyKeyReused(TollboothError):
    code = "idempotency_key_reused"


class PaymentReferenceUsed(TollboothError):
    code = "payment_reference_used"


class ConcurrentUpdate(TollboothError):
    """Optimistic concurrency lost too many times in a row; nothing was written."""

    code = "concurrent_update"
    retryable = True


class StorageUnavailable(TollboothError):
    """DynamoDB failed in a way the caller can retry; the AWS text is logged, not returned."""

    code = "storage_unavailable"
    retryable = True


class StoreBusy(StorageUnavailable):
    """A partition is over its throughput, or an account kept changing while it was read:
    not a lost race, but worth waiting for (the write loop backs off within its budget
    before the caller hears of it)."""


class ChangeTooLarge(TollboothError):
    """The change needs more than one transaction can hold (items, or bytes per item):
    sending it again cannot help, so it never says "retry"."""

    code = "change_too_large"

    def __init__(self, message: str = "the change is larger than one transaction can hold; it cannot succeed as sent"):
        super().__init__(message)


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class LotNotFound(NotFound):
    """No lot of that id holds credits on the account (spent, written off, or never)."""

    code = "lot_not_found"


class DisputeDecided(TollboothError):
    """A dispute decided one way cannot be decided the other way."""

    code = "dispute_decided"


class RefundTooLarge(TollboothError):
    """More money than the payment has left to refund (refunds of a payment never add up
    to more than it paid)."""

    code = "refund_exceeds_payment"


class EntryNotFound(NotFound):
    """No ledger entry of that id on the account."""

    code = "entry_not_found"


class NotReversible(TollboothError):
    """The entry is not a charge that can be given back (a reversal, a grant...), or it
    names no such usage record."""

    code = "not_reversible"


class ReversalTooLarge(TollboothError):
    """More credits than the charge has left to give back (reversals of a charge never add
    up to more than it took)."""

    code = "reversal_exceeds_charge"


class HoldNotFound(NotFound):
    code = "hold_not_found"


class HoldCaptured(TollboothError):
    """A hold is captured once: a second capture, or a release after it, is refused."""

    code = "hold_captured"


class TooManyHolds(TollboothError):
    """The account has as many open holds as the catalog allows (a client bug must not
    freeze a balance)."""

    code = "too_many_holds"


class HoldTooLong(TollboothError):
    """A hold asked to last longer than the catalog's max_hold_seconds."""

    code = "hold_too_long"
