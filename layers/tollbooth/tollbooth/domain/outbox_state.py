"""An outbox too long for the account item: its events moved to items of their own.

While events cannot be published (EventBridge is down, or refuses them), they wait in the
account's outbox on the account item, and every write of the item carries them. So that
the item stays small whatever the outage's length (DynamoDB refuses an item past 400 KB,
and bills a write by its size), a change that would leave more than ``domain.outbox``'s
limit there moves the whole outbox into a *spill*, an item of its own in the account's
partition, and the account item records only its key and how many events it holds. The
events are published oldest first: the spills in the order they were made, then what
the account item holds. (``Mutation.account_after`` applies these.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Spill:
    """An outbox moved off the account item, written with the change that moved it."""

    key: str  # unique (``ids.new_id``); the account item keeps its spills in the order made
    events: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class SpillRef:
    """What the account item records of a spill not yet published."""

    key: str
    events: int


def with_spills(refs: tuple[SpillRef, ...], spill: Spill | None, published: tuple[str, ...]) -> tuple[SpillRef, ...]:
    """The account's spills once a change moved its outbox into ``spill`` or had the spills
    ``published`` deleted."""
    kept = tuple(ref for ref in refs if ref.key not in published)
    return kept if spill is None else (*kept, SpillRef(spill.key, len(spill.events)))
