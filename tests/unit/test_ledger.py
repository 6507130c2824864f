"""Ledger rules with no AWS: burn-down order, expiry at the exact instant, allocation."""

from dataclasses import replace

import pytest

from tollbooth.domain.allocation import allocate, burn_down_order, next_expiry, perks_at
from tollbooth.domain.errors import FeatureLocked, InsufficientCredits
from tollbooth.domain.expiry import (
    ExpiryIndexing,
    due_for_expiry,
    due_for_warning,
    expiring_within,
    expiry_summary,
    next_due_at,
)
from tollbooth.domain.ledger import Account, Draw, IdempotencyRecord, LedgerEntry, Lot, Mutation, PlanPeriod, Use
from tollbooth.domain.plans import billing_period_end, rollover

T = 1_800_000_000_000  # a fixed "now" in epoch ms


def lot(lot_id: str, remaining: int, expires_at: int | None = None, priority: int = 50, created_at: int = 0) -> Lot:
    return Lot(lot_id, "purchase", remaining, remaining, created_at, expires_at, priority)


def test_earliest_expiry_first_never_expiring_last() -> None:
    lots = [lot("never", 1), lot("late", 1, T + 20), lot("soon", 1, T + 10)]
    assert [x.lot_id for x in burn_down_order(lots)] == ["soon", "late", "never"]


def test_ties_go_to_lower_priority_then_older_lot() -> None:
    lots = [
        lot("young-p10", 1, T + 5, priority=10, created_at=2),
        lot("p50", 1, T + 5, priority=50, created_at=0),
        lot("old-p10", 1, T + 5, priority=10, created_at=1),
    ]
    assert [x.lot_id for x in burn_down_order(lots)] == ["old-p10", "young-p10", "p50"]


def test_a_lot_is_spendable_until_one_millisecond_before_its_expiry_and_not_at_it() -> None:
    expiring = lot("a", 100, expires_at=T)
    assert expiring.spendable_at(T - 1)
    assert not expiring.spendable_at(T)
    assert not expiring.spendable_at(T + 1)


def test_allocation_spans_lots_in_burn_down_order() -> None:
    account = Account(
        "acct", version=3, balance=350, lots=(lot("never", 200), lot("soon", 100, T + 10), lot("mid", 50, T + 20))
    )
    assert allocate(account, 170, T) == (Draw("soon", 100), Draw("mid", 50), Draw("never", 20))


def test_allocation_skips_lots_expired_at_this_instant() -> None:
    account = Account("acct", balance=150, lots=(lot("dead", 100, expires_at=T), lot("live", 50)))
    assert allocate(account, 50, T) == (Draw("live", 50),)
    with pytest.raises(InsufficientCredits) as failure:
        allocate(account, 51, T)
    assert (failure.value.required, failure.value.available) == (51, 50)
    assert allocate(account, 150, T - 1) == (Draw("dead", 100), Draw("live", 50))


def test_next_expiry_sums_lots_expiring_at_the_same_instant() -> None:
    account = Account("acct", lots=(lot("a", 10, T + 5), lot("b", 20, T + 5), lot("c", 40, T + 9), lot("d", 1)))
    upcoming = next_expiry(account, T)
    assert upcoming is not None and (upcoming.expires_at, upcoming.amount) == (T + 5, 30)
    assert next_expiry(Account("acct", lots=(lot("d", 1),)), T) is None


def test_mutations_keep_the_conservation_law() -> None:
    account = Account("acct", version=4, balance=70, granted=100, consumed=30, expired=0, lots=(lot("a", 70),))
    idem = IdempotencyRecord("k", "f", 200, {}, 5)
    debit = Mutation(account, (LedgerEntry("e", 5, "consume", -20, 50, T),), (idem,), (Draw("a", 20),))
    after = debit.account_after
    assert after.version == 5
    assert after.balance == after.granted - after.consumed - after.expired == 50
    credit = Mutation(after, (LedgerEntry("g", 6, "grant", 25, 75, T),), (idem,), new_lots=(lot("b", 25),))
    assert credit.account_after.balance == credit.account_after.granted - credit.account_after.consumed == 75


COMMERCIAL_IMAGE = Use("image_generation", "commercial")


def test_a_commercial_use_draws_only_from_lots_that_allow_it() -> None:
    # Given a personal-only lot that expires first, and a lot for any licence
    personal = replace(lot("personal", 5000, T + 10), licences=("personal",))
    anything = lot("any", 5000, T + 20)
    account = Account("a", lots=(personal, anything))
    # When a commercial use is allocated, Then the personal-only lot is skipped despite expiring first
    assert allocate(account, 3000, T, COMMERCIAL_IMAGE) == (Draw("any", 3000),)
    # And a personal use burns down in the usual order
    assert allocate(account, 6000, T, Use("image_generation", "personal")) == (
        Draw("personal", 5000),
        Draw("any", 1000),
    )


