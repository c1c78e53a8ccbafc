"""Row keys: uuid7s that sort in the order they were made, even within a millisecond or when
the clock steps back."""

from __future__ import annotations

import time
import uuid

import pytest

import faceplate_models as fm
from faceplate_models import ids


def _millisecond(key: uuid.UUID) -> int:
    return key.int >> 80


def test_keys_are_version_7_in_the_order_they_were_made() -> None:
    before = time.time_ns() // 1_000_000
    keys = [fm.uuid7() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    assert all(k.version == 7 and k.variant == uuid.RFC_4122 for k in keys)
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    # Thousands fell in one millisecond (the counter orders them), and the time is the clock's.
    assert len({_millisecond(k) for k in keys}) < len(keys)
    assert before <= _millisecond(keys[0]) and _millisecond(keys[-1]) <= after + 1


def test_a_clock_that_steps_back_does_not_reorder_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    first = ids._uuid7()
    monkeypatch.setattr(time, "time_ns", lambda: (_millisecond(first) - 5_000) * 1_000_000)
    later = [ids._uuid7() for _ in range(100)]
    assert [first, *later] == sorted([first, *later])
    assert {_millisecond(k) for k in later} == {_millisecond(first)}


def test_a_full_counter_moves_on_to_the_next_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    first = ids._uuid7()
    monkeypatch.setattr(time, "time_ns", lambda: _millisecond(first) * 1_000_000)
    monkeypatch.setattr(ids, "_last_counter", (1 << 42) - 1)
    after = ids._uuid7()
    assert after > first and _millisecond(after) == _millisecond(first) + 1


def test_keys_do_not_give_away_the_next_one() -> None:
    # 32 random bits in each key: two made in a row differ beyond the counter's step.
    a, b = ids._uuid7(), ids._uuid7()
    assert (b.int - a.int) != 1 and (a.int & 0xFFFF_FFFF) != (b.int & 0xFFFF_FFFF)
