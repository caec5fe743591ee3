"""Prefixed, time-sortable, unguessable ids: `job_01JD...` (a ULID body)."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two base-32 digits per 10-bit step: a submit mints several ids, and this halves their cost.
_DIGIT_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
_TIME_SHIFTS = range(40, -10, -10)  # 48 bits of milliseconds as 10 digits (the top 2 bits are 0)
_RANDOM_SHIFTS = range(70, -10, -10)  # 80 random bits as 16 digits


class _TimeDigits:
    """The 10 time digits, written once per millisecond (ids minted together share them)."""

    def __init__(self) -> None:
        self._millisecond = -1
        self._digits = ""

    def __call__(self, millisecond: int) -> str:
        if millisecond != self._millisecond:
            self._digits = "".join([_DIGIT_PAIRS[(millisecond >> s) & 1023] for s in _TIME_SHIFTS])
            self._millisecond = millisecond
        return self._digits


_time_digits = _TimeDigits()


def new_id(prefix: str) -> str:
    randomness = int.from_bytes(os.urandom(10))
    random_digits = "".join([_DIGIT_PAIRS[(randomness >> s) & 1023] for s in _RANDOM_SHIFTS])
    return f"{prefix}_{_time_digits(int(time.time() * 1000))}{random_digits}"
