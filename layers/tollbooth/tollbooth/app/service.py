"""The ledger's use cases, one public method each.

Each one hands the write loop (``app.writes``) a plan: read the catalog in force, let the
domain compute the ``Mutation``, and attach the answer to keep for replays. The rules live
in ``domain``; this module only says which rule a request asks for and what it answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from tollbooth.app.context import INTERNAL, RequestContext
from tollbooth.app.holds import Holds
from tollbooth.app.hot import Contended, HotConsumes
from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.outbox import AfterCommit
from tollbooth.app.ports import LedgerStore, Publisher, WriteConflict
from tollbooth.app.queries import balance, ledger_page
from tollbooth.app.receipts import (
    with_adjustment_receipt,
    with_consume_receipt,
    with_credit_receipt,
    with_dispute_receipt,
    with_refund_receipt,
    with_reversal_receipt,
    with_void_receipt,
)
from tollbooth.app.refunds import find_payment
from tollbooth.app.reversals import departed_lots, find_charge
from tollbooth.app.usage import UsageCharges
from tollbooth.app.views import LEDGER_PAGE_MAX
from tollbooth.app.writes import WRITE_BUDGET_SECONDS, Plan, Refused, Writes
from tollbooth.contracts.history import LedgerPageResponse
from tollbooth.contracts.http import BalanceResponse
from tollbooth.contracts.usage import UsageRecord
from tollbooth.domain import adjustments, clock, debits, disputes, grants, refunds, reversals
from tollbooth.domain.catalog import CatalogHistory
from tollbooth.domain.errors import IdempotencyKeyReused, PaymentReferenceUsed, PeriodConflict
from tollbooth.domain.ledger import RESERVED_KEY_PREFIX, Account, LotSource, Mutation, Use
from tollbooth.domain.pricing import Charge
from tollbooth.domain.usage_charges import UsageOutcome


class _Replayed(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__("replayed")
        self.outcome = outcome


class LedgerService:
    def __init__(
        self,
        repository: LedgerStore,
        catalogs: CatalogHistory,
        *,
        max_write_attempts: int = 40,
        ledger_page_max: int = LEDGER_PAGE_MAX,
        now: Callable[[], int] = clock.now_ms,
        sleep: Callable[[float], None] = time.sleep,
        write_budget: float = WRITE_BUDGET_SECONDS,
        hot_slices: int = 0,
        publisher: Publisher | None = None,
    ) -> None:
        self.repository = repository
        self.catalogs = catalogs
        self.ledger_page_max = ledger_page_max
        self._now = now
        self.writes = Writes(repository, max_attempts=max_write_attempts, now=now, sleep=sleep, budget=write_budget)
        # As deployed, a request's events are published right after it (else by the sweep).
        self._after_commit = None if publisher is None else AfterCommit(self.writes, repository, publisher)
        self.usage = UsageCharges(self.writes, repository, catalogs, now)
        self.hot = HotConsumes(self.writes, repository, hot_slices, self._request, self._replay)
        self.holds = Holds(repository, catalogs, self._request, self.hot)

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
        def plan(account: Account, now: int) -> Mutation:
            credit = grants.purchase(self.catalogs.in_force(now), account, package_id, payment_reference, now)
            return self._credited(account, credit, now, idem, context)

        return self._request(account_id, idem, plan)

    def grant(
        self,
        account_id: str,
        credits: int,
        source: LotSource,
        reason: str,
        expires_at: datetime | None,
        priority: int | None,
        idem: Idempotency,
        licences: tuple[str, ...] | None = None,
        features: tuple[str, ...] | None = None,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        expires_ms = None if expires_at is None else clock.from_datetime(expires_at)
        asked = grants.GrantTerms(credits, source, reason, expires_ms, priority, licences, features)

        def plan(account: Account, now: int) -> Mutation:
            credit = grants.service_grant(self.catalogs.in_force(now), asked, now)
            return self._credited(account, credit, now, idem, context)

        return self._request(account_id, idem, plan)

    def grant_allowance(
        self,
        account_id: str,
        plan_id: str,
        period_start: datetime,
        period_end: datetime | None = None,
        *,
        payment_reference: str | None = None,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        """Grant a plan's allowance for the period starting at ``period_start``, once per
        account, plan and period (the key Tollbooth derives), carrying over what the last
        period left, up to the cap. The period ends at ``period_end`` when the billing
        system says so (its calendar may anchor on the 31st), else one plan period later.
        ``payment_reference``: the payment that funded the period, which a refund names."""
        start = clock.from_datetime(period_start)
        end = None if period_end is None else clock.from_datetime(period_end)
        period = {"plan_id": plan_id, "period_start": clock.to_iso(start)}
        if end is not None:
            period["period_end"] = clock.to_iso(end)
        if payment_reference is not None:
            period["payment_reference"] = payment_reference
        key = f"{RESERVED_KEY_PREFIX}allowance:{plan_id}:{clock.to_iso(start)}"
        idem = Idempotency.derived(key, "allowance", account_id, period)

        def plan(account: Account, now: int) -> Mutation:
            credit = grants.allowance(self.catalogs.in_force(now), account, plan_id, start, end, now)
            if payment_reference is not None:  # a refund of that payment claws this period back
                details = {**credit.details, "payment_reference": payment_reference}
                credit = replace(credit, payment_reference=payment_reference, details=details)
            return self._credited(account, credit, now, idem, context)

        try:
            return self._request(account_id, idem, plan)
        except IdempotencyKeyReused:
            raise PeriodConflict(
                f"plan {plan_id!r} was already granted for the period starting at {clock.to_iso(start)}, "
                "with another period_end or payment_reference"
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
        sliced: bool = False,
    ) -> Outcome:
        """Debit the credits a use costs, at once. A contended account (or, ``sliced``, any)
        is served by escrow slices (``app.hot``), so that its consumes do not queue on one item."""
        caller = context.caller.record()

        def priced(now: int) -> tuple[Charge, Use]:
            return debits.consume(self.catalogs.in_force(now), feature, quantity, dimensions)

        def whole(account: Account, now: int) -> Mutation:
            charge, use = priced(now)
            mutation = debits.consume_mutation(account, charge, use, now, idem.key, caller)
            return with_consume_receipt(mutation, charge, idem, now)

        def plan(account: Account, now: int) -> Mutation:
            if account.escrow and self.hot.enabled:
                raise Contended
            return whole(account, now)

        try:
            if self.hot.busy(account_id) or (sliced and self.hot.enabled):
                raise Contended
            return self._request(account_id, idem, plan, pool=not self.hot.enabled, on_race=self.hot.on_race)
        except Contended:
            return self.hot.consume(account_id, idem, priced, caller, whole)

    def refund(
        self,
        account_id: str,
        payment_reference: str,
        asked: refunds.RefundRequest,
        idem: Idempotency,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        """Refund money of a payment, and claw back the credits it granted in proportion
        (``domain.refunds``). The payment is read afresh for each attempt: its refunded
        total guards the write."""

        def plan(account: Account, now: int) -> Mutation:
            payment = find_payment(self.repository, account_id, payment_reference)
            policy = self.catalogs.in_force(now).refund_policy_of(payment.package_id)
            caller = context.caller.record()
            mutation = refunds.refund_mutation(account, payment, asked, policy, now, idem.key, caller)
            return with_refund_receipt(mutation, idem)

        return self._request(account_id, idem, plan)

    def dispute(
        self,
        account_id: str,
        payment_reference: str,
        asked: disputes.DisputeRequest,
        idem: Idempotency,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        """Move a payment's dispute: opened, won or lost (``domain.disputes``). The payment is
        read afresh for each attempt: its dispute status guards the write."""

        def plan(account: Account, now: int) -> Mutation:
            payment = find_payment(self.repository, account_id, payment_reference)
            policy = self.catalogs.in_force(now).refund_policy_of(payment.package_id)
            caller = context.caller.record()
            mutation = disputes.dispute_mutation(account, payment, asked, policy, now, idem.key, caller)
            status = asked.status if mutation is not None else (payment.dispute or asked.status)
            return with_dispute_receipt(account, mutation, payment_reference, status, idem)

        return self._request(account_id, idem, plan)

    def adjust(
        self,
        account_id: str,
        credits: int,
        correction: adjustments.Correction,
        allow_arrears: bool,
        idem: Idempotency,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        """Add credits (positive) or take them out (negative), audited (``domain.adjustments``)."""

        def plan(account: Account, now: int) -> Mutation:
            catalog = self.catalogs.in_force(now)
            caller = context.caller.record()
            mutation = adjustments.adjustment_mutation(
                catalog, account, credits, correction, allow_arrears, now, idem.key, caller
            )
            return with_adjustment_receipt(mutation, idem)

        return self._request(account_id, idem, plan)

    def void(
        self,
        account_id: str,
        lot_id: str,
        correction: adjustments.Correction,
        idem: Idempotency,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        """Remove what is left of one lot, audited (``domain.adjustments``)."""

        def plan(account: Account, now: int) -> Mutation:
            caller = context.caller.record()
            return with_void_receipt(
                adjustments.void_mutation(account, lot_id, correction, now, idem.key, caller), idem
            )

        return self._request(account_id, idem, plan)

    def reverse(
        self,
        account_id: str,
        asked: reversals.ReversalRequest,
        idem: Idempotency,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        """Give back a charge, or part of it (``domain.reversals``). What the charge has had
        reversed is read afresh for each attempt: that total guards the write."""

        def plan(account: Account, now: int) -> Mutation:
            charged = find_charge(self.repository, account_id, asked.entry_id, asked.event_id)
            before = self.repository.reversed_of(account_id, charged.key)
            terms = departed_lots(self.repository, account, charged)
            caller = context.caller.record()
            mutation = reversals.reversal_mutation(
                account,
                charged,
                before,
                asked,
                terms,
                now,
                idem.key,
                caller,
                max_items=self.repository.max_transaction_items,
            )
            return with_reversal_receipt(mutation, idem)

        return self._request(account_id, idem, plan)

    def ingest_usage(self, account_id: str, records: list[UsageRecord]) -> tuple[list[UsageOutcome], Account | None]:
        """Charge usage that workers already performed, each ``event_id`` once, ever; see
        ``app.usage``."""
        return self.usage.ingest(account_id, records)

    @staticmethod
    def _credited(
        account: Account, credit: grants.Credit, now: int, idem: Idempotency, context: RequestContext
    ) -> Mutation:
        mutation = grants.credit_mutation(account, credit, now, idem.key, context.caller.record())
        return with_credit_receipt(mutation, idem, now)

    def _request(self, account_id: str, idem: Idempotency, plan: Plan, **options: Any) -> Outcome:
        """Write a request's mutation once (``options`` go to the write loop). A replay of a
        request that once succeeded gets its first answer, even if the same request would be
        refused now."""

        def on_conflict(conflict: WriteConflict) -> bool:
            if conflict.reason in (WriteConflict.IDEMPOTENCY_KEY, WriteConflict.UNKNOWN):
                replay = self._replay(account_id, idem)
                if replay is not None:
                    raise _Replayed(replay)
            if conflict.reason == WriteConflict.PAYMENT_REFERENCE:
                raise PaymentReferenceUsed(
                    "this payment_reference has already been granted; credits are granted once per payment"
                )
            return False

        try:
            written = self.writes.write(account_id, plan, on_conflict=on_conflict, **options)
        except _Replayed as replayed:
            return replayed.outcome
        except Refused as refused:
            replay = self._replay(account_id, idem)
            if replay is not None:
                return replay
            raise refused.error from None
        assert written is not None, "a request always plans a mutation"
        # A change computed from the account read whole (not its own side, nor a slice).
        whole = options.get("load", self.repository.load_account) == self.repository.load_account
        if self._after_commit is not None:
            self._after_commit.publish(account_id, written, whole=whole and "remember_as" not in options)
        record = written.mutation.idempotency
        assert record is not None, "every request's mutation records its answer"
        return Outcome(record.status_code, record.body)

    def _replay(self, account_id: str, idem: Idempotency) -> Outcome | None:
        record = self.repository.find_idempotency_record(account_id, idem.key)
        if record is None:
            return None
        if record.fingerprint != idem.fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was already used with a different request")
        return Outcome(record.status_code, record.body, replayed=True)

    # -- reads -----------------------------------------------------------------

    def balance(self, account_id: str) -> BalanceResponse:
        return balance(self.repository, account_id, self._now())

    def ledger(self, account_id: str, limit: int, cursor: str | None) -> LedgerPageResponse:
        return ledger_page(self.repository, account_id, limit, cursor, self.ledger_page_max)
