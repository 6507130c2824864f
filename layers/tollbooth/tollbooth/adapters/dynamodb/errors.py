"""How the DynamoDB store reads what went wrong: a cancelled transaction's reasons, and any
other failure, as domain errors with no AWS text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pynamodb.exceptions import PynamoDBException, TransactWriteError

from tollbooth.app.ports import WriteConflict
from tollbooth.domain.errors import ChangeTooLarge, StorageUnavailable, StoreBusy

# Cancellation reasons that mean the partition is over its throughput (AWS's documented codes).
THROTTLED = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
# A whole request refused for throughput (botocore's own retry gave up first).
THROTTLED_REQUESTS = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
)


def conflict_of(error: TransactWriteError, meanings: list[str], keys: list[str | None]) -> Exception:
    """What a cancelled transaction means, from the guards that failed: ``meanings`` and
    ``keys`` (the idempotency key an item records, if it records one) by transaction index."""
    # PynamoDB reads the code off the cause's response, which a timeout or a closed
    # connection does not have (it would raise): read it here, safely.
    response = getattr(error.cause, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    if code == "ValidationException":
        # Too many items, or an item over 400 KB: the same transaction will always fail.
        return ChangeTooLarge()
    if code in THROTTLED_REQUESTS:
        return StoreBusy("the ledger store is throttled; retry the request")
    if code != "TransactionCanceledException":
        return StorageUnavailable("the ledger store failed; retry the request")
    reasons = list(error.cancellation_reasons or [])
    if not reasons:
        return WriteConflict(WriteConflict.UNKNOWN)
    if any(reason is not None and reason.code in THROTTLED for reason in reasons):
        # Not a lost race: reloading and retrying at once would only load the partition more.
        return StoreBusy("the ledger store is throttled; retry the request")
    failed_at = [
        i for i, reason in enumerate(reasons) if reason is not None and reason.code == "ConditionalCheckFailed"
    ]
    failed = {meanings[i] for i in failed_at if i < len(meanings)}
    if WriteConflict.IDEMPOTENCY_KEY in failed:
        used = {key for i in failed_at if i < len(keys) and (key := keys[i]) is not None}
        return WriteConflict(WriteConflict.IDEMPOTENCY_KEY, used)
    if WriteConflict.PAYMENT_REFERENCE in failed:
        return WriteConflict(WriteConflict.PAYMENT_REFERENCE)
    # Version guard, a lot guard, or DynamoDB's own TransactionConflict: all mean "reload".
    return WriteConflict(WriteConflict.VERSION)


def single_conflict_of(error: PynamoDBException, meaning: str, key: str | None) -> Exception:
    """What a failed single conditional write (PutItem, UpdateItem or DeleteItem) means:
    ``meaning``, when its guard failed (``key``: the idempotency key its item records)."""
    code = getattr(error, "cause_response_code", None)
    if code == "ConditionalCheckFailedException":
        return WriteConflict(meaning, {key} if key is not None else None)
    if code == "TransactionConflictException":  # the item is in another transaction: reload
        return WriteConflict(WriteConflict.VERSION)
    if code == "ValidationException":
        return ChangeTooLarge()
    if code in THROTTLED_REQUESTS:
        return StoreBusy("the ledger store is throttled; retry the request")
    return StorageUnavailable("the ledger store failed; retry the request")


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn any PynamoDB/botocore failure on a read into a domain error with no AWS text."""
    try:
        yield
    except PynamoDBException as error:
        raise StorageUnavailable("the ledger store failed; retry the request") from error
