"""A blocking client connection, for bulk transfers run on a thread of their own.

The event-loop ``Connection`` (connection.py) is right for many small messages.
Moving a large object is one request and then a long stream of raw bytes, which
a plain blocking socket does best: ``splice`` moves the bytes into the
destination's shared memory inside the kernel (``recv_into`` a mapping where
``splice`` is missing). The handshake and frames are the same as
everywhere (framing.py), so the listener cannot tell the difference. With TLS
on (tls.py), a TCP socket is wrapped in TLS before the token handshake, and the
bytes are decrypted into the mapping (``splice`` cannot decrypt).
"""

from __future__ import annotations

import fcntl
import os
import select
import socket

from . import framing, tls
from .connection import RemoteError, parse_address
from .framing import ProtocolError
from .messages import ErrorReply, Message


def dial(address: str, token: bytes, timeout: float) -> socket.socket:
    """Connect to ``address`` ("unix:/path" or "tcp:host:port") and authenticate.

    ``timeout`` bounds every later send and receive too (a peer that stops
    answering raises ``TimeoutError``)."""
    scheme, where = parse_address(address)
    if scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(where)
        except BaseException:
            sock.close()
            raise
    else:
        sock = socket.create_connection(where, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls.enabled():
            sock = _wrap(sock, f"{where[0]}:{where[1]}", server_host=where[0])
    try:
        try:
            hello = read_frame(sock, framing.HANDSHAKE_MAX)
        except OSError as e:  # (TLS: a server that refuses our certificate closes now)
            if type(sock) is socket.socket or tls.is_tls_error(e) or isinstance(e, TimeoutError):
                raise
            raise tls.TLSHandshakeError(tls.refused_after_handshake(address)) from None
        nonce = framing.new_nonce()
        sock.sendall(framing.frame(framing.client_answer(token, hello, nonce)))
        framing.client_check(token, nonce, read_frame(sock, framing.HANDSHAKE_MAX))
    except BaseException as e:
        sock.close()
        if tls.is_tls_error(e):  # the server refused our certificate after the TLS handshake
            raise tls.TLSHandshakeError(tls.describe(e, address, we_dialled=True)) from None
        raise
    return sock


def answer_handshake(sock: socket.socket, token: bytes) -> socket.socket:
    """The listening side of the handshake ``dial`` makes, on an accepted socket: returns
    the socket to use (TLS-wrapped when TLS is on and it is TCP) once the peer proved it
    holds ``token``; ProtocolError or ConnectionError (TLSHandshakeError) if not. Give the
    socket a timeout first, so a silent peer cannot hold the listener."""
    if sock.family != socket.AF_UNIX and tls.enabled():
        peer = tls.peer_name(sock.getpeername())
        sock = _wrap(sock, peer, server_host=None)
    try:
        nonce = framing.new_nonce()
        sock.sendall(framing.frame(framing.server_hello(nonce)))
        answer = read_frame(sock, framing.HANDSHAKE_MAX)
        sock.sendall(framing.frame(framing.server_check(token, nonce, answer)))
    except BaseException:
        sock.close()  # (the caller's socket may be the one TLS took over)
        raise
    return sock


def _wrap(sock: socket.socket, peer: str, server_host: str | None) -> socket.socket:
    """TLS over ``sock`` (a client's if ``server_host``, else a listener's), handshake
    done; closes ``sock`` and raises TLSHandshakeError if it fails."""
    try:
        if server_host is None:
            return tls.server_context().wrap_socket(sock, server_side=True)
        return tls.client_context().wrap_socket(sock, server_hostname=server_host)
    except OSError as e:
        sock.close()
        if tls.is_tls_error(e):
            raise tls.TLSHandshakeError(
                tls.describe(e, peer, we_dialled=server_host is not None)
            ) from None
        raise


def request(sock: socket.socket, msg: Message, max_reply: int = 1 << 20) -> Message:
    """Send one request and read its reply; an ErrorReply raises RemoteError."""
    sock.sendall(framing.encode(msg, 1))
    reply, request_id = framing.decode(read_frame(sock, max_reply))
    if request_id != -1:
        raise ProtocolError(f"expected the reply to request 1, got {request_id}")
    if type(reply) is ErrorReply:
        raise RemoteError(reply.error, reply.message)
    return reply


def read_frame(sock: socket.socket, max_size: int) -> bytes:
    header = recv_exactly(sock, 4)
    size = int.from_bytes(header, "big")
    if size > max_size:
        raise ProtocolError(f"frame of {size} bytes exceeds the limit of {max_size}")
    return recv_exactly(sock, size)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    buf = bytearray(size)
    recv_into_exactly(sock, memoryview(buf))
    return bytes(buf)


def recv_into_exactly(sock: socket.socket, view: memoryview, chunk: int = 8 << 20) -> None:
    """Fill ``view`` from the socket; ConnectionError if the peer closes first."""
    got, size = 0, len(view)
    while got < size:
        n = sock.recv_into(view[got : got + chunk])
        if n == 0:
            raise ConnectionError(f"the peer closed the connection after {got:,} of {size:,} bytes")
        got += n


def splice_into(sock: socket.socket, fd: int, size: int, timeout: float) -> None:
    """Move ``size`` bytes from the socket into the file ``fd`` (from offset 0) inside the
    kernel, through a pipe (Linux ``splice``): nothing is copied through this process's
    memory, and the file's pages need no mapping. ConnectionError if the peer closes
    first; TimeoutError if nothing comes for ``timeout`` seconds."""
    read_end, write_end = os.pipe()
    try:
        try:
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1 << 20)
        except OSError:  # (a lower limit for unprivileged users: keep the default)
            pass
        chunk = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ)
        source, got = sock.fileno(), 0
        while got < size:
            try:
                moved = os.splice(source, write_end, min(chunk, size - got))
            except BlockingIOError:  # a socket with a timeout is non-blocking underneath
                poller = select.poll()
                poller.register(source, select.POLLIN)
                if not poller.poll(timeout * 1000):
                    raise TimeoutError(f"nothing came for {timeout} s") from None
                continue
            if moved == 0:
                raise ConnectionError(
                    f"the peer closed the connection after {got:,} of {size:,} bytes"
                )
            done = 0
            while done < moved:
                done += os.splice(read_end, fd, moved - done, offset_dst=got + done)
            got += moved
    finally:
        os.close(read_end)
        os.close(write_end)


#: whether splice_into works here (Linux, Python 3.10+)
CAN_SPLICE = hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")


def can_splice(sock: socket.socket) -> bool:
    """Whether ``splice_into`` can read ``sock``: a plain socket (not TLS) on Linux."""
    return CAN_SPLICE and type(sock) is socket.socket
