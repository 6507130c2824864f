"""The ports: what the use cases need from the world, as Protocols, and the outcomes a
store reports that are not errors of the caller."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tollbooth.domain.expiry import ExpiryIndexing
from tollbooth.domain.hold_state import DueHold, Hold
from tollbooth.domain.ledger import Account, IdempotencyRecord, LedgerEntry, Mutation


class Publisher(Protocol):
    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        """Publish every event or raise; a partial failure raises too (the caller retries all)."""


class DeadLetters(Protocol):
    def send(self, body: str, reasons: list[str], source_message_id: str) -> None:
        """Put a message on the dead-letter queue, or raise."""


class WriteConflict(Exception):
    """The transaction was cancelled; ``reason`` says which guard stopped it."""

    VERSION = "version"  # another mutation of the account won the race: reload and retry
    IDEMPOTENCY_KEY = "idempotency_key"  # the key was used before: replay or 409
    PAYMENT_REFERENCE = "payment_reference"  # the payment was granted before
    UNKNOWN = "unknown"  # the engine gave no reasons: look the key up, then retry

    def __init__(self, reason: str, keys: set[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.keys = keys or set()  # for IDEMPOTENCY_KEY: the keys already used


@dataclass(frozen=True)
class PaymentRecord:
    """A payment that granted credits: which account and entry, and the money refunded of it."""

    reference: str
    account_id: str
    entry_id: str
    seq: int
    refunded_minor: int = 0
    dispute: str | None = None  # its dispute's status: opened, won or lost


@dataclass(frozen=True)
class LedgerPage:
    entries: list[LedgerEntry]
    next_seq: int | None  # pass back as ``before_seq`` for the next (older) page


class LedgerStore(Protocol):
    """Where accounts, lots, ledger entries and idempotency records live. ``apply`` writes a
    mutation all-or-nothing, guarded by the account version it was computed from, or raises
    WriteConflict (a guard failed) or StorageUnavailable (the store failed)."""

    expiry: ExpiryIndexing
    max_transaction_items: int  # the most items one ``apply`` may write

    def connect(self) -> None:
        """Make the store's clients now, on this thread: threads started after share them."""

    def load_account(self, account_id: str) -> Account:
        """The account with its live lots; a new account reads as empty."""

    def load_own(self, account_id: str) -> Account:
        """The account's own side alone (its item, lots and intent; no slices): one Query."""

    def load_slice(self, account_id: str, index: int) -> Account:
        """One escrow slice of the account, alone (``Account.slices``): what its consumes need."""

    def entry_streams(self, account_id: str) -> tuple[int, ...]:
        """The slices that have written entries for the account (its own entries aside)."""

    def load_expiry_view(self, account_id: str, now: int | None = None) -> Account | None:
        """The account item alone: its lots are the soonest-due live expiring ones. In full
        when it owes an intent's draws, or lots beyond its summary are due at ``now``."""

    def accounts_due(self, shard: int, now: int, page_size: int = 100) -> Iterator[Account | DueHold]:
        """Accounts of one expiry shard with work due at ``now``."""

    def find_idempotency_record(self, account_id: str, key: str) -> IdempotencyRecord | None: ...

    def find_payment(self, reference: str) -> PaymentRecord | None: ...

    def find_entry(self, account_id: str, seq: int, stream: int | None = None) -> LedgerEntry | None:
        """Entry ``seq`` of one stream (the account's own, or slice ``stream``'s)."""

    def find_hold(self, account_id: str, hold_id: str) -> Hold | None: ...

    def load_spilled(self, account_id: str, keys: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
        """The events of the account's spills ``keys`` (``domain.outbox_state``), in that order."""
        ...

    def list_holds(self, account_id: str, limit: int) -> list[Hold]:
        """The account's holds, open and closed, newest first."""

    def reversed_of(self, account_id: str, charge: str) -> int:
        """What reversals have given back of a charge so far (``ChargeReversal.charge``)."""

    def list_entries(
        self, account_id: str, limit: int, before_seq: int | None = None, stream: int | None = None
    ) -> LedgerPage:
        """One stream's entries newest first (the account's own, or a slice's);
        ``before_seq`` continues from an earlier page."""

    def apply(self, mutation: Mutation, now: int) -> None: ...
