"""Connections: authenticated, multiplexed message streams over asyncio transports.

One :class:`Connection` per pair of processes. It authenticates first (see
framing.py), then decodes frames into messages and dispatches each to the
handler's ``handle_<MessageName>(conn, msg)`` method. A handler answering a
request returns the reply message (or an awaitable of it), or returns
:data:`DEFERRED` and answers later, from any thread, through the
:class:`Reply` that ``conn.reply_later()`` gave it. Writes queued during one
loop tick leave in one ``writelines`` call.

The loop thread owns the connection, with one exception: ``send_threadsafe``
lets another thread (a worker's main thread finishing a task) write a frame
straight to the socket when nothing is queued before it, which saves two hops
through the loop thread per reply. A lock keeps frames whole and in order.

A malformed frame or a failed handshake closes only that connection, with a
logged reason. So does a handshake not finished within the deadline, and a
listener closes its oldest connection in the handshake when too many are
(admission.py). With TLS on (tls.py), TCP connections are TLS underneath: the TLS
handshake comes before the token handshake, and every byte then goes through
the transport (no direct socket writes).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from ..config import env_setting
from . import framing, tls
from .admission import Gate, Limits
from .framing import ProtocolError
from .messages import MESSAGE_CLASSES, ErrorReply, Message

logger = logging.getLogger(__name__)


class ConnectionLost(ConnectionError):
    """The peer went away before answering."""


class RemoteError(Exception):
    """A request was answered with ErrorReply."""

    def __init__(self, error: str, message: str):
        super().__init__(message)
        self.error = error


#: returned by a handler that will answer later through ``conn.reply_later()``
DEFERRED = object()


class Reply:
    """The answer to one request, to be sent later from any thread."""

    __slots__ = ("conn", "request_id")

    def __init__(self, conn: Connection, request_id: int):
        self.conn = conn
        self.request_id = request_id

    def send(self, msg: Message) -> None:
        """Send the answer now, from this thread (see Connection.send_threadsafe)."""
        if self.request_id > 0:
            self.conn.send_threadsafe(msg, -self.request_id)

    def post(self, msg: Message) -> None:
        """Hand the answer to the loop thread, which sends it with the others of its tick
        (for many threads answering at once, which would queue on the socket's lock)."""
        if self.request_id > 0:
            self.conn.call_soon_threadsafe(self.conn.send, msg, -self.request_id)


class Answer:
    """The reply to a request made with ``on_reply``: read like a done future.

    The callback runs as soon as the reply is decoded, without the extra loop
    turn an asyncio future's done-callback costs (the hot path of every task).
    """

    __slots__ = ("_on_reply", "_reply", "_error")

    def __init__(self, on_reply: Callable[[Answer], None]):
        self._on_reply = on_reply
        self._reply: Message | None = None
        self._error: BaseException | None = None

    def cancelled(self) -> bool:
        return False

    def exception(self) -> BaseException | None:
        return self._error

    def result(self) -> Message:
        if self._error is not None:
            raise self._error
        return self._reply

    def _answer(self, reply: Message | None, error: BaseException | None) -> None:
        self._reply, self._error = reply, error
        try:
            self._on_reply(self)
        except Exception:  # as the loop does for a future's callback: log, keep the connection
            logger.exception("handling the reply to a request failed")


_dispatch_tables: dict[type, dict[int, Callable]] = {}


def _dispatch_table(handler_cls: type) -> dict[int, Callable]:
    table = _dispatch_tables.get(handler_cls)
    if table is None:
        table = {}
        for code, msg_cls in MESSAGE_CLASSES.items():
            method = getattr(handler_cls, f"handle_{msg_cls.__name__}", None)
            if method is not None:
                table[code] = method
        _dispatch_tables[handler_cls] = table
    return table


class Connection(asyncio.Protocol):
    """One end of an authenticated connection; see the module docstring."""

    def __init__(
        self,
        handler: Any,
        token: bytes,
        *,
        server: bool,
        max_frame: int,
        gate: Gate | None = None,
        handshake_timeout_s: float | None = None,
    ):
        self.handler = handler
        self.token = token
        self.server = server
        self.max_frame = max_frame
        self._table = _dispatch_table(type(handler))
        self._decoder = framing.FrameDecoder(framing.HANDSHAKE_MAX)
        self._nonce = framing.new_nonce()
        self._authed = False
        self._gate = gate  #: the listener's admission count, until the handshake is done
        self._deadline: asyncio.TimerHandle | None = None  #: drops us if the handshake lags
        limits = gate.limits if gate is not None else Limits()
        self._handshake_timeout_s = handshake_timeout_s or limits.handshake_timeout_s
        self._transport: asyncio.Transport | None = None
        self._fd = -1  #: our own dup of the socket, for send_threadsafe (closed with us)
        self._write_lock = threading.RLock()  #: frames stay whole when two threads send
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._drained: asyncio.Future | None = None  #: while the transport's buffer is full
        self._pending: dict[int, asyncio.Future | Answer] = {}
        self._ids = itertools.count(1)
        self._dispatching = 0  #: id of the request whose handler runs now
        self.loop = asyncio.get_event_loop()
        self.ready: asyncio.Future = self.loop.create_future()
        self._gone: asyncio.Future = self.loop.create_future()  #: the transport is gone
        self.closed = False
        self.close_reason = ""
        self.close_callbacks: list[Callable[[Connection], None]] = []
        #: free-form per-connection state for the handler (e.g. who registered)
        self.info: dict[str, Any] = {}

    # --- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport) -> None:
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and transport.get_extra_info("sslcontext") is None:
            self._fd = os.dup(sock.fileno())
        timeout = self._handshake_timeout_s
        self._deadline = self.loop.call_later(timeout, self._handshake_expired, timeout)
        if self.server:
            transport.write(framing.frame(framing.server_hello(self._nonce)))
            if self._gate is not None:
                self._gate.admit(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._decoder.push(data)
            while (body := self._decoder.next_frame()) is not None:
                if self.closed:
                    return
                if self._authed:
                    msg, request_id = framing.decode(body)
                    self._dispatch(msg, request_id)
                else:
                    self._handshake(body)
        except ProtocolError as e:
            reason = f"protocol error: {e}{'' if self._authed else tls.plain_peer_hint(data)}"
            if self._gate is not None:  # a stranger's: logged once per burst by the listener
                self._gate.fail(self, reason)
            else:
                self.abort(reason)

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = self.loop.create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport takes more (ConnectionLost if the connection closes)."""
        if self._drained is not None:
            await self._drained
        if self.closed:
            raise ConnectionLost(self.close_reason)

    def connection_lost(self, exc) -> None:
        if not self._gone.done():
            self._gone.set_result(None)
        self._closed(self.close_reason or f"peer closed the connection ({exc or 'EOF'})")

    # --- handshake ------------------------------------------------------------------

    def _handshake(self, body: bytes) -> None:
        if self.server:
            proof = framing.server_check(self.token, self._nonce, body)
            self._transport.write(framing.frame(proof))
            self._became_authed()
        elif "hello" not in self.info:
            self.info["hello"] = True
            answer = framing.client_answer(self.token, body, self._nonce)
            self._transport.write(framing.frame(answer))
        else:
            framing.client_check(self.token, self._nonce, body)
            self._became_authed()

    def _handshake_expired(self, timeout: float) -> None:
        if self._authed or self.closed:
            return
        if self._gate is not None:  # a listener's: it logs once per burst of these
            self._gate.expire(self)
        else:
            self.abort(
                f"the handshake did not finish within {timeout:g} s (the limit is "
                f"{env_setting('handshake_timeout_s')})"
            )

    def _handshake_over(self) -> None:
        """Authenticated or closed: no deadline, and no longer counted by the listener."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._gate is not None:
            self._gate.leave(self)
            self._gate = None

    def _became_authed(self) -> None:
        self._authed = True
        self._handshake_over()
        self._decoder.max_size = self.max_frame
        self._decoder.setting = env_setting("max_frame_bytes")
        if not self.ready.done():
            self.ready.set_result(self)

    # --- dispatch ---------------------------------------------------------------------

    def _dispatch(self, msg: Message, request_id: int) -> None:
        if request_id < 0:
            fut = self._pending.pop(-request_id, None)
            if type(fut) is Answer:
                if type(msg) is ErrorReply:
                    fut._answer(None, RemoteError(msg.error, msg.message))
                else:
                    fut._answer(msg, None)
                return
            if fut is None or fut.done():
                return
            if type(msg) is ErrorReply:
                fut.set_exception(RemoteError(msg.error, msg.message))
            else:
                fut.set_result(msg)
            return
        method = self._table.get(msg.type)
        if method is None:
            raise ProtocolError(f"{type(msg).__name__} is not accepted here")
        self._dispatching = request_id
        try:
            result = method(self.handler, self, msg)
        except Exception as e:
            self._handler_failed(msg, request_id, e)
            return
        if result is DEFERRED:
            return
        if isinstance(result, asyncio.Future):
            if request_id > 0:
                result.add_done_callback(lambda fut: self._reply_with(msg, request_id, fut))
        elif inspect.isawaitable(result):
            self.loop.create_task(self._finish(msg, request_id, result))
        elif request_id > 0:
            self._send_reply(msg, request_id, result)

    def _send_reply(self, msg: Message, request_id: int, result: Message | None) -> None:
        """Answer request ``request_id``; a handler that answers nothing (a one-way
        message sent as a request) gets the requester an error, not a hang."""
        if result is None:
            result = ErrorReply(
                "ValueError", f"{type(msg).__name__} has no reply: send it without a request id"
            )
        self.send(result, -request_id)

    def _reply_with(self, msg: Message, request_id: int, fut: asyncio.Future) -> None:
        if fut.cancelled():
            self.send(ErrorReply("Cancelled", "the request was cancelled"), -request_id)
        elif fut.exception() is not None:
            self._handler_failed(msg, request_id, fut.exception())
        else:
            self._send_reply(msg, request_id, fut.result())

    async def _finish(self, msg: Message, request_id: int, awaitable) -> None:
        try:
            result = await awaitable
        except Exception as e:
            self._handler_failed(msg, request_id, e)
            return
        if request_id > 0:
            self._send_reply(msg, request_id, result)

    def _handler_failed(self, msg: Message, request_id: int, e: Exception) -> None:
        if request_id > 0:
            self.send(ErrorReply(type(e).__name__, str(e)), -request_id)
        if not isinstance(e, (LookupError, ValueError)) or request_id <= 0:
            logger.error("handling %s failed", type(msg).__name__, exc_info=e)

    def reply_later(self) -> Reply:
        """In a handler: the Reply for the request being handled (return DEFERRED)."""
        return Reply(self, self._dispatching)

    # --- sending ----------------------------------------------------------------------

    def send(self, msg: Message, request_id: int = 0) -> None:
        """Loop thread: queue a message; it leaves with the others of this tick."""
        if self.closed:
            return
        frame = framing.encode(msg, request_id)
        with self._write_lock:
            self._out.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def send_frame(self, frame: bytes) -> None:
        """Loop thread: queue a frame already encoded (one push sent to many peers)."""
        if self.closed:
            return
        with self._write_lock:
            self._out.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def send_threadsafe(self, msg: Message, request_id: int = 0) -> None:
        """Any thread: write now if nothing waits to be written first, else queue for the loop."""
        frame = framing.encode(msg, request_id)
        with self._write_lock:
            if self.closed:
                return
            if not self._out and self._fd >= 0 and not self._transport.get_write_buffer_size():
                try:
                    written = os.write(self._fd, frame)
                except (BlockingIOError, InterruptedError):
                    written = 0
                except OSError:  # the peer is gone: the loop finds out and closes us
                    return
                if written == len(frame):
                    return
                frame = frame[written:]
            self._out.append(frame)
        self.call_soon_threadsafe(self._flush)

    def call_soon_threadsafe(self, fn: Callable, *args) -> None:
        """Run ``fn(*args)`` on the loop thread; nothing if the loop is already closed."""
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed: the process is shutting down, the peer will know
            pass

    def request(self, msg: Message) -> asyncio.Future:
        """Send ``msg`` and return a future of the reply message."""
        fut = self.loop.create_future()
        if self.closed:
            fut.set_exception(ConnectionLost(self.close_reason))
            return fut
        request_id = next(self._ids)
        self._pending[request_id] = fut
        self.send(msg, request_id)
        return fut

    def request_then(
        self, msg: Message, on_reply: Callable[[Answer], None], threadsafe: bool = False
    ) -> None:
        """Send ``msg``; call ``on_reply(answer)`` on the loop thread with the reply, or the
        error if none comes. ``threadsafe``: called from another thread (see send_threadsafe).
        """
        answer = Answer(on_reply)
        with self._write_lock:  # a request is either pending before we close, or refused
            closed = self.closed
            if not closed:
                request_id = next(self._ids)
                self._pending[request_id] = answer
        if closed:
            lost = ConnectionLost(self.close_reason)
            self.call_soon_threadsafe(answer._answer, None, lost)
        elif threadsafe:
            self.send_threadsafe(msg, request_id)
        else:
            self.send(msg, request_id)

    def _flush(self) -> None:
        self._flush_scheduled = False
        with self._write_lock:
            if self._out and not self.closed:
                out, self._out = self._out, []
                self._transport.writelines(out)

    def written(self) -> bool:
        """Whether everything sent so far has left (nothing queued here or in the transport)."""
        with self._write_lock:
            return self.closed or not (self._out or self._transport.get_write_buffer_size())

    def take_over(self) -> int:
        """Loop thread: stop reading, and return a new descriptor of the socket for a
        raw byte stream after the last frame (the caller closes it, then this connection).
        Raises RuntimeError if frames still wait to be written."""
        with self._write_lock:
            if self.closed or self._fd < 0:
                raise RuntimeError("the connection is closed")
            if self._out or self._transport.get_write_buffer_size():
                raise RuntimeError("frames are still queued on this connection")
            self._transport.pause_reading()
            return os.dup(self._fd)

    @property
    def is_tls(self) -> bool:
        """Whether this connection runs over TLS (so its socket is never written directly)."""
        transport = self._transport
        return transport is not None and transport.get_extra_info("sslcontext") is not None

    def take_over_transport(self) -> asyncio.Transport:
        """Loop thread: stop reading, and return the transport for a raw byte stream after
        the last frame, written with ``write`` and paced by ``drain`` (a TLS connection's
        socket cannot be taken over: its bytes must be encrypted). Flushes queued frames."""
        if self.closed:
            raise RuntimeError("the connection is closed")
        self._flush()
        self._transport.pause_reading()
        return self._transport

    # --- closing ------------------------------------------------------------------------

    def abort(self, reason: str, log: bool = True) -> None:
        """Close because of a protocol violation; logs the reason (if ``log``)."""
        if log:
            logger.warning("closing connection: %s", reason)
        self.close_reason = reason
        if self._transport is not None:
            self._transport.abort()
        self._closed(reason)

    async def gone(self, timeout: float = 1.0) -> None:
        """After ``close``: wait (at most ``timeout``) until the transport is gone, which a
        TLS connection's goodbye takes a few loop turns for (a loop about to close)."""
        if self._transport is not None:
            await asyncio.wait([self._gone], timeout=timeout)

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._flush()
            self._transport.close()
        self._closed("closed locally")

    def _closed(self, reason: str) -> None:
        if self.closed:
            return
        self._handshake_over()
        with self._write_lock:
            self.closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            pending, self._pending = self._pending, {}
            self.close_reason = reason
        if not self.ready.done():
            self.ready.set_exception(ConnectionLost(reason))
            self.ready.exception()  # mark retrieved
        self.resume_writing()  # (drain raises ConnectionLost)
        for fut in pending.values():
            if type(fut) is Answer:  # later, as a future's callback would be
                self.loop.call_soon(fut._answer, None, ConnectionLost(reason))
            elif not fut.done():
                fut.set_exception(ConnectionLost(reason))
        for callback in self.close_callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("connection close callback failed")


def parse_address(address: str) -> tuple[str, Any]:
    """``unix:/path`` -> ("unix", path); ``tcp:host:port`` -> ("tcp", (host, port))."""
    scheme, _, rest = address.partition(":")
    if scheme == "unix" and rest:
        return "unix", rest
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit():
            return "tcp", (host, int(port))
    raise ValueError(f"bad address {address!r}: expected 'unix:/path' or 'tcp:host:port'")


async def connect(
    address: str,
    handler: Any,
    token: bytes,
    max_frame: int,
    handshake_timeout_s: float | None = None,
) -> Connection:
    """Open an authenticated connection to ``address`` (ConnectionLost if the server does
    not finish the handshake within ``handshake_timeout_s``, by default the setting's)."""
    loop = asyncio.get_running_loop()
    scheme, where = parse_address(address)

    def factory():
        return Connection(
            handler,
            token,
            server=False,
            max_frame=max_frame,
            handshake_timeout_s=handshake_timeout_s,
        )

    if scheme == "unix":
        _, conn = await loop.create_unix_connection(factory, where)
    elif tls.enabled():
        return await tls.connect(loop, factory, *where)
    else:
        _, conn = await loop.create_connection(factory, *where)
    return await conn.ready


async def serve(
    address: str,
    handler: Any,
    token: bytes,
    max_frame: int,
    on_connect: Callable[[Connection], None] | None = None,
    sock=None,
    limits: Limits | None = None,
):
    """Listen at ``address`` (on ``sock`` if given: a bound, listening socket); returns
    the asyncio Server (a TLSListener with TLS on). ``limits``: for strangers
    (admission.py; default: the settings)."""
    loop = asyncio.get_running_loop()
    scheme, where = parse_address(address)
    gate = Gate(address, limits)

    def factory():
        conn = Connection(handler, token, server=True, max_frame=max_frame, gate=gate)
        if on_connect is not None:
            on_connect(conn)
        return conn

    tcp = scheme == "tcp" if sock is None else sock.family != socket.AF_UNIX
    if tcp and tls.enabled():  # each connection's TLS handshake first, refusals logged
        return tls.listen(factory, where, sock)
    if sock is not None:
        server = await loop.create_server(factory, sock=sock)
    elif scheme == "unix":
        server = await loop.create_unix_server(factory, where)
    else:
        server = await loop.create_server(factory, *where)
    if scheme == "tcp":  # the port it got, for the log line of the gate
        host, port = server.sockets[0].getsockname()[:2]
        gate.where = f"tcp:{host}:{port}"
    return server
