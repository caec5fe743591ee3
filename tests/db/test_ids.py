"""Ids: prefixed, 26 Crockford base-32 digits, sortable by the millisecond they were minted in; and
tokens led by the same time digits."""

from __future__ import annotations

import string
import time

import pytest

from backend.db.ids import new_id, new_token

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
URL_SAFE = set(string.ascii_letters + string.digits + "-_")


def test_shape_and_uniqueness() -> None:
    ids = {new_id("job") for _ in range(10_000)}
    assert len(ids) == 10_000
    for value in ids:
        prefix, _, body = value.partition("_")
        assert prefix == "job"
        assert len(body) == 26
        assert set(body) <= CROCKFORD


def test_time_digits_follow_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_765_000_000.25]  # quarters: exact in binary floating point
    monkeypatch.setattr(time, "time", lambda: clock[0])
    first = new_id("job")
    clock[0] += 0.25
    second = new_id("job")
    clock[0] += 86_400
    third = new_id("job")
    assert first[4:14] < second[4:14] < third[4:14]
    assert first < second < third
    assert first[4:14] == "".join(
        "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[(1_765_000_000_250 >> shift) & 31]
        for shift in range(45, -5, -5)
    )


def test_tokens_are_unguessable_url_safe_and_sort_by_time(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = {new_token() for _ in range(10_000)}
    assert len(tokens) == 10_000
    for token in tokens:
        assert len(token) == 10 + 32  # the time digits, then 24 random bytes in URL-safe base 64
        assert set(token[:10]) <= CROCKFORD
        assert set(token[10:]) <= URL_SAFE
    clock = [1_765_000_000.25]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    earlier = new_token()
    clock[0] += 0.25
    later = new_token()
    assert earlier[:10] < later[:10]
    assert later[:10] == new_id("job")[4:14]  # the very digits of an id of that millisecond
    assert later[10:] != earlier[10:]