def test_a_short_restricted_balance_names_the_kind_of_credits_missing() -> None:
    # Given 5 personal-only credits and 2 that may pay for anything
    account = Account("a", lots=(replace(lot("p", 5000), licences=("personal",)), lot("any", 2000)))
    # When 3 credits of commercial use are asked for
    with pytest.raises(InsufficientCredits) as failure:
        allocate(account, 3000, T, COMMERCIAL_IMAGE)
    # Then the refusal says which kind is short, and how much of that kind there is
    assert failure.value.missing == {"licence": "commercial", "feature": "image_generation"}
    assert failure.value.available == 2000
    assert "5.000 more credits on the account may not" in failure.value.message


def test_feature_restricted_lots_pay_only_for_their_features() -> None:
    account = Account("a", lots=(replace(lot("video-only", 5000), features=("video_generation",)),))
    assert allocate(account, 1000, T, Use("video_generation", "personal")) == (Draw("video-only", 1000),)
    with pytest.raises(InsufficientCredits):
        allocate(account, 1000, T, Use("text_generation", "personal"))


def test_a_locked_feature_needs_a_spendable_lot_that_unlocks_it() -> None:
    use = Use("voice_cloning", "personal", locked=True, unlocked_by=("premium",))
    plain = Account("a", lots=(lot("plain", 50_000),))
    with pytest.raises(FeatureLocked) as failure:
        allocate(plain, 5000, T, use)
    assert failure.value.details["allowed"] == ["premium"]
    # An unlocking lot that has expired unlocks nothing; one that is spendable does
    expired_key = replace(lot("premium", 1000, T), unlocks=("voice_cloning",))
    with pytest.raises(FeatureLocked):
        allocate(replace(plain, lots=(*plain.lots, expired_key)), 5000, T, use)
    live_key = replace(expired_key, expires_at=T + 1)
    assert allocate(replace(plain, lots=(*plain.lots, live_key)), 5000, T, use) == (
        Draw("premium", 1000),
        Draw("plain", 4000),
    )


def test_perks_come_from_spendable_lots_only() -> None:
    premium = replace(lot("premium", 1000, T + 5), priority_processing=True, unlocks=("voice_cloning",))
    account = Account("a", lots=(premium, lot("plain", 1000)))
    assert perks_at(account, T) == perks_at(account, T + 4)
    assert perks_at(account, T).priority_processing and perks_at(account, T).unlocked_features == ("voice_cloning",)
    later = perks_at(account, T + 5)
    assert not later.priority_processing and later.unlocked_features == ()
    spent = replace(account, lots=(replace(premium, remaining=0), lot("plain", 1000)))
    assert not perks_at(spent, T).priority_processing


def allowance(lot_id: str, remaining: int, start: int, end: int, plan: str = "pro") -> Lot:
    return Lot(lot_id, "allowance", 2000, remaining, start, end, 15, plan_id=plan)


def test_the_billing_period_ends_when_the_current_allowance_expires() -> None:
    account = Account("a", lots=(allowance("now", 5, T, T + 100), lot("p", 1)))
    assert billing_period_end(account, T) == T + 100
    assert billing_period_end(account, T + 100) is None
    assert billing_period_end(Account("b"), T) is None


def test_a_spent_allowance_leaves_the_lots_and_still_defines_the_period() -> None:
    # Given an allowance granted and spent at once (arrears took all of it)
    granted = Mutation(Account("a"), new_lots=(allowance("now", 0, T, T + 100),)).account_after
    # Then no lot is kept, and the account remembers the plan's latest period
    assert granted.lots == ()
    assert granted.periods == (PlanPeriod("pro", T, T + 100),)
    assert billing_period_end(granted, T + 50) == T + 100
    # And a later period of the plan replaces it
    later = Mutation(granted, new_lots=(allowance("next", 5, T + 100, T + 200),)).account_after
    assert later.periods == (PlanPeriod("pro", T + 100, T + 200),)


def test_a_lot_leaves_the_account_with_its_last_credit() -> None:
    account = Account("a", balance=3, lots=(lot("spent", 2), lot("kept", 1)))
    mutation = Mutation(account, draws=(Draw("spent", 2),))
    assert mutation.emptied == {"spent"}
    assert [x.lot_id for x in mutation.account_after.lots] == ["kept"]


def test_rollover_takes_what_the_ending_period_left_up_to_the_cap() -> None:
    # Given last period's allowance and rollover lots of plan pro ending at T, and other lots
    ending = (
        allowance("allow", 300, T - 100, T),
        replace(allowance("rolled", 200, T - 100, T), source="rollover", priority=12),
        allowance("other-plan", 900, T - 100, T, plan="team"),
        allowance("older", 900, T - 80 * 86_400_000, T - 40 * 86_400_000),
    )
    account = Account("a", lots=ending)
    # Then the older credits (the rollover lot, lower priority) carry first, up to the cap
    grace = 2 * 86_400_000
    assert rollover(account, "pro", T, 400, grace) == (Draw("rolled", 200), Draw("allow", 200))
    assert rollover(account, "pro", T, 10_000, grace) == (Draw("rolled", 200), Draw("allow", 300))
    assert rollover(account, "pro", T, 0, grace) == ()
    # A billing calendar anchored on the 31st starts the next period days after this one ended
    assert rollover(account, "pro", T + 86_400_000, 400, grace) == (Draw("rolled", 200), Draw("allow", 200))


