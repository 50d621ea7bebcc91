"""minray.protocol.framing: frames, message encoding and the HMAC handshake (no I/O)."""

import struct
from dataclasses import fields

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minray.protocol import framing
from minray.protocol.framing import (
    MAX_REQUEST_ID,
    FrameDecoder,
    ProtocolError,
    decode,
    encode,
    frame,
)
from minray.protocol.messages import (
    FIELD_COUNTS,
    MESSAGE_CLASSES,
    ClusterInfo,
    GetClusterInfo,
    MsgType,
    Ok,
    PushTask,
    RequestLease,
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
REQUEST_IDS = st.integers(min_value=-MAX_REQUEST_ID, max_value=MAX_REQUEST_ID)
MSGPACK_SCALARS = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
MSGPACK_KEYS = st.text(max_size=10) | INT64 | st.binary(max_size=10)
MSGPACK_VALUES = st.recursive(
    MSGPACK_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(MSGPACK_KEYS, children, max_size=4)
    ),
    max_leaves=12,
)


def body_of(data: bytes) -> bytes:
    (size,) = struct.unpack(">I", data[:4])
    assert size == len(data) - 4
    return data[4:]


# --- FrameDecoder -------------------------------------------------------------------


def test_frame_prefixes_the_body_with_its_big_endian_length():
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert frame(b"") == b"\x00\x00\x00\x00"


def test_decoder_returns_every_complete_frame_of_one_feed_in_order():
    decoder = FrameDecoder(max_size=100)
    assert decoder.feed(frame(b"one") + frame(b"") + frame(b"three")) == [b"one", b"", b"three"]


def test_decoder_keeps_a_partial_frame_until_the_rest_arrives():
    decoder = FrameDecoder(max_size=100)
    data = frame(b"hello") + frame(b"world")
    assert decoder.feed(data[:2]) == []  # half a header
    assert decoder.feed(data[2:7]) == []  # header and part of the body
    assert decoder.feed(data[7:11]) == [b"hello"]  # first frame completes, second starts
    assert decoder.feed(data[11:]) == [b"world"]
    assert decoder.feed(b"") == []


def test_decoder_accepts_a_frame_of_exactly_the_maximum_size():
    decoder = FrameDecoder(max_size=8)
    assert decoder.feed(frame(b"x" * 8)) == [b"x" * 8]


def test_decoder_refuses_an_oversize_frame_as_soon_as_its_header_arrives():
    decoder = FrameDecoder(max_size=8)
    with pytest.raises(ProtocolError, match="exceeds the limit of 8"):
        decoder.feed(struct.pack(">I", 9))


def test_decoder_refuses_an_oversize_frame_that_follows_a_good_one():
    decoder = FrameDecoder(max_size=8)
    with pytest.raises(ProtocolError):
        decoder.feed(frame(b"ok") + frame(b"y" * 9))


