"""Frames and authentication: the pure part of the wire protocol (no I/O here).

A frame is a 4-byte big-endian length followed by that many bytes. Message
frames hold a msgpack array (see messages.py). Before any message, both ends
prove they hold the cluster token with an HMAC challenge:

1. server -> client: ``MAGIC + server_nonce``
2. client -> server: ``hmac(token, "client" + server_nonce) + client_nonce``
3. server -> client: ``hmac(token, "server" + client_nonce)``

Until step 2 checks out the server decodes nothing else, and frames larger than
:data:`HANDSHAKE_MAX` close the connection.
"""

from __future__ import annotations

import hashlib
import hmac
import operator
import os
import struct

import msgpack

from .messages import FIELD_COUNTS, MESSAGE_CLASSES, Message

MAGIC = b"MRY1"
NONCE_SIZE = 32
DIGEST_SIZE = 32
HANDSHAKE_MAX = 128
MAX_REQUEST_ID = 2**53
_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """A peer sent something that breaks the protocol; its connection is closed."""


# --- frames -------------------------------------------------------------------


def frame(body: bytes) -> bytes:
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Splits a byte stream into frame bodies; refuses frames above ``max_size``.

    ``push`` bytes, then take frames one at a time with ``next_frame`` (the
    limit may change between frames, as it does after the handshake), or use
    ``feed`` to do both at once.
    """

    def __init__(self, max_size: int, setting: str = "the handshake's"):
        self.max_size = max_size
        self.setting = setting  #: which limit ``max_size`` is, for the error
        self._buf = bytearray()
        self._pos = 0

    def push(self, data: bytes) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_frame(self) -> bytes | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 4:
            return None
        (size,) = _HEADER.unpack_from(buf, pos)
        if size > self.max_size:
            raise ProtocolError(
                f"frame of {size} bytes exceeds the limit of {self.max_size} ({self.setting})"
            )
        if len(buf) - pos - 4 < size:
            return None
        self._pos = pos + 4 + size
        return bytes(buf[pos + 4 : self._pos])

    def feed(self, data: bytes) -> list[bytes]:
        self.push(data)
        out = []
        while (body := self.next_frame()) is not None:
            out.append(body)
        return out


# --- messages -----------------------------------------------------------------


def encode(msg: Message, request_id: int = 0) -> bytes:
    fields = _FIELD_GETTERS.get(msg.type)
    if fields is None:
        fields = _FIELD_GETTERS[msg.type] = _field_getter(msg.__slots__)
    return frame(msgpack.packb([msg.type, request_id, *fields(msg)], use_bin_type=True))


#: message type -> a function returning the message's fields as a tuple, in order
_FIELD_GETTERS: dict = {}


def _field_getter(names: tuple):
    if not names:
        return lambda msg: ()
    if len(names) == 1:
        name = names[0]
        return lambda msg: (getattr(msg, name),)
    return operator.attrgetter(*names)


def decode(body: bytes) -> tuple[Message, int]:
    """Return ``(message, request_id)``; raise ProtocolError on anything malformed."""
    try:
        items = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several unrelated types
        raise ProtocolError(f"undecodable frame: {type(e).__name__}: {e}") from None
    if not isinstance(items, list) or len(items) < 2:
        raise ProtocolError("frame is not a [type, request_id, ...] array")
    kind, request_id = items[0], items[1]
    if type(kind) is not int or type(request_id) is not int:
        raise ProtocolError("message type and request id must be integers")
    if not -MAX_REQUEST_ID <= request_id <= MAX_REQUEST_ID:
        raise ProtocolError(f"request id {request_id} is out of range")
    cls = MESSAGE_CLASSES.get(kind)
    if cls is None:
        raise ProtocolError(f"unknown message type {kind}")
    if len(items) - 2 != FIELD_COUNTS[kind]:
        raise ProtocolError(
            f"{cls.__name__} needs {FIELD_COUNTS[kind]} fields, got {len(items) - 2}"
        )
    return cls(*items[2:]), request_id


# --- authentication -------------------------------------------------------------


def new_token() -> bytes:
    return os.urandom(32)


def new_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


def _mac(token: bytes, role: bytes, nonce: bytes) -> bytes:
    return hmac.new(token, role + nonce, hashlib.sha256).digest()


def server_hello(nonce: bytes) -> bytes:
    return MAGIC + nonce


def client_answer(token: bytes, hello: bytes, client_nonce: bytes) -> bytes:
    if len(hello) != len(MAGIC) + NONCE_SIZE or not hello.startswith(MAGIC):
        raise ProtocolError("peer did not start with a minray handshake")
    return _mac(token, b"client", hello[len(MAGIC) :]) + client_nonce


def server_check(token: bytes, server_nonce: bytes, answer: bytes) -> bytes:
    """Verify the client's answer; return the server's proof for the client."""
    if len(answer) != DIGEST_SIZE + NONCE_SIZE:
        raise ProtocolError("malformed handshake answer")
    if not hmac.compare_digest(answer[:DIGEST_SIZE], _mac(token, b"client", server_nonce)):
        raise ProtocolError("authentication failed: peer does not hold the cluster token")
    return _mac(token, b"server", answer[DIGEST_SIZE:])


def client_check(token: bytes, client_nonce: bytes, proof: bytes) -> None:
    if not hmac.compare_digest(proof, _mac(token, b"server", client_nonce)):
        raise ProtocolError("authentication failed: server does not hold the cluster token")
