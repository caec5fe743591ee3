"""Prefixed, time-sortable, unguessable ids: `job_01JD...` (a ULID body); and tokens that sort by
time the same way."""

from __future__ import annotations

import os
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two base-32 digits per 10-bit step: a submit mints several ids, and this halves their cost.
_DIGIT_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
_TIME_SHIFTS = range(40, -10, -10)  # 48 bits of milliseconds as 10 digits (the top 2 bits are 0)
_RANDOM_SHIFTS = range(70, -10, -10)  # 80 random bits as 16 digits


class _TimeDigits:
    """The 10 time digits, written once per millisecond (ids minted together share them)."""

    def __init__(self) -> None:
        # (millisecond, digits), swapped whole: ids are minted from several threads.
        self._last = (-1, "")

    def __call__(self, millisecond: int) -> str:
        last_millisecond, digits = self._last
        if millisecond != last_millisecond:
            digits = "".join([_DIGIT_PAIRS[(millisecond >> s) & 1023] for s in _TIME_SHIFTS])
            self._last = (millisecond, digits)
        return digits


_time_digits = _TimeDigits()


def _digits_of_now() -> str:
    return _time_digits(int(time.time() * 1000))


def new_id(prefix: str) -> str:
    randomness = int.from_bytes(os.urandom(10))
    random_digits = "".join([_DIGIT_PAIRS[(randomness >> s) & 1023] for s in _RANDOM_SHIFTS])
    return f"{prefix}_{_digits_of_now()}{random_digits}"


def new_token(random_bytes: int = 24) -> str:
    """An unguessable URL-safe token: `random_bytes` of randomness behind the same 10 time digits
    as an id. A unique index of random tokens takes each insert on a random page, and SQLite
    writes every page a commit touched: a batch of submits wrote 73 pages, 15 of them for the
    output-token index; tokens that grow at one end, as ids do, cut that to about 3."""
    return _digits_of_now() + secrets.token_urlsafe(random_bytes)