@given(
    bodies=st.lists(st.binary(max_size=40), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_decoder_output_does_not_depend_on_how_the_stream_is_split(bodies, cuts):
    stream = b"".join(frame(b) for b in bodies)
    points = sorted({min(c, len(stream)) for c in cuts})
    decoder = FrameDecoder(max_size=40)
    out = []
    start = 0
    for point in [*points, len(stream)]:
        out += decoder.feed(stream[start:point])
        start = point
    assert out == bodies


# --- encode / decode ----------------------------------------------------------------


def test_every_message_type_has_a_class_and_a_field_count():
    assert set(MESSAGE_CLASSES) == {int(t) for t in MsgType}
    for code, cls in MESSAGE_CLASSES.items():
        assert cls.type == code
        assert FIELD_COUNTS[code] == len(fields(cls))


@st.composite
def messages(draw):
    cls = draw(st.sampled_from(sorted(MESSAGE_CLASSES.values(), key=lambda c: c.type)))
    values = [draw(MSGPACK_VALUES) for _ in fields(cls)]
    return cls(*values)


@pytest.mark.parametrize(
    "cls", sorted(MESSAGE_CLASSES.values(), key=lambda c: c.type), ids=lambda c: c.__name__
)
@settings(max_examples=8)
@given(data=st.data(), request_id=REQUEST_IDS)
def test_each_message_class_survives_encode_and_decode(cls, data, request_id):
    msg = cls(*[data.draw(MSGPACK_VALUES, label=f.name) for f in fields(cls)])
    decoded, rid = decode(body_of(encode(msg, request_id)))
    assert type(decoded) is cls
    assert decoded == msg
    assert rid == request_id


@given(msg=messages(), request_id=REQUEST_IDS)
def test_any_message_with_msgpack_field_values_round_trips(msg, request_id):
    assert decode(body_of(encode(msg, request_id))) == (msg, request_id)


def test_encode_writes_type_request_id_and_fields_in_order():
    msg = RequestLease(7, {"CPU": 1.0}, "f", b"", {}, False, "SPREAD", None, b"", False)
    items = msgpack.unpackb(body_of(encode(msg, 42)), raw=False)
    fields = [7, {"CPU": 1.0}, "f", b"", {}, False, "SPREAD", None, b"", False]
    assert items == [int(MsgType.REQUEST_LEASE), 42, *fields]


def test_a_message_without_fields_round_trips_with_the_default_request_id():
    assert decode(body_of(encode(GetClusterInfo()))) == (GetClusterInfo(), 0)


def test_binary_and_text_fields_keep_their_types():
    msg = PushTask(
        b"t", b"j", "name", b"f", None, b"\x00\xff", [], [], 1, "addr", [0], {"A": "b"}, None, "ns",
        [b"g", [{"CPU": 1.0}], True],
    )  # fmt: skip
    decoded, _ = decode(body_of(encode(msg, 1)))
    assert decoded.task_id == b"t" and isinstance(decoded.task_id, bytes)
    assert decoded.name == "name" and isinstance(decoded.name, str)
    assert decoded == msg


@pytest.mark.parametrize(
    "body",
    [
        b"",  # empty
        b"\xc1",  # a byte msgpack never uses
        b"\x93\x01",  # array of 3 with one element: truncated
        msgpack.packb(5),  # not an array
        msgpack.packb([]),  # too short
        msgpack.packb([12]),  # no request id
        msgpack.packb(["12", 0]),  # type is not an int
        msgpack.packb([12, 0.0]),  # request id is not an int
        msgpack.packb([True, 0]),  # bool is not an int
        msgpack.packb([12, False]),
        msgpack.packb([999, 0]),  # unknown type
        msgpack.packb([15, 0]),  # a gap in the numbering
        msgpack.packb([int(MsgType.OK), 0, "extra"]),  # too many fields
        msgpack.packb([int(MsgType.CLUSTER_INFO), 0]),  # too few fields
        msgpack.packb([12, 0]) + b"\x00",  # trailing bytes
        b"\x81\x91\x01\x02",  # map with a list key (unhashable)
    ],
)
def test_malformed_bodies_raise_protocol_error(body):
    with pytest.raises(ProtocolError):
        decode(body)


@settings(max_examples=300)
@given(body=st.binary(max_size=200))
def test_decoding_arbitrary_bytes_returns_a_message_or_raises_protocol_error(body):
    try:
        msg, request_id = decode(body)
    except ProtocolError:
        return
    assert type(msg) in MESSAGE_CLASSES.values()
    assert type(request_id) is int


@given(items=st.lists(MSGPACK_VALUES, max_size=6), kind=st.integers(0, 30) | MSGPACK_VALUES)
def test_decoding_arbitrary_msgpack_arrays_returns_a_message_or_raises_protocol_error(items, kind):
    body = msgpack.packb([kind, *items], use_bin_type=True)
    try:
        msg, _ = decode(body)
    except ProtocolError:
        return
    assert isinstance(msg, tuple(MESSAGE_CLASSES.values()))
    assert len(fields(msg)) == len(items) - 1


def test_decode_accepts_maps_with_integer_keys():
    msg, _ = decode(body_of(encode(ClusterInfo([{1: "a", 2: "b"}]))))
    assert msg.nodes == [{1: "a", 2: "b"}]


def test_ok_has_no_fields():
    assert decode(msgpack.packb([int(MsgType.OK), -3])) == (Ok(), -3)


# --- handshake ------------------------------------------------------------------------


def run_handshake(server_token, client_token):
    server_nonce = framing.new_nonce()
    client_nonce = framing.new_nonce()
    hello = framing.server_hello(server_nonce)
    answer = framing.client_answer(client_token, hello, client_nonce)
    proof = framing.server_check(server_token, server_nonce, answer)
    framing.client_check(client_token, client_nonce, proof)


def test_handshake_with_the_same_token_on_both_sides_passes():
    token = framing.new_token()
    run_handshake(token, token)


def test_handshake_messages_fit_the_handshake_frame_limit():
    token = framing.new_token()
    hello = framing.server_hello(framing.new_nonce())
    answer = framing.client_answer(token, hello, framing.new_nonce())
    assert hello.startswith(framing.MAGIC)
    assert len(hello) == len(framing.MAGIC) + framing.NONCE_SIZE <= framing.HANDSHAKE_MAX
    assert len(answer) == framing.DIGEST_SIZE + framing.NONCE_SIZE <= framing.HANDSHAKE_MAX


def test_server_refuses_a_client_with_the_wrong_token():
    with pytest.raises(ProtocolError, match="authentication failed"):
        run_handshake(framing.new_token(), framing.new_token())


def test_client_refuses_a_server_with_the_wrong_token():
    client_token, server_token = framing.new_token(), framing.new_token()
    client_nonce = framing.new_nonce()
    server_nonce = framing.new_nonce()
    hello = framing.server_hello(server_nonce)
    # what a server holding another token would prove for this client nonce
    proof = framing.server_check(
        server_token, server_nonce, framing.client_answer(server_token, hello, client_nonce)
    )
    with pytest.raises(ProtocolError, match="authentication failed"):
        framing.client_check(client_token, client_nonce, proof)


def test_server_proof_is_bound_to_the_client_nonce():
    token = framing.new_token()
    server_nonce = framing.new_nonce()
    answer = framing.client_answer(token, framing.server_hello(server_nonce), framing.new_nonce())
    proof = framing.server_check(token, server_nonce, answer)
    with pytest.raises(ProtocolError):
        framing.client_check(token, framing.new_nonce(), proof)


def test_client_answer_is_bound_to_the_server_nonce():
    token = framing.new_token()
    answer = framing.client_answer(
        token, framing.server_hello(framing.new_nonce()), framing.new_nonce()
    )
    with pytest.raises(ProtocolError):
        framing.server_check(token, framing.new_nonce(), answer)


@pytest.mark.parametrize(
    "hello",
    [
        b"",
        framing.MAGIC,
        b"XXXX" + b"\x00" * framing.NONCE_SIZE,
        framing.MAGIC + b"\x00" * (framing.NONCE_SIZE + 1),
    ],
)
def test_client_refuses_a_hello_that_is_not_a_minray_handshake(hello):
    with pytest.raises(ProtocolError, match="handshake"):
        framing.client_answer(framing.new_token(), hello, framing.new_nonce())


@given(answer=st.binary(max_size=framing.HANDSHAKE_MAX))
def test_server_refuses_any_forged_answer_with_protocol_error(answer):
    with pytest.raises(ProtocolError):
        framing.server_check(b"token", b"\x01" * framing.NONCE_SIZE, answer)


def test_new_tokens_and_nonces_are_random_and_sized():
    assert len(framing.new_token()) == 32
    assert len(framing.new_nonce()) == framing.NONCE_SIZE
    assert framing.new_nonce() != framing.new_nonce()


@pytest.mark.parametrize("request_id", [MAX_REQUEST_ID + 1, -(MAX_REQUEST_ID + 1), 2**64 - 1])
def test_a_request_id_outside_the_answerable_range_is_a_protocol_error(request_id):
    body = msgpack.packb([MsgType.GET_CLUSTER_INFO, request_id])
    with pytest.raises(ProtocolError, match="out of range"):
        decode(body)
