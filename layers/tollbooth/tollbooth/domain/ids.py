"""Time-ordered, URL-safe identifiers (a ULID in spirit: 48-bit ms time + 80 random bits)."""

from __future__ import annotations

import secrets

from tollbooth.domain.clock import now_ms

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str, at_ms: int | None = None) -> str:
    moment = now_ms() if at_ms is None else at_ms
    return f"{prefix}_{_encode(moment, 10)}{_encode(secrets.randbits(80), 16)}"


def entry_id(at_ms: int, seq: int, stream: int | None = None) -> str:
    """A ledger entry's id: time-ordered and unique, ending in where the entry lives (its seq
    in the account's stream, or in slice ``stream``'s), so that one read finds an entry by
    its id (a reversal names its charge so), never a scan of the history."""
    position = str(seq) if stream is None else f"{seq}s{stream}"
    return f"{new_id('led', at_ms)}-{position}"


def entry_position(entry_id: str) -> tuple[int, int | None] | None:
    """(seq, slice) of an id ``entry_id`` made; None when it does not name a position."""
    head, _, position = entry_id.rpartition("-")
    seq, marked, stream = position.partition("s")
    if not head.startswith("led_") or not _number(seq) or (marked and not _number(stream)):
        return None
    return int(seq), int(stream) if marked else None


def hold_id(at_ms: int, stream: int | None = None) -> str:
    """A hold's id, ending in the slice it was placed on (``domain.slice_holds``), if any:
    where its item lives, so that one read finds it."""
    made = new_id("hold", at_ms)
    return made if stream is None else f"{made}s{stream}"


def hold_slice(hold_id: str) -> int | None:
    """The slice a hold of ``hold_id`` was placed on; None: on the account itself."""
    head, marked, stream = hold_id.rpartition("s")
    if not marked or not head.startswith("hold_") or len(head) != 31 or not _number(stream):
        return None
    return int(stream)


def _number(text: str) -> bool:
    return 0 < len(text) <= 12 and text.isascii() and text.isdigit()
