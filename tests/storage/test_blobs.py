from __future__ import annotations

from datetime import timedelta

import pytest

from backend.storage.blobs import MAX_KEY_BYTES, expiry_seconds, validate_key


@pytest.mark.parametrize(
    "key", ["a", "outputs/job-1/0.webp", "ñandú/ü file.png", "a/b.c/d..e", "x" * MAX_KEY_BYTES]
)
def test_portable_keys_are_accepted(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "x" * (MAX_KEY_BYTES + 1),
        "ñ" * (MAX_KEY_BYTES // 2 + 1),  # the limit is in UTF-8 bytes
        "/abs",
        "trailing/",
        "a//b",
        ".",
        "..",
        "a/../b",
        "a/.hidden",
        "a\\..\\b",
        "a\nb",
        "a\x00b",
        "a\x7fb",
    ],
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="blob key"):
        validate_key(key)


def test_expiry_seconds_round_up_and_must_be_positive() -> None:
    assert expiry_seconds(timedelta(hours=48)) == 172_800
    assert expiry_seconds(timedelta(milliseconds=1)) == 1
    with pytest.raises(ValueError, match="positive"):
        expiry_seconds(timedelta(seconds=-1))
