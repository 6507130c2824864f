"""The application service: each public method is one use case of the ledger.

It loads an account, lets the pure rules in ``ledger`` and ``pricing`` decide,
and hands the resulting ``Mutation`` to the repository. Optimistic concurrency
is retried a bounded number of times with jittered backoff.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tollbooth import clock, ids
from tollbooth.catalog import Catalog, ExpiryPolicy
from tollbooth.errors import (
    ConcurrentUpdate,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidCursor,
    InvalidExpiry,
    InvalidRequest,
    PaymentReferenceUsed,
    UnknownPackage,
)
from tollbooth.ledger import (
    DEFAULT_PRIORITY,
    Account,
    IdempotencyRecord,
    LedgerEntry,
    Lot,
    LotSource,
    Mutation,
    allocate,
    burn_down_order,
    next_expiry,
)
from tollbooth.money import format_credits
from tollbooth.pricing import price
from tollbooth.repository import Repository, WriteConflict
from tollbooth.schemas import (
    BalanceResponse,
    ConsumeResponse,
    DrawView,
    GrantResponse,
    LedgerEntryView,
    LedgerPageResponse,
    LotView,
    NextExpiry,
    Totals,
)

MAX_IDEMPOTENCY_KEY_LENGTH = 255
LEDGER_PAGE_MAX = 100


@dataclass(frozen=True)
class Idempotency:
    """A request's key and the fingerprint of what it asked for."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str | None, operation: str, account_id: str, body: dict[str, Any]) -> Idempotency:
        if key is None or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            raise IdempotencyKeyMissing("send an Idempotency-Key header of 1 to 255 characters")
        canonical = json.dumps(
            {"operation": operation, "account_id": account_id, "body": body}, sort_keys=True, separators=(",", ":")
        )
        return cls(key, hashlib.sha256(canonical.encode()).hexdigest())


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def expiry_from(policy: ExpiryPolicy, granted_at: int) -> int | None:
    if policy.kind == "days":
        return clock.add_days(granted_at, policy.count)
    if policy.kind == "months":
        return clock.add_months(granted_at, policy.count)
    return None


def lot_view(lot: Lot) -> LotView:
    return LotView(
        lot_id=lot.lot_id,
        source=lot.source,
        granted=format_credits(lot.granted),
        remaining=format_credits(lot.remaining),
        expires_at=None if lot.expires_at is None else clock.to_iso(lot.expires_at),
        priority=lot.priority,
        created_at=clock.to_iso(lot.created_at),
        package_id=lot.package_id,
        price_minor=lot.price_minor,
        currency=lot.currency,
        reason=lot.reason,
    )


def entry_view(entry: LedgerEntry) -> LedgerEntryView:
    details = dict(entry.details)
    draws = details.pop("draws", None)
    return LedgerEntryView(
        entry_id=entry.entry_id,
        seq=entry.seq,
        kind=entry.kind,
        amount=format_credits(entry.amount),
        balance_after=format_credits(entry.balance_after),
        created_at=clock.to_iso(entry.created_at),
        idempotency_key=entry.idempotency_key,
        draws=None
        if draws is None
        else [DrawView(lot_id=d["lot_id"], amount=format_credits(d["amount"])) for d in draws],
        **details,
    )


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"v": 1, "before": seq}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        seq = data["before"]
        if data.get("v") != 1 or not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ValueError
        return seq
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error) as error:
        raise InvalidCursor("the cursor is not one this API returned") from error


