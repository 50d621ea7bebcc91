"""FrameDecoder and decode under mutated streams: wrong and huge lengths, truncation, noise.

Whatever bytes arrive, in whatever pieces, the decoder either hands out whole
frames no larger than its limit or raises ProtocolError; decoding a frame body
either gives a message or raises ProtocolError. Nothing else escapes.
"""

import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minray.protocol.framing import FrameDecoder, ProtocolError, decode, encode, frame
from minray.protocol.messages import GetClusterInfo, Ok, RequestLease

LIMIT = 256
VALID = [
    encode(GetClusterInfo(), 1),
    encode(Ok(), -1),
    encode(RequestLease(3, {"CPU": 1.0}, "f", b"", {}, False, None, None, b""), 3),
]


def mutate(data: bytes, how: str, where: int, value: int) -> bytes:
    """One mutation of a stream: flip, cut, insert, or overwrite a length header."""
    if not data:
        return data
    at = where % len(data)
    if how == "flip":
        return data[:at] + bytes([data[at] ^ (value & 0xFF or 1)]) + data[at + 1 :]
    if how == "cut":
        return data[:at]
    if how == "insert":
        return data[:at] + bytes([value & 0xFF]) + data[at:]
    return struct.pack(">I", value) + data[4:]  # "length": the first header says anything


STREAMS = st.tuples(
    st.lists(st.sampled_from(VALID), min_size=1, max_size=4).map(b"".join),
    st.sampled_from(["flip", "cut", "insert", "length"]),
    st.integers(0, 10_000),
    st.integers(0, 2**32 - 1),
)


def decode_stream(data: bytes, cuts: list[int]) -> list:
    """Feed ``data`` in pieces cut at ``cuts``; decode every frame; return the messages."""
    decoder, out, start = FrameDecoder(LIMIT), [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        for body in decoder.feed(data[start:cut]):
            assert len(body) <= LIMIT
            out.append(decode(body))
        start = max(start, cut)
    return out


@settings(max_examples=300, deadline=None, derandomize=True)
@given(stream=STREAMS, cuts=st.lists(st.integers(0, 10_000), max_size=5))
def test_a_mutated_stream_gives_messages_or_a_protocol_error_nothing_else(stream, cuts):
    data = mutate(*stream)
    try:
        messages = decode_stream(data, cuts)
    except ProtocolError:
        return
    assert all(isinstance(request_id, int) for _, request_id in messages)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(size=st.integers(LIMIT + 1, 2**32 - 1), pieces=st.integers(1, 4))
def test_a_huge_length_is_refused_from_its_header_alone_naming_the_limit(size, pieces):
    decoder = FrameDecoder(LIMIT, "max_frame_bytes")
    header = struct.pack(">I", size)
    with pytest.raises(ProtocolError, match=f"limit of {LIMIT} \\(max_frame_bytes\\)"):
        for i in range(pieces):  # the header, split in up to four pieces
            part = header[i * 4 // pieces : (i + 1) * 4 // pieces]
            decoder.feed(part)
        decoder.feed(b"")


@settings(max_examples=100, deadline=None, derandomize=True)
@given(valid=st.sampled_from(VALID), extra=st.integers(1, 50))
def test_a_length_longer_than_the_body_waits_and_returns_nothing(valid, extra):
    body = valid[4:]
    decoder = FrameDecoder(LIMIT)
    assert decoder.feed(struct.pack(">I", len(body) + extra) + body) == []


@settings(max_examples=100, deadline=None, derandomize=True)
@given(valid=st.sampled_from(VALID), data=st.data())
def test_truncated_msgpack_in_a_whole_frame_is_a_protocol_error(valid, data):
    body = valid[4:]
    cut = data.draw(st.integers(1, len(body) - 1))
    with pytest.raises(ProtocolError):
        decode(FrameDecoder(LIMIT).feed(frame(body[:cut]))[0])


@pytest.mark.parametrize(
    "value",
    [{"type": 12}, "GetClusterInfo", 12, None, [12], [12.0, 1], ["12", 1], [12, 1, "extra"]],
)
def test_valid_msgpack_of_the_wrong_shape_is_a_protocol_error(value):
    with pytest.raises(ProtocolError):
        decode(msgpack.packb(value))
