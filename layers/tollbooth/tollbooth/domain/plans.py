"""Subscription periods: when an account's current period ends, what counts as one period
of a plan, and what the last period carries into the next."""

from __future__ import annotations

from tollbooth.domain import clock
from tollbooth.domain.allocation import take_in_order
from tollbooth.domain.ledger import Account, Draw, PlanPeriod, with_periods


def plan_periods(account: Account) -> tuple[PlanPeriod, ...]:
    """The latest period of each plan: as the account keeps them, and as any allowance lot
    it still holds says (an account written before periods were kept)."""
    return with_periods(account.periods, account.lots)


def billing_period_end(account: Account, now: int) -> int | None:
    """When the account's current subscription period ends: its current allowance's expiry."""
    ends = [period.ends_at for period in plan_periods(account) if period.granted_at <= now < period.ends_at]
    return min(ends, default=None)


# A billing calendar anchored on a late day of the month clamps short months (Jan 31,
# Feb 28, Mar 31): a period then ends up to this many days after start + the plan's months.
PERIOD_CLAMP_DAYS = 3


def is_plan_period(start: int, end: int, months: int) -> bool:
    """Whether [start, end) is one period of a plan that lasts ``months`` calendar months:
    it ends at start + months, or up to PERIOD_CLAMP_DAYS whole days later."""
    nominal = clock.add_months(start, months)
    late = end - nominal
    return 0 <= late <= PERIOD_CLAMP_DAYS * 86_400_000 and late % 86_400_000 == 0


def rollover(account: Account, plan_id: str, period_start: int, cap: int, window: int) -> tuple[Draw, ...]:
    """What carries into a plan's period starting at ``period_start``: up to ``cap`` of what
    is left in the plan's lots that ended in the ``window`` ms before it (the last period,
    wherever the billing calendar put its end), oldest-first by burn-down order."""
    ending = [
        lot
        for lot in account.lots
        if lot.plan_id == plan_id
        and lot.expires_at is not None
        and period_start - window < lot.expires_at <= period_start
        and lot.remaining > 0
    ]
    transfers, _ = take_in_order(ending, cap)
    return transfers
