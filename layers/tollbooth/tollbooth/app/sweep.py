"""The expiry sweep: write off lots past their expiry, warn before lots expire, publish.

For each account the expiry index says has work due (one index item read per account):

1. each due lot is written off in its own transaction: an ``expire`` ledger entry for
   what is left (the breakage, with the price paid for it), the lot set to zero only if
   it still holds exactly that and has expired, and a ``credits.expired`` event put in
   the account's outbox, all guarded by the account version;
2. lots expiring within the warning window are marked warned, with a
   ``credits.expiring`` event put in the outbox, in one guarded write;
3. the outbox is published to EventBridge, then emptied in one guarded write.

Events therefore only ever describe committed state, and a crash anywhere leaves work
that the next run finds through the index (the outbox keeps the account due). A lost
race with a debit reloads the account item and starts over; a write-off can never
happen twice. A run stops when its time budget runs low and loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from tollbooth.app.outbox import flush_outbox
from tollbooth.app.ports import LedgerStore, Publisher, WriteConflict
from tollbooth.domain import clock
from tollbooth.domain.expiry import warn, write_off
from tollbooth.domain.ledger import (
    Account,
    ExpiryIndexing,
    Mutation,
    due_for_expiry,
    due_for_warning,
)
from tollbooth.observability import logger

# Publish the outbox once it holds this many events, so the account item stays small.
OUTBOX_FLUSH_AT = 25


@dataclass
class SweepReport:
    accounts: int = 0
    expired_lots: int = 0
    expired_credits: int = 0  # millicredits
    warned_lots: int = 0
    events_published: int = 0
    conflicts: int = 0
    failures: int = 0  # accounts left for the next run (publishing or storage failed)
    shards_failed: int = 0  # shards whose index query failed; their accounts wait for the next run
    complete: bool = True  # False: the time budget ran out; the next run carries on

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ExpirySweeper:
    def __init__(
        self,
        repository: LedgerStore,
        publisher: Publisher,
        indexing: ExpiryIndexing,
        *,
        now: Callable[[], int] = clock.now_ms,
        max_attempts: int = 5,
        page_size: int = 100,
    ) -> None:
        self.repository = repository
        self.publisher = publisher
        self.indexing = indexing
        self._now = now
        self.max_attempts = max_attempts
        self.page_size = page_size

    def sweep(self, time_left: Callable[[], int] | None = None, reserve_ms: int = 10_000) -> SweepReport:
        """One run over every shard of the index; stops early when ``time_left()`` < ``reserve_ms``."""
        now = self._now()
        report = SweepReport()
        for shard in range(self.indexing.shards):
            try:
                for account in self.repository.accounts_due(shard, now, self.page_size):
                    if time_left is not None and time_left() < reserve_ms:
                        report.complete = False
                        return report
                    self._settle(account, now, report)
            except Exception:
                # The index query failed: what is left of this shard stays due, and the next
                # run finds it.
                logger.exception("expiry shard left for the next run", extra={"shard": shard})
                report.shards_failed += 1
                report.complete = False
        return report

    def _settle(self, account: Account, now: int, report: SweepReport) -> None:
        report.accounts += 1
        for _ in range(self.max_attempts):
            try:
                self._settle_once(account, now, report)
                return
            except WriteConflict:
                # A debit (or another sweep) changed the account: read its item again.
                report.conflicts += 1
                fresh = self.repository.load_expiry_view(account.account_id)
                if fresh is None:
                    return
                account = fresh
            except Exception:  # storage, publishing, or a surprise: this account waits, the rest go on
                logger.exception("expiry left for the next run", extra={"account_id": account.account_id})
                report.failures += 1
                return
        report.failures += 1

    def _settle_once(self, account: Account, now: int, report: SweepReport) -> None:
        for lot in due_for_expiry(account, now):
            account = self._apply(write_off(account, lot, now), now)
            report.expired_lots += 1
            report.expired_credits += lot.remaining
            if len(account.pending_events) >= OUTBOX_FLUSH_AT:  # keep the account item small
                account = self._flush(account, now, report)
        warnings = due_for_warning(account, now, self.indexing.warning_window)
        # Each lot warned is one more item in the transaction: stay within the engine's limit.
        step = max(1, self.repository.max_transaction_items - 1)
        for start in range(0, len(warnings), step):
            account = self._apply(warn(account, warnings[start : start + step], now), now)
            report.warned_lots += len(warnings[start : start + step])
            if len(account.pending_events) >= OUTBOX_FLUSH_AT:
                account = self._flush(account, now, report)
        self._flush(account, now, report)

    def _flush(self, account: Account, now: int, report: SweepReport) -> Account:
        published = len(account.pending_events)
        account = flush_outbox(self.repository, self.publisher, account, now)
        report.events_published += published
        return account

    def _apply(self, mutation: Mutation, now: int) -> Account:
        self.repository.apply(mutation, now)
        return mutation.account_after
