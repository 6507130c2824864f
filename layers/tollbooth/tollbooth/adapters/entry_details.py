"""How an entry's details are stored: as JSON, or, past a kilobyte, as JSON compressed
with zlib (the Repository and the twin alike).

DynamoDB bills a transactional write 2 units per started KB of each item. Most entries are
a few hundred bytes, so compressing them would buy nothing. A ``usage`` entry lists every
record it charged (its event id, charge, draws, worker and metrics, about 300 bytes each as
JSON, and much alike from one record to the next): a batch of 95 records is about 30 KB
of JSON, so 60 units, and well under a tenth of that compressed. The entry is on the
account's partition, whose 1,000 units a second bound one account's usage throughput.
An entry's details are read only with the entry itself (history, reversals), so nothing
else has to read the compressed form.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

# Details up to this many bytes of JSON are stored as they are (a KB is the billing step).
COMPRESS_ABOVE = 1024
LEVEL = 6  # zlib's default: within a few percent of 9 on these entries, at a fraction of its time


def compressed(details: dict[str, Any]) -> bytes | None:
    """The details as stored compressed, or None when they are stored as JSON."""
    text = json.dumps(details, separators=(",", ":")).encode()
    if len(text) <= COMPRESS_ABOVE:
        return None
    return zlib.compress(text, LEVEL)


def expanded(stored: bytes) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(zlib.decompress(stored))
    return details