def test_a_transfer_moves_credits_without_changing_the_balance() -> None:
    # Given an expired allowance lot with 300 left
    old = allowance("old", 300, T - 100, T)
    account = Account("a", version=1, balance=300, granted=2000, consumed=1700, lots=(old,))
    new = allowance("new", 2000, T, T + 100)
    carried = replace(new, lot_id="carried", source="rollover", granted=300, remaining=300)
    entry = LedgerEntry("e", 2, "allowance", 2000, 2300, T)
    mutation = Mutation(
        account,
        (entry,),
        (IdempotencyRecord("k", "f", 201, {}, 2),),
        new_lots=(new, carried),
        transfers=(Draw("old", 300),),
    )
    after = mutation.account_after
    # Then conservation holds: granted - consumed - expired = balance = sum of lots
    assert after.balance == after.granted - after.consumed - after.expired == sum(x.remaining for x in after.lots)
    assert after.available_at(T) == 2300


WEEK = 7 * 86_400_000


def test_the_next_due_instant_is_the_earliest_warning_write_off_or_outbox() -> None:
    later = lot("later", 10, T + 2 * WEEK)
    graced = replace(lot("graced", 10, T + WEEK), expiry_grace=500)
    account = Account("a", lots=(later, graced, lot("never", 10), lot("spent", 0, T)))
    # Warnings first: a week before each expiry
    assert next_due_at(account, WEEK) == T
    warned = replace(account, lots=(replace(later, warned=True), replace(graced, warned=True)))
    # Then write-offs, after any grace; no window means no warnings
    assert next_due_at(warned, WEEK) == T + WEEK + 500
    assert next_due_at(account, 0) == T + WEEK + 500
    # An outbox with events makes the account due at once; nothing left to do means never
    assert next_due_at(replace(warned, pending_events=({"x": 1},)), WEEK) == 0
    assert next_due_at(Account("b", lots=(lot("never", 10), lot("spent", 0, T))), WEEK) is None


def test_what_is_due_at_an_instant() -> None:
    expiring = lot("soon", 10, T)
    graced = replace(lot("graced", 10, T), expiry_grace=5)
    account = Account("a", lots=(expiring, graced, lot("spent", 0, T - 1), lot("later", 3, T + WEEK)))
    assert [x.lot_id for x in due_for_expiry(account, T - 1)] == []
    assert [x.lot_id for x in due_for_expiry(account, T)] == ["soon"]
    assert sorted(x.lot_id for x in due_for_expiry(account, T + 5)) == ["graced", "soon"]
    # Warnings are for spendable credits only, once
    assert [x.lot_id for x in due_for_warning(account, T, WEEK)] == ["later"]
    assert sorted(x.lot_id for x in due_for_warning(account, T - 1, WEEK)) == ["graced", "soon"]
    assert due_for_warning(replace(account, lots=(replace(account.lots[3], warned=True),)), T, WEEK) == []
    assert [(x.expires_at, x.amount) for x in expiring_within(account, T - 1, WEEK)] == [(T, 20)]
    assert [(x.expires_at, x.amount) for x in expiring_within(account, T, WEEK)] == [(T + WEEK, 3)]


def test_the_expiry_summary_keeps_the_soonest_due_lots_and_when_the_rest_are_due() -> None:
    # Given five expiring lots (warnings off) and one that never expires
    lots = (*(lot(f"l{n}", 1, T + n * 10) for n in (5, 1, 4, 2, 3)), lot("never", 1))
    indexing = ExpiryIndexing(warning_window=0, shards=1, summary_lots=2)
    # When the account item summarises two of them
    summary = expiry_summary(Account("a", lots=lots), indexing)
    # Then it keeps the two due soonest, and says when the next of the rest is due
    assert [x.lot_id for x in summary.lots] == ["l1", "l2"]
    assert (summary.unsummarized, summary.next_due_at) == (T + 30, T + 10)
    # And the sweep's view (the summary alone) keeps what it knew of the rest
    view = Account("a", lots=summary.lots[1:], unsummarized=summary.unsummarized)
    again = expiry_summary(view, indexing)
    assert ([x.lot_id for x in again.lots], again.unsummarized, again.next_due_at) == (["l2"], T + 30, T + 20)
    assert expiry_summary(Account("a", lots=lots[:2]), indexing).unsummarized is None
