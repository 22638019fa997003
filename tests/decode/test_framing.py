"""RFC 6587 §3.4.1 octet-counted framing, on real captured bodies and edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drain.decode.framing import Frame, encode_frames, iter_frames
from drain.errors import FramingError

SAMPLES = Path(__file__).parent.parent / "data" / "samples"


def frames_of(body: bytes, max_frame_bytes: int = 65536) -> tuple[list[Frame], FramingError | None]:
    """All frames of a body, and the FramingError that stopped it (None if clean)."""
    out: list[Frame] = []
    try:
        for frame in iter_frames(body, max_frame_bytes=max_frame_bytes):
            out.append(frame)
    except FramingError as err:
        return out, err
    return out, None


def test_count_includes_lf() -> None:
    body = (SAMPLES / "logplex-doc-10msg.body").read_bytes()
    frames, err = frames_of(body)
    assert err is None
    assert len(frames) == 10
    line = b"<174>1 2012-07-22T00:06:26+00:00 host erlang console - Hi from erlang\n"
    assert [f.msg for f in frames] == [line] * 10
    assert [f.offset for f in frames] == [73 * i for i in range(10)]
    assert not any(f.too_long for f in frames)


def test_no_lf_between_frames() -> None:
    # Logplex's L10 line carries no LF; the next length prefix follows directly.
    body = (SAMPLES / "logplex-issue105-l10-no-lf.body").read_bytes()
    frames, err = frames_of(body)
    assert err is None
    assert [len(f.msg) for f in frames] == [142, 93]
    assert frames[0].msg.endswith(b"+00:00.")
    assert frames[1].offset == 4 + 142
    assert frames[1].msg.startswith(b"<45>1 ")


def test_split_line_frames_back_to_back() -> None:
    body = (SAMPLES / "log-shuttle" / "ls-split-max-line-100.body").read_bytes()
    frames, err = frames_of(body)
    assert err is None
    assert [len(f.msg) for f in frames] == [157, 157, 87]
    assert frames[0].msg.endswith(b"xxx")
    assert frames[2].msg.endswith(b'"}\n')


def test_count_is_in_bytes_not_characters() -> None:
    body = (SAMPLES / "loki-router-and-gin-multibyte.body").read_bytes()
    frames, err = frames_of(body)
    assert err is None
    assert len(frames) == 3
    assert len(frames[2].msg) == 156
    assert len(frames[2].msg.decode()) == 155
    assert frames[2].msg.endswith(b'"/static/main.css"\n')


def test_truncated_last_frame_keeps_earlier() -> None:
    body = (SAMPLES / "devcenter-https-drain-2msg-truncated-last.body").read_bytes()
    frames, err = frames_of(body)
    assert len(frames) == 1
    assert err is not None
    assert err.offset == 86
    assert "119" in err.expected and "118" in err.expected


def test_short_read_after_good_frame() -> None:
    body = (SAMPLES / "heroku-x-scanner" / "short-read.body").read_bytes()
    frames, err = frames_of(body)
    assert len(frames) == 1
    assert err is not None and err.offset == 67


def test_length_past_end_is_truncated_frame() -> None:
    body = (SAMPLES / "vector-router-asis.body").read_bytes()
    frames, err = frames_of(body)
    assert frames == []
    assert err is not None
    assert err.offset == 0
    assert str(err) == (
        "expected a frame of 267 bytes (truncated frame: 266 bytes remain) at byte 0"
    )


def test_stray_space_before_length() -> None:
    body = (SAMPLES / "heroku-x-scanner" / "bad-frame-position.body").read_bytes()
    frames, err = frames_of(body)
    assert len(frames) == 1
    assert err is not None and err.offset == 67
    assert str(err) == (
        "expected a decimal length (1-9 digits, no leading zero) followed by a space at byte 67"
    )


def test_no_length_prefix_at_all() -> None:
    body = (SAMPLES / "heroku-x-scanner" / "bad-frame-format.body").read_bytes()
    frames, err = frames_of(body)
    assert frames == []
    assert err is not None and err.offset == 0


def test_count_short_of_bytes_runs_into_next_frame() -> None:
    # The 2014 fixture lost its LFs: each count is 1 byte too long, so the first frame eats
    # the "1" of "164"; "64" is then read as a count, and the bytes after it are garbage.
    body = (SAMPLES / "heroku-log-parser-2014-asis.body").read_bytes()
    frames, err = frames_of(body)
    assert [f.offset for f in frames] == [0, 205]
    assert frames[0].msg.endswith(b"+00001")
    assert len(frames[1].msg) == 64
    assert err is not None and err.offset == 205 + 3 + 64


@pytest.mark.parametrize(
    ("body", "offset", "frames"),
    [
        pytest.param(b"0 ", 0, 0, id="zero_length"),
        pytest.param(b"05 hello", 0, 0, id="leading_zero"),
        pytest.param(b"1234567890 x", 0, 0, id="ten_digit_length"),
        pytest.param(b"-1 x", 0, 0, id="negative_length"),
        pytest.param(b"+1 x", 0, 0, id="plus_sign"),
        pytest.param(b"5", 0, 0, id="length_without_space_at_end"),
        pytest.param(b"5hello", 0, 0, id="length_without_space"),
        pytest.param(b"5  hello", 7, 1, id="count_includes_extra_space_then_junk"),
        pytest.param(b"3 abc\n", 5, 1, id="lf_after_frame_not_counted"),
        pytest.param(b"3 abc 3 def", 5, 1, id="space_separator_between_frames"),
        pytest.param(b"\xff3 abc", 0, 0, id="binary_prefix"),
        pytest.param(b"\xd9\xa3 abc", 0, 0, id="unicode_digit_bytes"),
        pytest.param(b" 3 abc", 0, 0, id="leading_space"),
        pytest.param(b"1 a9", 3, 1, id="prefix_cut_at_end"),
    ],
)
def test_framing_errors(body: bytes, offset: int, frames: int) -> None:
    got, err = frames_of(body)
    assert len(got) == frames
    assert err is not None
    assert err.offset == offset


def test_moves_past_too_long_frame() -> None:
    big = b"x" * 100
    body = encode_frames([b"a\n", big, b"b\n"])
    frames, err = frames_of(body, max_frame_bytes=99)
    assert err is None
    assert [(f.msg, f.too_long) for f in frames] == [(b"a\n", False), (big, True), (b"b\n", False)]
    assert frames[2].offset == len(body) - 4


def test_frame_at_exact_limit_is_not_too_long() -> None:
    frames, err = frames_of(encode_frames([b"y" * 99]), max_frame_bytes=99)
    assert err is None and not frames[0].too_long


def test_very_long_message_fits_default_limit() -> None:
    body = (SAMPLES / "heroku-x-scanner" / "very-long-message.body").read_bytes()
    frames, err = frames_of(body)
    assert err is None
    assert len(frames) == 1 and len(frames[0].msg) == 10101 and not frames[0].too_long


def test_empty_body_has_no_frames() -> None:
    assert frames_of(b"") == ([], None)


def test_nine_digit_length_is_read() -> None:
    frames, err = frames_of(b"000000001 x")
    assert err is not None and err.offset == 0
    frames, err = frames_of(b"999999999 x")
    assert frames == [] and err is not None and "999999999" in err.expected


def test_encode_frames_rejects_empty_message() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_frames([b""])


def test_encode_frames_matches_sample() -> None:
    body = (SAMPLES / "devcenter-https-drain-2msg.body").read_bytes()
    frames, err = frames_of(body)
    assert err is None
    assert encode_frames(f.msg for f in frames) == body


def test_iter_frames_accepts_memoryview_free_bytes_like() -> None:
    frames, err = frames_of(bytes(bytearray(b"2 ab")))
    assert err is None and frames == [Frame(0, b"ab", False)]


@settings(max_examples=300)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=20))
def test_encode_then_parse_round_trip(messages: list[bytes]) -> None:
    body = encode_frames(messages)
    frames, err = frames_of(body)
    assert err is None
    assert [f.msg for f in frames] == messages
    assert all(body[f.offset :].startswith(b"%d " % len(f.msg)) for f in frames)


@settings(max_examples=500)
@given(st.binary(max_size=2000))
def test_any_bytes_yield_frames_or_framing_error(body: bytes) -> None:
    frames, err = frames_of(body, max_frame_bytes=64)
    # Frames tile the body from 0 up to where framing stopped; nothing is read past the end.
    pos = 0
    for f in frames:
        assert f.offset == pos
        pos += len(b"%d " % len(f.msg)) + len(f.msg)
        assert f.too_long == (len(f.msg) > 64)
    assert pos <= len(body)
    if err is None:
        assert pos == len(body)
    else:
        assert err.offset == pos < len(body)


@settings(max_examples=300)
@given(
    st.lists(st.binary(min_size=1, max_size=80), min_size=1, max_size=8),
    st.data(),
)
def test_mutated_bodies_terminate(messages: list[bytes], data: st.DataObject) -> None:
    body = bytearray(encode_frames(messages))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.sampled_from(b"0123456789 \n\xffx"))
    frames, err = frames_of(bytes(body))
    assert sum(len(f.msg) for f in frames) <= len(body)
    assert err is None or err.offset < len(body)
