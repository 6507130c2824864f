"""Pricing rules that live on lots, against real DynamoDB semantics (moto and DynamoDB Local):
catalog versions, licence and feature restrictions, perks, campaigns and subscription plans."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import pytest

from tests.support.ledger import ACCOUNT, Clock, assert_conserved
from tollbooth.adapters.dynamodb import Repository
from tollbooth.app.context import Caller, RequestContext
from tollbooth.app.idempotency import Idempotency, Outcome
from tollbooth.app.service import LedgerService
from tollbooth.domain import clock as clocks
from tollbooth.domain.catalog import CatalogHistory, parse_catalog
from tollbooth.domain.errors import FeatureLocked, GrantTooLarge, InsufficientCredits, InvalidPeriod, PeriodConflict

COMMON = """
licences = ["personal", "commercial"]
[features.image]
unit = "image"
credits = 1
[features.image.dimensions.licence]
default = "personal"
values = { personal = 1, commercial = 2 }
[features.voice]
unit = "request"
credits = 5
locked = true
[packages.personal_pack]
name = "Personal"
price_minor = 500
currency = "USD"
credits = 10
expiry = "never"
licences = ["personal"]
[packages.pro_pack]
name = "Pro pack"
price_minor = 2000
currency = "USD"
credits = 20
expiry = "12 months"
priority_processing = true
unlocks = ["voice"]
[packages.top_up]
name = "Top-up"
price_minor = 100
currency = "USD"
credits = 5
expiry = "end of billing period"
[plans.pro]
name = "Pro"
period = "monthly"
price_minor = 1000
currency = "USD"
allowance = 100
rollover_cap = 30
[campaigns.launch]
name = "Launch"
starts_at = 2026-12-01T00:00:00Z
ends_at = 2026-12-08T00:00:00Z
bonus_percent = 25
packages = ["pro_pack"]
"""
V1 = 'version = "v1"\neffective_from = 2026-01-01T00:00:00Z\n' + COMMON
# v2 doubles the price of an image from 2027-01-01.
V2 = 'version = "v2"\neffective_from = 2027-01-01T00:00:00Z\n' + COMMON.replace(
    'unit = "image"\ncredits = 1', 'unit = "image"\ncredits = 2'
)
HISTORY = CatalogHistory.of(parse_catalog(V1), parse_catalog(V2))


def at(*parts: int) -> int:
    return clocks.from_datetime(datetime(*parts, tzinfo=UTC))  # type: ignore[misc]


@pytest.fixture
def pricing(repository: Repository, clock: Clock) -> LedgerService:
    clock.pinned = at(2026, 11, 20)
    return LedgerService(repository, HISTORY, now=clock, max_write_attempts=30)


def buy(service: LedgerService, package_id: str, reference: str) -> Outcome:
    body = {"package_id": package_id, "payment_reference": reference}
    return service.purchase(ACCOUNT, package_id, reference, Idempotency.of(reference, "purchase", ACCOUNT, body))


def use(service: LedgerService, feature: str, quantity: int, key: str, **dimensions: str) -> Outcome:
    body = {"feature": feature, "quantity": quantity, "dimensions": dimensions}
    return service.consume(ACCOUNT, feature, quantity, dimensions, Idempotency.of(key, "consume", ACCOUNT, body))


def fresh(repository: Repository, clock: Clock) -> LedgerService:
    """Another container: nothing remembered, everything read back from the table."""
    return LedgerService(repository, HISTORY, now=clock)


def test_lot_terms_and_perks_survive_the_round_trip(pricing: LedgerService, repository: Repository, clock) -> None:
    # Given a personal-only pack and a pro pack with perks
    buy(pricing, "personal_pack", "pi_1")
    buy(pricing, "pro_pack", "pi_2")
    # When the balance is read by a container that remembers nothing
    balance = fresh(repository, clock).balance(ACCOUNT)
    # Then each lot carries its restrictions and perks, and the account shows the perks
    by_package = {lot.package_id: lot for lot in balance.lots}
    assert by_package["personal_pack"].licences == ["personal"] and by_package["personal_pack"].unlocks == []
    assert by_package["pro_pack"].licences is None and by_package["pro_pack"].priority_processing
    assert by_package["pro_pack"].unlocks == ["voice"]
    assert balance.perks.priority_processing and balance.perks.unlocked_features == ["voice"]


def test_commercial_use_draws_only_commercial_credits_and_says_what_is_missing(
    pricing: LedgerService, repository: Repository, clock
) -> None:
    # Given 10 personal-only credits and 20 credits for any licence
    buy(pricing, "personal_pack", "pi_1")
    pro_lot = buy(pricing, "pro_pack", "pi_2").body["lots"][0]["lot_id"]
    # When commercial images (2 credits each) are consumed, Then only the pro lot pays
    use(pricing, "image", 5, "c1", licence="commercial")
    entry = pricing.ledger(ACCOUNT, 1, None).entries[0]
    assert [(d.lot_id, d.amount) for d in entry.draws or []] == [(pro_lot, "10.000")]
    # And when the commercial credits run short, the 402 names the kind that is missing
    with pytest.raises(InsufficientCredits) as failure:
        use(fresh(repository, clock), "image", 6, "c2", licence="commercial")
    assert failure.value.missing == {"licence": "commercial", "feature": "image"}
    assert (failure.value.required, failure.value.available) == (12_000, 10_000)
    assert_conserved(repository)


def test_restrictions_hold_under_concurrent_consumes(pricing: LedgerService, repository: Repository, clock) -> None:
    # Given 10 personal-only credits and 20 for any licence
    personal_lot = buy(pricing, "personal_pack", "pi_1").body["lots"][0]["lot_id"]
    buy(pricing, "pro_pack", "pi_2")
    services = [fresh(repository, clock) for _ in range(4)]
    results: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(n: int) -> None:
        licence = "commercial" if n % 2 else "personal"
        try:
            use(services[n % 4], "image", 2, f"k{n}", licence=licence)
            outcome = f"{licence}-ok"
        except InsufficientCredits:
            outcome = f"{licence}-refused"
        with lock:
            results[outcome] += 1

    # When 24 threads race, half of them for commercial use (4 credits each), half personal (2)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then no commercial debit ever drew on the personal-only lot
    entries = repository.list_entries(ACCOUNT, 1000).entries
    for entry in entries:
        if entry.kind == "consume" and entry.details["dimensions"]["licence"] == "commercial":
            assert personal_lot not in {draw["lot_id"] for draw in entry.details["draws"]}
    # And at most 20 credits paid for commercial use, and nothing was overdrawn
    commercial = sum(
        -e.amount for e in entries if e.kind == "consume" and e.details["dimensions"]["licence"] == "commercial"
    )
    assert commercial <= 20_000 and commercial == results["commercial-ok"] * 4000
    assert results["commercial-ok"] + results["commercial-refused"] == 12
    assert_conserved(repository)


def test_a_locked_feature_needs_a_lot_that_unlocks_it(pricing: LedgerService, repository: Repository, clock) -> None:
    buy(pricing, "personal_pack", "pi_1")
    with pytest.raises(FeatureLocked) as failure:
        use(pricing, "voice", 1, "v1")
    assert failure.value.details["allowed"] == ["pro_pack"]
    buy(pricing, "pro_pack", "pi_2")
    assert use(pricing, "voice", 1, "v2").body["charged"] == "5.000"


def test_each_request_is_priced_by_the_version_in_force_and_keeps_it(
    pricing: LedgerService, repository: Repository, clock
) -> None:
    # Given credits bought under v1
    buy(pricing, "pro_pack", "pi_1")
    # When an image is used a millisecond before v2 takes effect, and one at the instant
    clock.pinned = at(2027, 1, 1) - 1
    before = use(pricing, "image", 1, "before").body
    clock.pinned = at(2027, 1, 1)
    after = use(pricing, "image", 1, "after").body
    # Then each is charged at its version's price, and the ledger keeps the version charged at
    assert (before["charged"], before["catalog_version"]) == ("1.000", "v1")
    assert (after["charged"], after["catalog_version"]) == ("2.000", "v2")
    versions = [e.catalog_version for e in pricing.ledger(ACCOUNT, 10, None).entries]
    assert versions == ["v2", "v1", "v1"]


@pytest.mark.parametrize(
    ("moment", "bonus"),
    [(at(2026, 12, 1) - 1, None), (at(2026, 12, 1), "5.000"), (at(2026, 12, 8) - 1, "5.000"), (at(2026, 12, 8), None)],
)
def test_a_campaign_adds_a_bonus_lot_that_names_it_inside_its_window(
    pricing: LedgerService, clock, moment: int, bonus: str | None
) -> None:
    clock.pinned = moment
    lots = buy(pricing, "pro_pack", "pi_1").body["lots"]
    campaign_lots = [lot for lot in lots if lot["campaign_id"] == "launch"]
    assert [lot["granted"] for lot in campaign_lots] == ([] if bonus is None else [bonus])
    assert all(lot["price_minor"] == 0 and lot["source"] == "bonus" for lot in campaign_lots)


def allowance(service: LedgerService, start: int) -> Outcome:
    return service.grant_allowance(ACCOUNT, "pro", datetime.fromtimestamp(start / 1000, tz=UTC))


def test_a_plan_grants_each_period_once_and_rolls_over_up_to_the_cap(
    pricing: LedgerService, repository: Repository, clock
) -> None:
    # Given the December allowance (100 credits), of which 40 are used
    december, january, february = at(2026, 12, 1), at(2027, 1, 1), at(2027, 2, 1)
    clock.pinned = december + 1000
    first = allowance(pricing, december)
    assert first.status_code == 201 and first.body["lots"][0]["expires_at"] == "2027-01-01T00:00:00.000Z"
    # Purchased credits stack on top; the allowance is spent first, as it expires first
    buy(pricing, "personal_pack", "pi_1")
    use(pricing, "image", 40, "dec")
    draws = pricing.ledger(ACCOUNT, 1, None).entries[0].draws or []
    assert [d.lot_id for d in draws] == [first.body["lots"][0]["lot_id"]]
    assert pricing.balance(ACCOUNT).available == "70.000"
    # When the same period is granted again, Then it is a replay that changes nothing
    again = allowance(fresh(repository, clock), december)
    assert again.replayed and again.body == first.body
    # When January is granted, Then 30 of December's 60 left roll over (the cap), the rest stays to expire
    clock.pinned = january + 5
    second = allowance(pricing, january)
    sources = {lot["source"]: lot["granted"] for lot in second.body["lots"]}
    assert sources == {"allowance": "100.000", "rollover": "30.000"}
    balance = pricing.balance(ACCOUNT)
    assert balance.available == "140.000"  # 100 + 30 rolled + 10 purchased
    # And the ledger entry counts only the new allowance as granted
    entry = pricing.ledger(ACCOUNT, 1, None).entries[0]
    assert entry.kind == "allowance" and entry.amount == "100.000"
    assert [d.amount for d in entry.rolled_over or []] == ["30.000"]
    assert_conserved(repository)
    # And a period that overlaps a granted one, or is not current, is refused
    with pytest.raises(InvalidPeriod):
        allowance(pricing, january + 86_400_000)
    with pytest.raises(InvalidPeriod):
        allowance(pricing, february)


def test_an_end_of_period_package_expires_with_the_subscription_period(
    pricing: LedgerService, repository: Repository, clock
) -> None:
    # Without a subscription, "end of billing period" means one calendar month
    clock.pinned = at(2026, 12, 10)
    alone = buy(pricing, "top_up", "pi_1").body["lots"][0]
    assert alone["expires_at"] == "2027-01-10T00:00:00.000Z"
    # With one, it is the end of the current period
    allowance(pricing, at(2026, 12, 1))
    with_plan = buy(pricing, "top_up", "pi_2").body["lots"][0]
    assert with_plan["expires_at"] == "2027-01-01T00:00:00.000Z"


def test_a_replay_gets_its_first_answer_even_after_the_catalog_dropped_what_it_bought(
    pricing: LedgerService, repository: Repository, clock
) -> None:
    first = buy(pricing, "pro_pack", "pi_1")
    # A later catalog no longer sells the package; a retry of the same purchase still replays
    retired = COMMON.replace("[packages.pro_pack]", "[packages.retired_pack]").replace(
        'packages = ["pro_pack"]', 'packages = ["retired_pack"]'
    )
    later = CatalogHistory.of(parse_catalog('version = "v9"\neffective_from = 2026-01-01T00:00:00Z\n' + retired))
    again = LedgerService(repository, later, now=clock)
    body = {"package_id": "pro_pack", "payment_reference": "pi_1"}
    replay = again.purchase(ACCOUNT, "pro_pack", "pi_1", Idempotency.of("pi_1", "purchase", ACCOUNT, body))
    assert replay.replayed and replay.body == first.body


def test_an_allowance_on_a_calendar_anchored_on_the_31st_still_rolls_over(
    pricing: LedgerService, repository: Repository, clock
) -> None:
    # Given a billing calendar whose periods run Jan 31 - Feb 28 - Mar 31
    jan31, feb28, mar31 = at(2027, 1, 31), at(2027, 2, 28), at(2027, 3, 31)
    clock.pinned = jan31
    pricing.grant_allowance(ACCOUNT, "pro", datetime(2027, 1, 31, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC))
    clock.pinned = feb28
    pricing.grant_allowance(ACCOUNT, "pro", datetime(2027, 2, 28, tzinfo=UTC), datetime(2027, 3, 31, tzinfo=UTC))
    # When March 31 starts a period, Then what February left (up to the cap) rolls over
    clock.pinned = mar31 + 1000
    third = pricing.grant_allowance(ACCOUNT, "pro", datetime(2027, 3, 31, tzinfo=UTC))
    rolled = [lot for lot in third.body["lots"] if lot["source"] == "rollover"]
    assert [lot["granted"] for lot in rolled] == ["30.000"]
    assert third.body["lots"][0]["expires_at"] == "2027-04-30T00:00:00.000Z"  # no period_end: one month
    assert_conserved(repository)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ((2000, 1, 1), (2099, 1, 1)),  # a century for one monthly fee
        ((2026, 11, 20), (2026, 11, 21)),  # a day
        ((2026, 11, 1), (2026, 12, 15)),  # six weeks
    ],
)
def test_an_allowance_period_must_be_one_period_of_the_plan(
    pricing: LedgerService, repository: Repository, start: tuple[int, ...], end: tuple[int, ...]
) -> None:
    # When a monthly plan is asked for a period of another length, Then it is refused and nothing is granted
    with pytest.raises(InvalidPeriod, match="monthly"):
        pricing.grant_allowance(ACCOUNT, "pro", datetime(*start, tzinfo=UTC), datetime(*end, tzinfo=UTC))  # type: ignore[misc]
    assert repository.load_account(ACCOUNT).granted == 0


def test_periods_of_seconds_cannot_mint_an_allowance_each(
    pricing: LedgerService, repository: Repository, clock
) -> None:
    # Given periods two seconds long, each a new key (the account, plan and period)
    for n in range(3):
        start = at(2026, 11, 20) + n * 2000
        clock.pinned = start + 1
        with pytest.raises(InvalidPeriod):
            pricing.grant_allowance(
                ACCOUNT, "pro", datetime.fromtimestamp(start / 1000, UTC), datetime.fromtimestamp(start / 1000 + 2, UTC)
            )
    # Then none of them granted anything
    assert repository.load_account(ACCOUNT).granted == 0


def test_the_same_period_start_with_another_end_is_a_documented_conflict(pricing: LedgerService, clock) -> None:
    # Given the period Jan 31 - Feb 28 was granted
    clock.pinned = at(2027, 2, 1)
    first = pricing.grant_allowance(
        ACCOUNT, "pro", datetime(2027, 1, 31, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)
    )
    # When the same start arrives with another (valid) end, Then it is a period conflict
    with pytest.raises(PeriodConflict, match="2027-01-31"):
        pricing.grant_allowance(ACCOUNT, "pro", datetime(2027, 1, 31, tzinfo=UTC), datetime(2027, 3, 3, tzinfo=UTC))
    # And the original request still replays
    again = pricing.grant_allowance(
        ACCOUNT, "pro", datetime(2027, 1, 31, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)
    )
    assert again.replayed and again.body == first.body


def test_a_grant_is_capped_by_the_catalog_and_records_who_asked(repository: Repository, clock) -> None:
    capped = CatalogHistory.of(
        parse_catalog(
            V1.replace(
                'licences = ["personal", "commercial"]', 'licences = ["personal", "commercial"]\nmax_grant = 500'
            )
        )
    )
    service = LedgerService(repository, capped, now=clock)
    caller = RequestContext(Caller("service", "arn:aws:sts::1:assumed-role/support-tools/jo"))
    body = {"credits": "501"}
    # When a grant asks for more than the catalog's max_grant, Then it is refused and nothing is created
    with pytest.raises(GrantTooLarge, match=r"500\.000"):
        service.grant(
            ACCOUNT,
            501_000,
            "promotional",
            "r",
            None,
            None,
            Idempotency.of("k1", "grant", ACCOUNT, body),
            context=caller,
        )
    assert repository.load_account(ACCOUNT).granted == 0
    # When it asks for the cap, Then it is granted, and the entry records the caller
    service.grant(
        ACCOUNT, 500_000, "promotional", "r", None, None, Idempotency.of("k2", "grant", ACCOUNT, {}), context=caller
    )
    (entry,) = repository.list_entries(ACCOUNT, 10).entries
    assert entry.details["caller"] == {"kind": "service", "id": "arn:aws:sts::1:assumed-role/support-tools/jo"}
    assert service.ledger(ACCOUNT, 10, None).entries[0].caller.id == "support-tools"  # type: ignore[union-attr]


def test_every_api_mutation_records_its_caller(pricing: LedgerService, repository: Repository, clock) -> None:
    service = RequestContext(Caller("service", "arn:aws:sts::1:assumed-role/checkout/s"))
    user = RequestContext(Caller("user", "alice-sub"))
    clock.pinned = at(2026, 12, 1) + 1000
    pricing.grant_allowance(ACCOUNT, "pro", datetime(2026, 12, 1, tzinfo=UTC), context=service)
    body = {"package_id": "pro_pack", "payment_reference": "pi_1"}
    pricing.purchase(ACCOUNT, "pro_pack", "pi_1", Idempotency.of("pi_1", "purchase", ACCOUNT, body), context=service)
    use_body = {"feature": "image", "quantity": 1, "dimensions": {}}
    pricing.consume(ACCOUNT, "image", 1, {}, Idempotency.of("u1", "consume", ACCOUNT, use_body), context=user)
    callers = [entry.details["caller"]["kind"] for entry in reversed(repository.list_entries(ACCOUNT, 10).entries)]
    assert callers == ["service", "service", "user"]
