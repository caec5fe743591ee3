"""Prefixed, time-sortable, unguessable ids: `job_01JD...` (a ULID body)."""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two base-32 digits per 10-bit step: a submit mints three ids, and this halves their cost.
_DIGIT_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
_SHIFTS = range(120, -10, -10)  # 130 bits, most significant first (the top 2 are always 0)


def new_id(prefix: str) -> str:
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return f"{prefix}_{''.join([_DIGIT_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])}"
