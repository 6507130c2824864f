"""The application service: each public method is one use case of the ledger.

It loads an account, lets the pure rules in ``domain`` decide, and hands the resulting
``Mutation`` to the store. Optimistic concurrency is retried a bounded number of times
with jittered backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from tollbooth.app.context import INTERNAL, RequestContext
from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.known_accounts import KnownAccounts
from tollbooth.app.ports import LedgerStore, WriteConflict
from tollbooth.app.views import LEDGER_PAGE_MAX, decode_cursor, encode_cursor, entry_view, lot_view
from tollbooth.contracts.http import (
    BalanceResponse,
    ConsumeResponse,
    GrantResponse,
    LedgerPageResponse,
    NextExpiry,
    PerksView,
    Totals,
)
from tollbooth.contracts.usage import UsageRecord
from tollbooth.domain import clock, ids
from tollbooth.domain.catalog import CatalogHistory, ExpiryPolicy, LotTerms
from tollbooth.domain.errors import (
    ConcurrentUpdate,
    FeatureLocked,
    GrantTooLarge,
    IdempotencyKeyReused,
    InsufficientCredits,
    InvalidExpiry,
    InvalidPeriod,
    InvalidRequest,
    PaymentReferenceUsed,
    PeriodConflict,
    TollboothError,
    UnknownPackage,
    UnknownPlan,
)
from tollbooth.domain.grants import ROLLOVER_GRACE_MS, expiry_from, lot_with_terms
from tollbooth.domain.ledger import (
    DEFAULT_PRIORITY,
    PERIOD_CLAMP_DAYS,
    RESERVED_KEY_PREFIX,
    Account,
    Draw,
    IdempotencyRecord,
    LedgerEntry,
    Lot,
    LotSource,
    Mutation,
    Use,
    allocate,
    billing_period_end,
    burn_down_order,
    expiring_within,
    is_plan_period,
    next_expiry,
    pay_off_arrears,
    perks_at,
    rollover,
)
from tollbooth.domain.money import format_credits
from tollbooth.domain.pricing import Charge, price
from tollbooth.domain.usage_charges import MAX_CLOCK_SKEW_MS, REUSED, UsageOutcome, usage_key, usage_mutation

# Refusals that depend on the account's state: a remembered state is re-read before refusing.
STATE_REFUSALS = (InsufficientCredits, FeatureLocked, InvalidPeriod)


class LedgerService:
    def __init__(
        self,
        repository: LedgerStore,
        catalogs: CatalogHistory,
        *,
        max_write_attempts: int = 10,
        ledger_page_max: int = LEDGER_PAGE_MAX,
        now: Callable[[], int] = clock.now_ms,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.repository = repository
        self.catalogs = catalogs
        self.max_write_attempts = max_write_attempts
        self.ledger_page_max = ledger_page_max
        self._now = now
        self._sleep = sleep
        self._known = KnownAccounts()

    def now(self) -> int:
        return self._now()

    # -- mutations -------------------------------------------------------------

    def purchase(
        self,
        account_id: str,
        package_id: str,
        payment_reference: str,
        idem: Idempotency,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        def build(account: Account, now: int) -> Mutation:
            catalog = self.catalogs.in_force(now)
            package = catalog.packages.get(package_id)
            if package is None:
                raise UnknownPackage(f"unknown package {package_id!r}; known packages: {sorted(catalog.packages)}")
            campaign = catalog.campaign_for(package_id, now)
            period_end = billing_period_end(account, now)

            def package_lot(source: LotSource, credits: int, expiry: ExpiryPolicy, priority: int, paid: int) -> Lot:
                return lot_with_terms(
                    package,
                    lot_id=ids.new_id("lot", now),
                    source=source,
                    granted=credits,
                    remaining=credits,
                    created_at=now,
                    expires_at=expiry_from(expiry, now, period_end),
                    priority=priority,
                    price_minor=paid,
                    currency=package.currency,
                    package_id=package_id,
                )

            bonus_expiry = package.bonus_expiry or package.expiry
            lots = [package_lot("purchase", package.credits, package.expiry, package.priority, package.price_minor)]
            if package.bonus_credits:
                # Bonus credits were not paid for: their lot records a price of 0.
                lots.append(package_lot("bonus", package.bonus_credits, bonus_expiry, package.bonus_priority, 0))
            if campaign is not None:
                campaign_id, terms = campaign
                credits = terms.bonus_for(package)
                bonus = package_lot("bonus", credits, terms.bonus_expiry or bonus_expiry, package.bonus_priority, 0)
                lots.append(replace(bonus, campaign_id=campaign_id))
            details = {
                "package_id": package_id,
                "payment_reference": payment_reference,
                "lot_ids": [lot.lot_id for lot in lots],
                "catalog_version": catalog.version,
                "caller": context.caller.record(),
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
        licences: tuple[str, ...] | None = None,
        features: tuple[str, ...] | None = None,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        if credits <= 0:
            raise InvalidRequest("credits must be greater than 0")
        expires_ms = None if expires_at is None else clock.from_datetime(expires_at)
        terms = LotTerms(licences=licences, features=features)

        def build(account: Account, now: int) -> Mutation:
            catalog = self.catalogs.in_force(now)
            for name in sorted(set(licences or ()) - set(catalog.licences)):
                raise InvalidRequest(f"licences: {name!r} is not one of {list(catalog.licences)}")
            for name in sorted(set(features or ()) - set(catalog.features)):
                raise InvalidRequest(f"features: {name!r} is not one of {sorted(catalog.features)}")
            if expires_ms is not None and expires_ms <= now:
                raise InvalidExpiry("expires_at must be in the future")
            if credits > catalog.max_grant:
                raise GrantTooLarge(
                    f"a single grant may create at most {format_credits(catalog.max_grant)} credits "
                    f"(max_grant in catalog {catalog.version})"
                )
            lot = lot_with_terms(
                terms,
                lot_id=ids.new_id("lot", now),
                source=source,
                granted=credits,
                remaining=credits,
                created_at=now,
                expires_at=expires_ms,
                priority=DEFAULT_PRIORITY[source] if priority is None else priority,
                reason=reason,
            )
            details = {
                "source": source,
                "reason": reason,
                "lot_ids": [lot.lot_id],
                "catalog_version": catalog.version,
                "caller": context.caller.record(),
            }
            return self._credit(account, now, idem, "grant", [lot], details, None)

        return self._mutate(account_id, idem, build)

    def grant_allowance(
        self,
        account_id: str,
        plan_id: str,
        period_start: datetime,
        period_end: datetime | None = None,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        """Grant a plan's allowance for the period starting at ``period_start``, once per
        account, plan and period, carrying over what the last period left, up to the cap.

        The period ends at ``period_end`` when the billing system says so (its calendar may
        anchor on the 31st), else one plan period (calendar months) after it starts."""
        start = clock.from_datetime(period_start)
        given_end = None if period_end is None else clock.from_datetime(period_end)
        period = {"plan_id": plan_id, "period_start": clock.to_iso(start)}
        if given_end is not None:
            period["period_end"] = clock.to_iso(given_end)
        idem = Idempotency.derived(
            f"{RESERVED_KEY_PREFIX}allowance:{plan_id}:{clock.to_iso(start)}", "allowance", account_id, period
        )

        def build(account: Account, now: int) -> Mutation:
            catalog = self.catalogs.in_force(now)
            plan = catalog.plans.get(plan_id)
            if plan is None:
                raise UnknownPlan(f"unknown plan {plan_id!r}; known plans: {sorted(catalog.plans)}")
            end = clock.add_months(start, plan.months) if given_end is None else given_end
            if not is_plan_period(start, end, plan.months):
                raise InvalidPeriod(
                    f"plan {plan_id!r} is {plan.period}: a period starting at {clock.to_iso(start)} ends at "
                    f"{clock.to_iso(clock.add_months(start, plan.months))}, or up to "
                    f"{PERIOD_CLAMP_DAYS} days later where the billing calendar clamps a short month"
                )
            if not start <= now < end:
                raise InvalidPeriod(
                    f"the period {clock.to_iso(start)} to {clock.to_iso(end)} is not current; "
                    "an allowance is granted during its period"
                )
            for lot in account.lots:
                if lot.plan_id == plan_id and lot.source == "allowance" and (lot.expires_at or 0) > start:
                    raise InvalidPeriod(
                        f"plan {plan_id!r} already granted a period that ends at {clock.to_iso(lot.expires_at or 0)}"
                    )
            carried = rollover(account, plan_id, start, plan.rollover_cap, ROLLOVER_GRACE_MS)
            common = {"created_at": now, "expires_at": end, "currency": plan.currency, "plan_id": plan_id}
            lots = [
                lot_with_terms(
                    plan,
                    lot_id=ids.new_id("lot", now),
                    source="allowance",
                    granted=plan.allowance,
                    remaining=plan.allowance,
                    priority=plan.priority,
                    price_minor=plan.price_minor,
                    expiry_grace=ROLLOVER_GRACE_MS if plan.rollover_cap else 0,
                    **common,
                )
            ]
            rolled = sum(transfer.amount for transfer in carried)
            if rolled:
                # Moved, not granted: the credits were granted (and paid for) last period.
                lots.append(
                    lot_with_terms(
                        plan,
                        lot_id=ids.new_id("lot", now),
                        source="rollover",
                        granted=rolled,
                        remaining=rolled,
                        priority=DEFAULT_PRIORITY["rollover"],
                        price_minor=0,
                        expiry_grace=ROLLOVER_GRACE_MS,
                        **common,
                    )
                )
            details = {
                "plan_id": plan_id,
                "period_start": clock.to_iso(start),
                "period_end": clock.to_iso(end),
                "lot_ids": [lot.lot_id for lot in lots],
                "rolled_over": [{"lot_id": t.lot_id, "amount": t.amount} for t in carried],
                "catalog_version": catalog.version,
                "caller": context.caller.record(),
            }
            return self._credit(account, now, idem, "allowance", lots, details, None, carried)

        try:
            return self._mutate(account_id, idem, build)
        except IdempotencyKeyReused:
            raise PeriodConflict(
                f"plan {plan_id!r} was already granted for the period starting at {clock.to_iso(start)}, "
                "with another period_end"
            ) from None

    def consume(
        self,
        account_id: str,
        feature: str,
        quantity: int,
        dimensions: dict[str, str],
        idem: Idempotency,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        def build(account: Account, now: int) -> Mutation:
            catalog = self.catalogs.in_force(now)
            charge = price(catalog, feature, quantity, dimensions)
            use = Use(charge.feature, charge.licence, charge.locked, tuple(catalog.unlocked_by(charge.feature)))
            draws = allocate(account, charge.amount, now, use)
            seq = account.seq + 1
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
                    "caller": context.caller.record(),
                },
            )
            return Mutation(account, (entry,), (IdempotencyRecord(idem.key, idem.fingerprint, 200, body, seq),), draws)

        return self._mutate(account_id, idem, build)

    def ingest_usage(self, account_id: str, records: list[UsageRecord]) -> tuple[list[UsageOutcome], Account | None]:
        """Charge usage that workers already performed, each ``event_id`` once, ever.

        Records for the account are written together, as many per transaction as fit. Usage
        is never refused for want of credits: what the lots cannot pay becomes arrears.
        Returns each record's outcome, and the account as last written (for its outbox).
        Raises ConcurrentUpdate or StorageUnavailable when the records must be retried."""
        outcomes: dict[int, UsageOutcome] = {}
        priced: list[tuple[int, UsageRecord, Charge]] = []
        first_of: dict[str, int] = {}
        repeats: list[int] = []
        for index, record in enumerate(records):
            if first_of.setdefault(record.event_id, index) != index:  # the same event twice in one batch
                repeats.append(index)
                continue
            try:
                occurred = clock.from_datetime(record.occurred_at)
                if occurred > self._now() + MAX_CLOCK_SKEW_MS:
                    outcomes[index] = UsageOutcome(record.event_id, "rejected", "occurred_at is in the future")
                    continue
                catalog = self.catalogs.in_force(occurred)
                charge = price(catalog, record.feature, record.quantity, record.dimensions)
            except TollboothError as error:
                outcomes[index] = UsageOutcome(record.event_id, "rejected", f"{error.code}: {error.message}")
                continue
            except ValueError as error:  # a record built past the contract's validation
                outcomes[index] = UsageOutcome(record.event_id, "rejected", f"occurred_at: {error}")
                continue
            priced.append((index, record, charge))
        written: Account | None = None
        while priced:
            done, state = self._charge_usage(account_id, priced)
            written = state or written
            outcomes.update(done)
            priced = [item for item in priced if item[0] not in done]
        for index in repeats:
            record = records[index]
            first = outcomes[first_of[record.event_id]]
            if records[first_of[record.event_id]].fingerprint() != record.fingerprint():
                outcomes[index] = UsageOutcome(record.event_id, "rejected", REUSED)
            else:
                outcomes[index] = first if first.status == "rejected" else UsageOutcome(record.event_id, "duplicate")
        return [outcomes[index] for index in range(len(records))], written

    def _charge_usage(
        self, account_id: str, priced: list[tuple[int, UsageRecord, Charge]]
    ) -> tuple[dict[int, UsageOutcome], Account | None]:
        """Write the first records that fit in one transaction; their outcomes, and the state written."""
        account = self._known.get(account_id)
        pending = list(priced)
        outcomes: dict[int, UsageOutcome] = {}
        for attempt in range(self.max_write_attempts):
            fresh = account is None
            if account is None:
                account = self.repository.load_account(account_id)
            now = self._now()
            mutation, included = usage_mutation(account, pending, now, self.repository.max_transaction_items)
            try:
                self.repository.apply(mutation, now)
            except WriteConflict as conflict:
                self._known.forget(account_id)
                account = None
                used = conflict.keys if conflict.reason == WriteConflict.IDEMPOTENCY_KEY else set()
                if conflict.reason == WriteConflict.UNKNOWN:
                    used = {usage_key(record.event_id) for _, record, _ in pending}
                for index, record, _ in list(pending):
                    if usage_key(record.event_id) not in used:
                        continue
                    first = self.repository.find_idempotency_record(account_id, usage_key(record.event_id))
                    if first is None:
                        continue
                    if first.fingerprint == record.fingerprint():
                        outcomes[index] = UsageOutcome(record.event_id, "duplicate")
                    else:
                        outcomes[index] = UsageOutcome(record.event_id, "rejected", REUSED)
                    pending = [item for item in pending if item[0] != index]
                if not pending:
                    return outcomes, None
                if fresh and not used:
                    self._backoff(attempt)
                continue
            after = mutation.account_after
            self._known.put(account_id, after)
            for index, record, charge in included:
                outcomes[index] = UsageOutcome(record.event_id, "charged", None, charge.amount)
            return outcomes, after
        raise ConcurrentUpdate("the account stayed busy; the usage will be retried")

    def _credit(
        self,
        account: Account,
        now: int,
        idem: Idempotency,
        kind: str,
        lots: list[Lot],
        details: dict[str, Any],
        payment_reference: str | None,
        transfers: tuple[Draw, ...] = (),
    ) -> Mutation:
        # Credits transferred in (a rollover) come from lots that have already expired:
        # they add to what is available, not to the ledger balance.
        moved = sum(transfer.amount for transfer in transfers)
        amount = sum(lot.granted for lot in lots) - moved
        # New credits pay off arrears (usage already performed) before anything else.
        lots, paid_off = pay_off_arrears(lots, account.arrears)
        if paid_off:
            details = {**details, "arrears_paid": paid_off}
        seq = account.seq + 1
        entry_id = ids.new_id("led", now)
        body = GrantResponse(
            entry_id=entry_id,
            lots=[lot_view(lot) for lot in lots],
            balance=format_credits(account.available_at(now) + amount + moved - paid_off),
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
            (entry,),
            (IdempotencyRecord(idem.key, idem.fingerprint, 201, body, seq),),
            new_lots=tuple(lots),
            payment_reference=payment_reference,
            transfers=transfers,
            arrears_change=-paid_off,
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
            except TollboothError as refusal:
                if not fresh and isinstance(refusal, STATE_REFUSALS):  # never refuse on a remembered state
                    account = None
                    continue
                # A replay of a request that once succeeded must still get its first answer,
                # even if the same request would be refused now.
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
            record = mutation.idempotency
            assert record is not None, "every request's mutation records its answer"
            return Outcome(record.status_code, record.body)
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
        perks = perks_at(account, now)
        window_days = self.repository.expiry.warning_window // 86_400_000
        expiring = expiring_within(account, now, self.repository.expiry.warning_window)
        return BalanceResponse(
            account_id=account_id,
            available=format_credits(max(0, account.available_at(now) - account.arrears)),
            arrears=format_credits(account.arrears),
            balance=format_credits(account.balance),
            totals=Totals(
                granted=format_credits(account.granted),
                consumed=format_credits(account.consumed),
                expired=format_credits(account.expired),
            ),
            lots=[lot_view(lot) for lot in burn_down_order([x for x in account.lots if x.spendable_at(now)])],
            perks=PerksView(
                priority_processing=perks.priority_processing, unlocked_features=list(perks.unlocked_features)
            ),
            next_expiry=None
            if upcoming is None
            else NextExpiry(expires_at=clock.to_iso(upcoming.expires_at), amount=format_credits(upcoming.amount)),
            expiring_within_days=window_days,
            expiring=[
                NextExpiry(expires_at=clock.to_iso(x.expires_at), amount=format_credits(x.amount)) for x in expiring
            ],
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
