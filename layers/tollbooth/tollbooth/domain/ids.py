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
