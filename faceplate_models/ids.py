"""Row keys: uuid7 (RFC 9562), made in Python so that an insert can be repeated with its key,
and ordered by time so that new rows land at the right edge of their indexes.

Python 3.14's `uuid.uuid7` is used where there is one; before it, the same method, ported:
a 48-bit millisecond timestamp, a 42-bit counter that starts at a random value each
millisecond and counts up within it, and 32 random bits. Each key a process makes sorts
after the one before, and a key does not give away the next one.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Final

_VERSION_7: Final = (7 << 76) | (0b10 << 62)  # the version nibble and the RFC variant bits
_COUNTER_MAX: Final = (1 << 42) - 1
_last_ms = -1
_last_counter = 0


def _fresh() -> tuple[int, int]:
    """A new millisecond's counter (its top bit clear, leaving room to count) and tail."""
    rand = int.from_bytes(os.urandom(10), "big")
    return (rand >> 32) & (_COUNTER_MAX >> 1), rand & 0xFFFF_FFFF


def _uuid7() -> uuid.UUID:
    """A new uuid7, later in order than every one this process made before."""
    global _last_ms, _last_counter
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        counter, tail = _fresh()
    else:
        ms = _last_ms  # the clock stood still or went back: stay on the last millisecond
        counter, tail = _last_counter + 1, int.from_bytes(os.urandom(4), "big")
        if counter > _COUNTER_MAX:
            ms += 1
            counter, tail = _fresh()
    _last_ms, _last_counter = ms, counter
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= (counter >> 30) << 64 | (counter & 0x3FFF_FFFF) << 32 | tail
    return uuid.UUID(int=value | _VERSION_7)


if sys.version_info >= (3, 14):
    from uuid import uuid7
else:
    uuid7 = _uuid7
