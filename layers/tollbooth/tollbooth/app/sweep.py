"""The expiry sweep: write off lots past their expiry, warn before lots expire, publish.

For each account the expiry index says has work due (one index item read per account):

1. each due lot is written off in its own transaction: an ``expire`` ledger entry for
   what is left (the breakage, with the price paid for it), the lot set to zero only if
   it still holds exactly that and has expired, and a ``credits.expired`` event put in
   the account's outbox, all guarded by the account version;
2. lots expiring within the warning window are marked warned, with a
   ``credits.expiring`` event put in the outbox, in one guarded write;
3. each open hold past its expiry is released (``hold.expired``), its credits back in
   their lots (those of lots expired meanwhile written off), in its own guarded write;
   a hold on an escrow slice has an index entry of its own: its events are published
   from its item, and it is released into its slice (``domain.slice_holds``);
4. the outbox is published to EventBridge, then emptied in one guarded write.

Events therefore only ever describe committed state, and a crash anywhere leaves work
that the next run finds through the index (the outbox keeps the account due). A lost
race with a debit reloads the account item and starts over; a write-off can never
happen twice. A run stops when its time budget runs low and loses nothing. The index's
shards are swept side by side, a thread each (an account and its holds are in one shard).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from tollbooth.app.holds import expiry_plans
from tollbooth.app.outbox import SPILLS_PER_SWEEP_WRITE, flush
from tollbooth.app.ports import LedgerStore, Publisher, WriteConflict
from tollbooth.app.writes import Writes, Written
from tollbooth.domain import clock, ids
from tollbooth.domain.errors import ConcurrentUpdate
from tollbooth.domain.expiry import ExpiryIndexing, due_for_expiry, due_for_warning, warn, write_off
from tollbooth.domain.hold_state import DueHold, Hold
from tollbooth.domain.holds import due_holds, release_mutation
from tollbooth.domain.ledger import Account, Mutation
from tollbooth.domain.outbox import unpublished
from tollbooth.domain.slice_holds import OnAccount, published
from tollbooth.observability import logger

# Who the sweep's own entries name as their caller.
SWEEP = {"kind": "system", "id": "expiry-sweep"}
# Publish the outbox once it holds this many events, so the account item stays small.
OUTBOX_FLUSH_AT = 25
# Shards swept side by side, a thread each, at most this many. The work is waiting on
# DynamoDB and EventBridge, so threads multiply what one run sweeps (a run of one shard
# after another spent a request's latency on each account in turn: some 40 to 100 ms on
# AWS, 3,000 to 7,500 accounts in a 300 s run), and the first invocation's Queries overlap.
SHARD_WORKERS = 32


@dataclass
class SweepReport:
    accounts: int = 0
    expired_lots: int = 0
    expired_credits: int = 0  # millicredits
    warned_lots: int = 0
    expired_holds: int = 0
    events_published: int = 0
    conflicts: int = 0
    failures: int = 0  # accounts left for the next run (publishing or storage failed)
    shards_failed: int = 0  # shards whose index query failed; their accounts wait for the next run
    outbox_backlog: int = 0  # events left unpublished in the outboxes of accounts left for the next run
    complete: bool = True  # False: the time budget ran out; the next run carries on

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def merged(reports: list[SweepReport]) -> SweepReport:
    """The shards' reports as one run's: counts added, complete when every shard was."""
    total = SweepReport(complete=all(report.complete for report in reports))
    for report in reports:
        for name, value in asdict(report).items():
            if name != "complete":
                setattr(total, name, getattr(total, name) + value)
    return total


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
        workers: int = SHARD_WORKERS,
    ) -> None:
        self.repository = repository
        self.publisher = publisher
        self.indexing = indexing
        self._now = now
        self.page_size = page_size
        self.workers = workers
        self.writes = Writes(repository, max_attempts=max_attempts, now=now)
        self._flush = flush(publisher, repository, SPILLS_PER_SWEEP_WRITE)

    def sweep(self, time_left: Callable[[], int] | None = None, reserve_ms: int = 10_000) -> SweepReport:
        """One run over every shard of the index, ``workers`` shards side by side (an account
        and its holds are in one shard, so no two threads touch one account); each stops
        early when ``time_left()`` < ``reserve_ms``."""
        now = self._now()
        shards = range(self.indexing.shards)

        def run(shard: int) -> SweepReport:
            return self._sweep_shard(shard, now, time_left, reserve_ms)

        if self.workers <= 1 or len(shards) <= 1:
            return merged([run(shard) for shard in shards])
        self.repository.connect()  # else each thread would make a client (and a session) of its own
        with ThreadPoolExecutor(min(self.workers, len(shards)), thread_name_prefix="sweep") as pool:
            return merged(list(pool.map(run, shards)))

    def _sweep_shard(self, shard: int, now: int, time_left: Callable[[], int] | None, reserve_ms: int) -> SweepReport:
        report = SweepReport()
        try:
            for due in self.repository.accounts_due(shard, now, self.page_size):
                if time_left is not None and time_left() < reserve_ms:
                    report.complete = False
                    return report
                if isinstance(due, DueHold):
                    self._settle_hold(due, report)
                else:
                    self._settle(due, report)
        except Exception:
            # The index query failed: what is left of this shard stays due, and the next run
            # finds it.
            logger.exception("expiry shard left for the next run", extra={"shard": shard})
            report.shards_failed += 1
            report.complete = False
        return report

    def _next_step(self, account: Account, now: int) -> Mutation | None:
        """What the account needs next, one guarded write at a time: write off a due lot,
        warn of lots about to expire, publish the outbox (sooner when it grows, so the
        account item stays small)."""
        if len(account.pending_events) >= OUTBOX_FLUSH_AT:
            return self._flush(account, now)
        due = due_for_expiry(account, now)
        if due:
            return write_off(account, due[0], now)
        for hold_id in due_holds(account, now):  # the store loads an account in full when one is due
            hold = self.repository.find_hold(account.account_id, hold_id)
            room = self.repository.max_transaction_items
            released = None if hold is None else release_mutation(account, hold, now, None, SWEEP, room, expired=True)
            if released is not None:
                return released
        warnings = due_for_warning(account, now, self.indexing.warning_window)
        if warnings:
            # Each lot warned is one more item in the transaction: stay within the store's limit.
            return warn(account, warnings[: max(1, self.repository.max_transaction_items - 1)], now)
        return self._flush(account, now)

    def _settle(self, due: Account, report: SweepReport) -> None:
        report.accounts += 1
        account: Account | None = due  # as the last step left it (None: read it afresh)

        def conflicted(_: WriteConflict) -> bool:  # a debit (or another sweep) changed the account
            report.conflicts += 1
            return False

        try:
            while True:
                written = self.writes.write(
                    due.account_id,
                    self._next_step,
                    on_conflict=conflicted,
                    start=account,
                    load=lambda account_id: self.repository.load_expiry_view(account_id, self._now()),
                )
                if written is None:
                    return
                _count(report, written.mutation)
                account = written.after
        except ConcurrentUpdate:
            logger.warning(
                "expiry left for the next run: the account stayed busy", extra={"account_id": due.account_id}
            )
            report.failures += 1
            report.outbox_backlog += unpublished(account or due)
        except Exception:  # storage, publishing, or a surprise: this account waits, the rest go on
            logger.exception("expiry left for the next run", extra={"account_id": due.account_id})
            report.failures += 1
            report.outbox_backlog += unpublished(account or due)

    def _settle_hold(self, due: DueHold, report: SweepReport) -> None:
        """A hold of a slice's: publish its events, then (once it is past its expiry and
        open) release it, then publish that; each step guarded by the hold's status."""
        account_id, hold = due.account_id, due.hold
        try:
            for _ in range(self.writes.max_attempts):
                now = self._now()
                if hold.pending_events:
                    self.publisher.publish(hold.pending_events)
                    try:
                        self.repository.apply(published(account_id, hold), now)
                        report.events_published += len(hold.pending_events)
                    except WriteConflict:  # it changed meanwhile: read it again
                        report.conflicts += 1
                elif hold.status == "open" and hold.expires_at <= now:
                    report.expired_holds += int(self._expire(account_id, hold) is not None)
                else:
                    return
                found = self.repository.find_hold(account_id, hold.hold_id)
                if found is None:
                    return
                hold = found
        except Exception:  # storage, publishing, or a surprise: the hold stays due
            logger.exception("hold left for the next run", extra={"account_id": account_id, "hold_id": hold.hold_id})
            report.failures += 1

    def _expire(self, account_id: str, hold: Hold) -> Written | None:
        """Release an expired hold of a slice's: on its slice, or on the account."""
        on_slice, on_account = expiry_plans(self.repository, account_id, hold.hold_id, SWEEP)
        index = ids.hold_slice(hold.hold_id)
        try:
            return self.writes.write(
                account_id, on_slice, pool=False, load=lambda a: self.repository.load_slice(a, int(index or 0))
            )
        except OnAccount:
            return self.writes.write(account_id, on_account, pool=False, load=self.repository.load_account)


def _count(report: SweepReport, mutation: Mutation) -> None:
    report.expired_lots += len(mutation.expirations)
    report.expired_credits += sum(x.amount for x in mutation.expirations)
    report.warned_lots += len(mutation.warned)
    report.expired_holds += int(mutation.hold is not None)
    if (mutation.pending_events == () or mutation.unspilled) and not mutation.entries and not mutation.warned:
        report.events_published += unpublished(mutation.account) - unpublished(mutation.account_after)
