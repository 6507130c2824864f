"""Charging usage that workers already performed, each ``event_id`` once, ever.

Records of one account are priced by the catalog in force when they occurred, then written
together, as many per transaction as fit (``domain.usage_charges``). Usage is never refused
for want of credits: what the lots cannot pay becomes arrears.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tollbooth.app.ports import LedgerStore, WriteConflict
from tollbooth.app.writes import Writes
from tollbooth.contracts.usage import UsageRecord
from tollbooth.domain import clock
from tollbooth.domain.catalog import CatalogHistory
from tollbooth.domain.errors import TollboothError
from tollbooth.domain.ledger import Account, Mutation
from tollbooth.domain.pricing import Charge, price
from tollbooth.domain.usage_charges import MAX_CLOCK_SKEW_MS, REUSED, UsageOutcome, usage_key, usage_mutation

Priced = tuple[int, UsageRecord, Charge]


def price_records(
    records: Sequence[UsageRecord], catalogs: CatalogHistory, now: int
) -> tuple[list[Priced], dict[int, UsageOutcome], dict[int, int]]:
    """Each record priced at the version in force when it occurred; the ones that cannot be
    charged, with why; and the repeats of an event_id within the batch (index -> first)."""
    priced: list[Priced] = []
    refused: dict[int, UsageOutcome] = {}
    first_of: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for index, record in enumerate(records):
        first = first_of.setdefault(record.event_id, index)
        if first != index:  # the same event twice in one batch
            repeats[index] = first
            continue
        try:
            occurred = clock.from_datetime(record.occurred_at)
            if occurred > now + MAX_CLOCK_SKEW_MS:
                refused[index] = UsageOutcome(record.event_id, "rejected", "occurred_at is in the future")
                continue
            charge = price(catalogs.in_force(occurred), record.feature, record.quantity, record.dimensions)
        except TollboothError as error:
            refused[index] = UsageOutcome(record.event_id, "rejected", f"{error.code}: {error.message}")
            continue
        except ValueError as error:  # a record built past the contract's validation
            refused[index] = UsageOutcome(record.event_id, "rejected", f"occurred_at: {error}")
            continue
        priced.append((index, record, charge))
    return priced, refused, repeats


class UsageCharges:
    def __init__(self, writes: Writes, store: LedgerStore, catalogs: CatalogHistory, now: Callable[[], int]) -> None:
        self.writes = writes
        self.store = store
        self.catalogs = catalogs
        self._now = now

    def ingest(self, account_id: str, records: Sequence[UsageRecord]) -> tuple[list[UsageOutcome], Account | None]:
        """Each record's outcome, and the account as last written (for its outbox). Raises
        ConcurrentUpdate or StorageUnavailable when the records must be retried."""
        priced, outcomes, repeats = price_records(records, self.catalogs, self._now())
        written: Account | None = None
        while priced:
            done, state = self._charge(account_id, priced)
            written = state or written
            outcomes.update(done)
            priced = [item for item in priced if item[0] not in done]
        for index, first in repeats.items():
            record, original = records[index], outcomes[first]
            if records[first].fingerprint() != record.fingerprint():
                outcomes[index] = UsageOutcome(record.event_id, "rejected", REUSED)
            else:
                duplicate = UsageOutcome(record.event_id, "duplicate")
                outcomes[index] = original if original.status == "rejected" else duplicate
        return [outcomes[index] for index in range(len(records))], written

    def _charge(self, account_id: str, priced: list[Priced]) -> tuple[dict[int, UsageOutcome], Account | None]:
        """Write the first records that fit in one transaction; their outcomes, and the state written."""
        pending = list(priced)
        outcomes: dict[int, UsageOutcome] = {}
        included: list[Priced] = []

        def plan(account: Account, now: int) -> Mutation | None:
            if not pending:
                return None
            mutation, fitted = usage_mutation(account, pending, now, self.store.max_transaction_items)
            included[:] = fitted
            return mutation

        def on_conflict(conflict: WriteConflict) -> bool:
            # Records charged before (a redelivery) are answered from their idempotency records.
            used = conflict.keys if conflict.reason == WriteConflict.IDEMPOTENCY_KEY else set()
            if conflict.reason == WriteConflict.UNKNOWN:
                used = {usage_key(record.event_id) for _, record, _ in pending}
            for index, record, _ in list(pending):
                if usage_key(record.event_id) in used and (answer := self._earlier(account_id, record)) is not None:
                    outcomes[index] = answer
                    pending[:] = [item for item in pending if item[0] != index]
            return bool(used)

        written = self.writes.write(
            account_id, plan, on_conflict=on_conflict, busy="the account stayed busy; the usage will be retried"
        )
        if written is None:
            return outcomes, None
        for index, record, charge in included:
            outcomes[index] = UsageOutcome(record.event_id, "charged", None, charge.amount)
        return outcomes, written.after

    def _earlier(self, account_id: str, record: UsageRecord) -> UsageOutcome | None:
        first = self.store.find_idempotency_record(account_id, usage_key(record.event_id))
        if first is None:
            return None
        if first.fingerprint == record.fingerprint():
            return UsageOutcome(record.event_id, "duplicate")
        return UsageOutcome(record.event_id, "rejected", REUSED)
