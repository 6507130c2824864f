"""Holds' use cases (``domain.holds``): place, capture and release, each a request written
once by the service's write loop, and the list of an account's holds. Each attempt reads
the hold afresh: its status guards the write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tollbooth.app.context import INTERNAL, RequestContext
from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.ports import LedgerStore
from tollbooth.app.receipts import with_capture_receipt, with_hold_receipt, with_release_receipt
from tollbooth.contracts.holds import HoldsResponse, HoldView
from tollbooth.domain import clock, holds
from tollbooth.domain.catalog import CatalogHistory
from tollbooth.domain.errors import HoldNotFound
from tollbooth.domain.hold_state import Hold
from tollbooth.domain.ledger import Account, Mutation
from tollbooth.domain.money import format_credits

Request = Callable[..., Outcome]  # LedgerService._request: a plan written once, with replays
HOLDS_PAGE = 100


class Holds:
    def __init__(self, repository: LedgerStore, catalogs: CatalogHistory, request: Request) -> None:
        self.repository = repository
        self.catalogs = catalogs
        self._request = request

    def _write(self, account_id: str, idem: Idempotency, plan: Callable[[Account, int], Mutation]) -> Outcome:
        # On the account's own lots, read afresh with its slices, which stay unless the plan
        # needs them pooled (``domain.holds``).
        return self._request(account_id, idem, plan, pool=False, load=self.repository.load_account)

    def place(
        self, account_id: str, asked: holds.HoldRequest, idem: Idempotency, *, context: RequestContext = INTERNAL
    ) -> Outcome:
        def plan(account: Account, now: int) -> Mutation:
            catalog = self.catalogs.in_force(now)
            caller, room = context.caller.record(), self.repository.max_transaction_items
            mutation = holds.place_mutation(catalog, account, asked, now, idem.key, caller, room)
            return with_hold_receipt(mutation, idem, now)

        return self._write(account_id, idem, plan)

    def capture(
        self,
        account_id: str,
        hold_id: str,
        quantity: int | None,
        credits: int | None,
        idem: Idempotency,
        *,
        context: RequestContext = INTERNAL,
    ) -> Outcome:
        """Charge what the job used, priced by the catalog version that priced the hold."""

        def plan(account: Account, now: int) -> Mutation:
            hold = self._hold(account_id, hold_id)
            catalog = None if hold.catalog_version is None else self.catalogs.get(hold.catalog_version)
            amount = holds.capture_amount(catalog, hold, quantity, credits)
            caller = context.caller.record()
            return with_capture_receipt(holds.capture_mutation(account, hold, amount, now, idem.key, caller), idem)

        return self._write(account_id, idem, plan)

    def release(
        self, account_id: str, hold_id: str, idem: Idempotency, *, context: RequestContext = INTERNAL
    ) -> Outcome:
        def plan(account: Account, now: int) -> Mutation:
            hold = self._hold(account_id, hold_id)
            mutation = holds.release_mutation(account, hold, now, idem.key, context.caller.record())
            return with_release_receipt(account, hold, mutation, idem, now)

        return self._write(account_id, idem, plan)

    def listing(self, account_id: str) -> HoldsResponse:
        found = self.repository.list_holds(account_id, HOLDS_PAGE)
        held = sum(hold.held for hold in found if hold.status == "open")
        return HoldsResponse(account_id=account_id, held=format_credits(held), holds=[_view(h) for h in found])

    def _hold(self, account_id: str, hold_id: str) -> Hold:
        hold = self.repository.find_hold(account_id, hold_id)
        if hold is None:
            raise HoldNotFound(f"the account has no hold {hold_id!r}")
        return hold


def _view(hold: Hold) -> HoldView:
    at: dict[str, Any] = {"placed_at": hold.placed_at, "expires_at": hold.expires_at}
    return HoldView(
        hold_id=hold.hold_id,
        status=hold.status,
        credits=format_credits(hold.credits),
        held=format_credits(hold.held),
        captured=format_credits(hold.captured),
        feature=hold.feature,
        quantity=hold.quantity,
        **{name: clock.to_iso(value) for name, value in at.items()},
        closed_at=None if hold.closed_at is None else clock.to_iso(hold.closed_at),
    )
