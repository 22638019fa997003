"""drain.decode.scan.contains is ``sub in data``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drain.decode.scan import contains


@given(st.binary(max_size=64), st.binary(min_size=1, max_size=4))
def test_contains_is_in(data: bytes, sub: bytes) -> None:
    assert contains(data, sub) is (sub in data)


def test_contains_at_the_ends_and_in_nothing() -> None:
    assert contains(b"@[t] {}", b"@[")
    assert contains(b'{"a":"\\u0000"}', b"\\u0000")
    assert contains(b"x sample#", b" sample#")
    assert not contains(b"", b"@[")
    with pytest.raises(ValueError):
        contains(b"abc", b"")
