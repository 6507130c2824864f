"""The cost model's rows for money flowing back and holds: a refund, and a hold placed then
captured (``bench.cost`` renders them with the rest)."""

from __future__ import annotations

import uuid

from bench.common import MAX_GRANT
from bench.cost import WORDS_PER_CREDIT, Operation, _id, _Rig


def money_back_and_hold_costs() -> list[Operation]:
    """A full refund of a purchase, and a hold placed then captured below what it held."""
    from tollbooth.app.idempotency import Idempotency
    from tollbooth.domain.holds import HoldRequest
    from tollbooth.domain.refunds import RefundRequest

    rig = _Rig()
    account, reference = _id("acct"), f"pi_{uuid.uuid4().hex[:24]}"
    rig.service.purchase(account, "standard", reference, Idempotency.of(_id("o"), "purchase", account, {}))
    rig.consume(account, 10)

    def refund() -> None:
        asked = RefundRequest(None, "cost model", "bench")
        rig.service.refund(account, reference, asked, Idempotency.of(_id("r"), "refund", account, {}))

    refunded, refund_ms = rig.measure(refund)
    rig.grant(account, MAX_GRANT)
    held: dict[str, str] = {}

    def place() -> None:
        asked = HoldRequest("text_generation", 20 * WORDS_PER_CREDIT, {}, None, 900)
        idem = Idempotency.of(_id("h"), "hold", account, {})
        held["id"] = rig.service.holds.place(account, asked, idem).body["hold_id"]

    def capture() -> None:
        idem = Idempotency.of(_id("c"), "capture", account, {})
        rig.service.holds.capture(account, held["id"], 12 * WORDS_PER_CREDIT, None, idem)

    placed, place_ms = rig.measure(place)
    captured, capture_ms = rig.measure(capture)
    return [
        Operation("refund (full, standard package)", refunded, api=True, measured_ms=refund_ms),
        Operation("hold placed (1 lot)", placed, api=True, measured_ms=place_ms),
        Operation("hold captured below it (the rest released)", captured, api=True, measured_ms=capture_ms),
        *_slice_hold_costs(),
    ]


def _slice_hold_costs() -> list[Operation]:
    """A hot account's hold, placed and captured on its container's slice, and the sweep's
    publishing of each change's event from the hold's item (which keeps it in the index)."""
    from tollbooth.app.idempotency import Idempotency
    from tollbooth.domain.holds import HoldRequest

    rig = _Rig(hot_slices=32)
    account = _id("acct")
    rig.grant(account, MAX_GRANT)
    rig.consume(account, 1, sliced=True)  # the refill that fills the slices
    held: dict[str, str] = {}

    def place() -> None:
        asked = HoldRequest("text_generation", 20 * WORDS_PER_CREDIT, {}, None, 900)
        idem = Idempotency.of(_id("h"), "hold", account, {})
        held["id"] = rig.service.holds.place(account, asked, idem, sliced=True).body["hold_id"]

    def capture() -> None:
        idem = Idempotency.of(_id("c"), "capture", account, {})
        rig.service.holds.capture(account, held["id"], 12 * WORDS_PER_CREDIT, None, idem)

    placed, place_ms = rig.measure(place)
    published, _ = rig.measure(rig.sweeper.sweep)
    captured, capture_ms = rig.measure(capture)
    return [
        Operation("hold placed on a slice (hot account)", placed, api=True, measured_ms=place_ms),
        Operation("hold captured on a slice (the rest released)", captured, api=True, measured_ms=capture_ms),
        Operation("slice hold: the sweep publishes one change's event", published),
    ]