class KnownAccounts:
    """A small LRU of account states this process wrote last. A hint only: never trusted
    for a refusal or a read, always checked by the version guard on write."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._accounts: OrderedDict[str, Account] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, account_id: str) -> Account | None:
        with self._lock:
            account = self._accounts.get(account_id)
            if account is not None:
                self._accounts.move_to_end(account_id)
            return account

    def put(self, account_id: str, account: Account) -> None:
        with self._lock:
            self._accounts[account_id] = account
            self._accounts.move_to_end(account_id)
            while len(self._accounts) > self._capacity:
                self._accounts.popitem(last=False)

    def forget(self, account_id: str) -> None:
        with self._lock:
            self._accounts.pop(account_id, None)


class LedgerService:
    def __init__(
        self,
        repository: Repository,
        catalog: Catalog,
        *,
        max_write_attempts: int = 10,
        ledger_page_max: int = LEDGER_PAGE_MAX,
        now: Callable[[], int] = clock.now_ms,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.repository = repository
        self.catalog = catalog
        self.max_write_attempts = max_write_attempts
        self.ledger_page_max = ledger_page_max
        self._now = now
        self._sleep = sleep
        self._known = KnownAccounts()

    # -- mutations -------------------------------------------------------------

    def purchase(self, account_id: str, package_id: str, payment_reference: str, idem: Idempotency) -> Outcome:
        package = self.catalog.packages.get(package_id)
        if package is None:
            raise UnknownPackage(f"unknown package {package_id!r}; known packages: {sorted(self.catalog.packages)}")

        def package_lot(
            source: LotSource, credits: int, expiry: ExpiryPolicy, priority: int, paid: int, now: int
        ) -> Lot:
            return Lot(
                lot_id=ids.new_id("lot", now),
                source=source,
                granted=credits,
                remaining=credits,
                created_at=now,
                expires_at=expiry_from(expiry, now),
                priority=priority,
                price_minor=paid,
                currency=package.currency,
                package_id=package_id,
            )

        def build(account: Account, now: int) -> Mutation:
            lots = [
                package_lot("purchase", package.credits, package.expiry, package.priority, package.price_minor, now)
            ]
            if package.bonus_credits:
                bonus_expiry = package.bonus_expiry or package.expiry
                # Bonus credits were not paid for: their lot records a price of 0.
                lots.append(package_lot("bonus", package.bonus_credits, bonus_expiry, package.bonus_priority, 0, now))
            details = {
                "package_id": package_id,
                "payment_reference": payment_reference,
                "lot_ids": [lot.lot_id for lot in lots],
                "catalog_version": self.catalog.version,
            }
            return self._credit(account, now, idem, "purchase", lots, details, payment_reference)

        return self._mutate(account_id, idem, build)

    def grant(
        self,
        account_id: str,
        credits: int,
        source: str,
        reason: str,
        expires_at: datetime | None,
        priority: int | None,
        idem: Idempotency,
    ) -> Outcome:
        if credits <= 0:
            raise InvalidRequest("credits must be greater than 0")
        expires_ms = None if expires_at is None else clock.from_datetime(expires_at)

        def build(account: Account, now: int) -> Mutation:
            if expires_ms is not None and expires_ms <= now:
                raise InvalidExpiry("expires_at must be in the future")
            lot = Lot(
                lot_id=ids.new_id("lot", now),
                source=source,  # type: ignore[arg-type]
                granted=credits,
                remaining=credits,
                created_at=now,
                expires_at=expires_ms,
                priority=DEFAULT_PRIORITY[source] if priority is None else priority,
                reason=reason,
            )
            details = {"source": source, "reason": reason, "lot_ids": [lot.lot_id]}
            return self._credit(account, now, idem, "grant", [lot], details, None)

        return self._mutate(account_id, idem, build)

    def consume(
        self, account_id: str, feature: str, quantity: int, dimensions: dict[str, str], idem: Idempotency
    ) -> Outcome:
        charge = price(self.catalog, feature, quantity, dimensions)

        def build(account: Account, now: int) -> Mutation:
            draws = allocate(account, charge.amount, now)
            seq = account.version + 1
            entry_id = ids.new_id("led", now)
            body = ConsumeResponse(
                entry_id=entry_id,
                charged=format_credits(charge.amount),
                balance=format_credits(account.available_at(now) - charge.amount),
                catalog_version=charge.catalog_version,
            ).model_dump(mode="json")
            entry = LedgerEntry(
                entry_id=entry_id,
                seq=seq,
                kind="consume",
                amount=-charge.amount,
                balance_after=account.balance - charge.amount,
                created_at=now,
                idempotency_key=idem.key,
                details={
                    "feature": charge.feature,
                    "quantity": charge.quantity,
                    "dimensions": charge.dimensions,
                    "draws": [{"lot_id": draw.lot_id, "amount": draw.amount} for draw in draws],
                    "catalog_version": charge.catalog_version,
                },
            )
            return Mutation(account, entry, IdempotencyRecord(idem.key, idem.fingerprint, 200, body, seq), draws)

        return self._mutate(account_id, idem, build)

    def _credit(
        self,
        account: Account,
        now: int,
        idem: Idempotency,
        kind: str,
        lots: list[Lot],
        details: dict[str, Any],
        payment_reference: str | None,
    ) -> Mutation:
        amount = sum(lot.granted for lot in lots)
        seq = account.version + 1
        entry_id = ids.new_id("led", now)
        body = GrantResponse(
            entry_id=entry_id,
            lots=[lot_view(lot) for lot in lots],
            balance=format_credits(account.available_at(now) + amount),
        ).model_dump(mode="json")
        entry = LedgerEntry(
            entry_id=entry_id,
            seq=seq,
            kind=kind,  # type: ignore[arg-type]
            amount=amount,
            balance_after=account.balance + amount,
            created_at=now,
            idempotency_key=idem.key,
            details=details,
        )
        return Mutation(
            account,
            entry,
            IdempotencyRecord(idem.key, idem.fingerprint, 201, body, seq),
            new_lots=tuple(lots),
            payment_reference=payment_reference,
        )

    def _mutate(self, account_id: str, idem: Idempotency, build: Callable[[Account, int], Mutation]) -> Outcome:
        # Start from this container's last known state of the account, if any: when it is
        # current, the debit costs one request. The version guard makes a stale copy safe; it
        # only costs a failed write and a fresh read.
        account = self._known.get(account_id)
        for attempt in range(self.max_write_attempts):
            fresh = account is None
            if account is None:
                account = self.repository.load_account(account_id)
            now = self._now()
            try:
                mutation = build(account, now)
            except InsufficientCredits:
                if not fresh:  # never refuse on a remembered balance
                    account = None
                    continue
                # A replay of a request that once succeeded must still get its first answer.
                replay = self._replay(account_id, idem)
                if replay is not None:
                    return replay
                raise
            try:
                self.repository.apply(mutation, now)
            except WriteConflict as conflict:
                self._known.forget(account_id)
                account = None
                if conflict.reason in (WriteConflict.IDEMPOTENCY_KEY, WriteConflict.UNKNOWN):
                    replay = self._replay(account_id, idem)
                    if replay is not None:
                        return replay
                if conflict.reason == WriteConflict.PAYMENT_REFERENCE:
                    raise PaymentReferenceUsed(
                        "this payment_reference has already been granted; credits are granted once per payment"
                    ) from None
                if fresh:
                    self._backoff(attempt)
                continue
            self._known.put(account_id, mutation.account_after)
            return Outcome(mutation.idempotency.status_code, mutation.idempotency.body)
        raise ConcurrentUpdate("the account is busy; retry the request with the same Idempotency-Key")

    def _replay(self, account_id: str, idem: Idempotency) -> Outcome | None:
        record = self.repository.find_idempotency_record(account_id, idem.key)
        if record is None:
            return None
        if record.fingerprint != idem.fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was already used with a different request")
        return Outcome(record.status_code, record.body, replayed=True)

    def _backoff(self, attempt: int) -> None:
        # Full jitter, capped: spreads contenders for one account apart.
        self._sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))

    # -- reads -----------------------------------------------------------------

    def balance(self, account_id: str) -> BalanceResponse:
        account = self.repository.load_account(account_id)
        now = self._now()
        upcoming = next_expiry(account, now)
        return BalanceResponse(
            account_id=account_id,
            available=format_credits(account.available_at(now)),
            balance=format_credits(account.balance),
            totals=Totals(
                granted=format_credits(account.granted),
                consumed=format_credits(account.consumed),
                expired=format_credits(account.expired),
            ),
            lots=[lot_view(lot) for lot in burn_down_order([x for x in account.lots if x.spendable_at(now)])],
            next_expiry=None
            if upcoming is None
            else NextExpiry(expires_at=clock.to_iso(upcoming.expires_at), amount=format_credits(upcoming.amount)),
            as_of=clock.to_iso(now),
        )

    def ledger(self, account_id: str, limit: int, cursor: str | None) -> LedgerPageResponse:
        if not 1 <= limit <= self.ledger_page_max:
            raise InvalidRequest(f"limit must be between 1 and {self.ledger_page_max}")
        before = None if cursor is None else decode_cursor(cursor)
        page = self.repository.list_entries(account_id, limit, before)
        return LedgerPageResponse(
            entries=[entry_view(entry) for entry in page.entries],
            next_cursor=None if page.next_seq is None else encode_cursor(page.next_seq),
        )
