"""Holds' use cases (``domain.holds``): place, capture and release, each a request written
once by the service's write loop, and the list of an account's holds. Each attempt reads
the hold afresh: its status guards the write.

A busy account's holds go to its escrow slices, as its consumes do (``app.hot``,
``domain.slice_holds``): placed on this container's slice, and captured and released on
the slice they were placed on, unless the slice cannot do it alone (``OnAccount``): then
on the account's own lots, read afresh with its slices, which stay unless the change needs
them pooled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tollbooth.app.context import INTERNAL, RequestContext
from tollbooth.app.hot import Contended, HotConsumes
from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.ports import LedgerStore
from tollbooth.app.receipts import with_capture_receipt, with_hold_receipt, with_release_receipt
from tollbooth.app.writes import Plan
from tollbooth.contracts.holds import HoldsResponse, HoldView
from tollbooth.domain import clock, holds, ids
from tollbooth.domain.catalog import CatalogHistory
from tollbooth.domain.errors import HoldNotFound
from tollbooth.domain.hold_state import Hold
from tollbooth.domain.ledger import Account, Mutation, Use
from tollbooth.domain.money import format_credits
from tollbooth.domain.slice_holds import OnAccount, capture_on_slice, place_on_slice, release_on_slice

Request = Callable[..., Outcome]  # LedgerService._request: a plan written once, with replays
HOLDS_PAGE = 100


class Holds:
    def __init__(self, repository: LedgerStore, catalogs: CatalogHistory, request: Request, hot: HotConsumes) -> None:
        self.repository = repository
        self.catalogs = catalogs
        self._request = request
        self.hot = hot

    def _write(self, account_id: str, idem: Idempotency, plan: Plan, hold_id: str | None, on_slice: Plan) -> Outcome:
        """On the slice the hold was placed on, if any, else (or when the slice cannot do it
        alone) on the account's own lots, read afresh with its slices."""
        index = None if hold_id is None else ids.hold_slice(hold_id)
        if index is not None:
            try:
                return self._request(
                    account_id,
                    idem,
                    on_slice,
                    pool=False,
                    load=lambda account: self.repository.load_slice(account, index),
                    remember_as=f"{account_id}#slice#{index}",
                )
            except OnAccount:
                pass
        return self._request(account_id, idem, plan, pool=False, load=self.repository.load_account)

    def place(
        self,
        account_id: str,
        asked: holds.HoldRequest,
        idem: Idempotency,
        *,
        context: RequestContext = INTERNAL,
        sliced: bool = False,
    ) -> Outcome:
        """Reserve what ``asked`` needs. A contended account (or, ``sliced``, any) has it
        placed on this container's escrow slice (``app.hot``)."""
        caller, window = context.caller.record(), self.repository.expiry.warning_window

        def plan(account: Account, now: int) -> Mutation:
            if account.escrow and self.hot.enabled:
                raise Contended
            return on_account(account, now)

        def on_account(account: Account, now: int) -> Mutation:
            catalog = self.catalogs.in_force(now)
            mutation = holds.place_mutation(catalog, account, asked, now, idem.key, caller)
            return with_hold_receipt(mutation, idem, now)

        def on_slice(view: Account, index: int, now: int) -> Mutation:
            catalog = self.catalogs.in_force(now)
            mutation = place_on_slice(catalog, view, index, asked, now, idem.key, caller, window)
            return with_hold_receipt(mutation, idem, now)

        def need(now: int) -> tuple[int, Use]:
            amount, use, _ = holds.reservation(self.catalogs.in_force(now), asked)
            return amount, use

        try:
            if self.hot.busy(account_id) or (sliced and self.hot.enabled):
                raise Contended
            # A lost race on a fresh read means the account is contended: to its slices.
            load = self.repository.load_account
            return self._request(account_id, idem, plan, pool=False, load=load, on_race=self.hot.on_race)
        except Contended:
            return self.hot.serve(account_id, idem, need, on_slice, on_account, on_account)

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
        caller, window = context.caller.record(), self.repository.expiry.warning_window
        room = self.repository.max_transaction_items

        def amount_of(hold: Hold) -> int:
            catalog = None if hold.catalog_version is None else self.catalogs.get(hold.catalog_version)
            return holds.capture_amount(catalog, hold, quantity, credits)

        def plan(account: Account, now: int) -> Mutation:
            hold = self._hold(account_id, hold_id)
            mutation = holds.capture_mutation(account, hold, amount_of(hold), now, idem.key, caller, room)
            return with_capture_receipt(mutation, idem)

        def on_slice(view: Account, now: int) -> Mutation:
            hold = self._hold(account_id, hold_id)
            mutation = capture_on_slice(view, hold, amount_of(hold), now, idem.key, caller, window)
            return with_capture_receipt(mutation, idem)

        return self._write(account_id, idem, plan, hold_id, on_slice)

    def release(
        self, account_id: str, hold_id: str, idem: Idempotency, *, context: RequestContext = INTERNAL
    ) -> Outcome:
        caller, window = context.caller.record(), self.repository.expiry.warning_window
        room = self.repository.max_transaction_items

        def plan(account: Account, now: int) -> Mutation:
            hold = self._hold(account_id, hold_id)
            mutation = holds.release_mutation(account, hold, now, idem.key, caller, room)
            return with_release_receipt(account, hold, mutation, idem, now)

        def on_slice(view: Account, now: int) -> Mutation:
            hold = self._hold(account_id, hold_id)
            mutation = release_on_slice(view, hold, now, idem.key, caller, window)
            return with_release_receipt(view, hold, mutation, idem, now, on_slice=True)

        return self._write(account_id, idem, plan, hold_id, on_slice)

    def listing(self, account_id: str) -> HoldsResponse:
        found = self.repository.list_holds(account_id, HOLDS_PAGE)
        held = sum(hold.held for hold in found if hold.status == "open")
        return HoldsResponse(account_id=account_id, held=format_credits(held), holds=[_view(h) for h in found])

    def _hold(self, account_id: str, hold_id: str) -> Hold:
        hold = self.repository.find_hold(account_id, hold_id)
        if hold is None:
            raise HoldNotFound(f"the account has no hold {hold_id!r}")
        return hold


def expiry_plans(store: LedgerStore, account_id: str, hold_id: str, caller: Mapping[str, str]) -> tuple[Plan, Plan]:
    """The sweep's release of an expired hold of a slice's: on its slice, and on the account
    when the slice cannot do it alone (each reads the hold afresh; None: closed already)."""
    window = store.expiry.warning_window

    def on_slice(view: Account, now: int) -> Mutation | None:
        hold = store.find_hold(account_id, hold_id)
        return None if hold is None else release_on_slice(view, hold, now, None, caller, window, expired=True)

    def on_account(account: Account, now: int) -> Mutation | None:
        hold, room = store.find_hold(account_id, hold_id), store.max_transaction_items
        return None if hold is None else holds.release_mutation(account, hold, now, None, caller, room, expired=True)

    return on_slice, on_account


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
