"""TLS on TCP connections (``MINRAY_USE_TLS=1``): contexts, and errors a user can act on.

The rules it keeps:

* Only TCP. Unix sockets between the processes of one machine stay plain.
* Mutual. Every process shows its machine's certificate
  (``MINRAY_TLS_SERVER_CERT`` / ``MINRAY_TLS_SERVER_KEY``) whether it listens or
  dials; each side checks the peer's certificate against ``MINRAY_TLS_CA_CERT``,
  and the dialling side also checks that the certificate names the host it dialled.
* Underneath, not instead. The token handshake (framing.py) still runs, inside
  the encrypted channel, so a certificate alone does not let anyone in.
* No cost when off: ``ssl`` is imported only once TLS is on.

connection.py (event loop), blocking.py (bulk transfers) and the debugger's
channel call :func:`server_context` / :func:`client_context`, and turn a failed
handshake into :class:`TLSHandshakeError` with :func:`describe`, which says which
side refused and why.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from ..config import CONFIG

logger = logging.getLogger("minray.protocol.connection")

#: how long a listener waits for a peer's TLS handshake (a plain-TCP peer sends none)
HANDSHAKE_TIMEOUT_S = 10.0

SETUP_HINT = (
    "Make certificates with `minray tls init DIR --hosts ADDRESS...` and set MINRAY_USE_TLS=1, "
    "MINRAY_TLS_SERVER_CERT, MINRAY_TLS_SERVER_KEY and MINRAY_TLS_CA_CERT on every machine "
    '(docs/cluster.md, "TLS").'
)

#: (setting, environment variable, what it is) for each file TLS needs
_FILES = (
    ("tls_server_cert", "MINRAY_TLS_SERVER_CERT", "this machine's certificate"),
    ("tls_server_key", "MINRAY_TLS_SERVER_KEY", "its private key"),
    ("tls_ca_cert", "MINRAY_TLS_CA_CERT", "the cluster's CA certificate"),
)


class TLSSettingsError(ValueError):
    """``MINRAY_USE_TLS=1`` but a certificate setting is missing, unreadable or invalid."""


class TLSHandshakeError(ConnectionError):
    """A TLS handshake failed; the message says which side refused and why."""


def enabled() -> bool:
    """Whether TCP connections of this process use TLS (no ssl import if not)."""
    return CONFIG.use_tls


def settings_problem(settings: Any) -> str | None:
    """What is wrong with the TLS settings of ``settings`` (a Config), or None."""
    if not settings.use_tls:
        return None
    for field, env, what in _FILES:
        path = getattr(settings, field)
        if not path:
            return f"MINRAY_USE_TLS=1 needs {env} ({what}, a PEM file), which is not set. " + (
                SETUP_HINT
            )
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            return f"{env}={path!r} ({what}) cannot be read: {e.strerror or e}."
    return None


def make_contexts(cert: str, key: str, ca: str) -> tuple[Any, Any]:
    """(server context, client context) for a machine's ``cert``/``key`` and the ``ca``;
    TLSSettingsError if they cannot be loaded."""
    import ssl

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks the host name, requires a cert
    for context in (server, client):
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as e:
            raise TLSSettingsError(
                f"cannot load the certificate {cert!r} with the key {key!r} "
                f"(MINRAY_TLS_SERVER_CERT / MINRAY_TLS_SERVER_KEY): {_reason(e)}. Are they a "
                "PEM certificate and its own key?"
            ) from None
        try:
            context.load_verify_locations(ca)
        except (ssl.SSLError, OSError) as e:
            raise TLSSettingsError(
                f"cannot load the CA certificate {ca!r} (MINRAY_TLS_CA_CERT): {_reason(e)}"
            ) from None
    server.verify_mode = ssl.CERT_REQUIRED  # clients show a certificate from the CA too
    return server, client


@functools.lru_cache(maxsize=1)
def _contexts() -> tuple[Any, Any]:
    problem = settings_problem(CONFIG)
    if problem is not None:
        raise TLSSettingsError(problem)
    return make_contexts(CONFIG.tls_server_cert, CONFIG.tls_server_key, CONFIG.tls_ca_cert)


def check() -> None:
    """TLSSettingsError now (at start) rather than at the first connection, if TLS is on
    and its files are missing or do not load."""
    if enabled():
        _contexts()


def server_context() -> Any:
    """The context of this process's TCP listeners (TLSSettingsError if misconfigured)."""
    return _contexts()[0]


def client_context() -> Any:
    """The context of this process's TCP connections to others."""
    return _contexts()[1]


# --- the event loop's connections (connection.py) ----------------------------------------


async def connect(loop: asyncio.AbstractEventLoop, factory: Callable, host: str, port: int):
    """Dial ``host:port`` with TLS, then wait for the token handshake; returns the
    Connection, or TLSHandshakeError saying which side refused and why."""
    peer = f"{host}:{port}"
    try:
        _, conn = await loop.create_connection(
            factory,
            host,
            port,
            ssl=client_context(),
            server_hostname=host,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S,
        )
    except OSError as e:  # (ssl's errors are OSErrors)
        if is_tls_error(e):
            raise TLSHandshakeError(describe(e, peer, we_dialled=True)) from None
        raise
    try:
        return await conn.ready
    except ConnectionError:
        if "hello" in conn.info:  # the token handshake had begun: not a TLS matter
            raise
        raise TLSHandshakeError(refused_after_handshake(peer)) from None


def refused_after_handshake(peer: str) -> str:
    """The server closed at once after the TLS handshake (TLS 1.3: it checks the client's
    certificate then, and the client may see no alert)."""
    return (
        f"TLS handshake with {peer} refused by the other side (the server): it closed the "
        "connection before the token handshake, which is what a server does when it does "
        "not accept this process's certificate (MINRAY_TLS_SERVER_CERT): not signed by the "
        "CA it trusts, or expired. Its log says why."
    )


def listen(factory: Callable, where: tuple[str, int], sock: socket.socket | None) -> TLSListener:
    """A TLS listener on ``sock`` (a bound, listening socket), else at ``where`` (host,
    port); TLSSettingsError first if the settings are bad."""
    context = server_context()
    if sock is None:
        family = socket.AF_INET6 if ":" in where[0] else socket.AF_INET
        sock = socket.create_server(where, family=family, backlog=128)
    return TLSListener(sock, factory, context)


class TLSListener:
    """A TCP listener whose connections begin with a TLS handshake; ``serve`` returns it
    in place of an asyncio Server (``sockets``, ``close``). Each handshake runs in a task
    of its own under a deadline; a refusal is logged with the peer and why, and closes
    only that connection (asyncio's own TLS server drops them without a word)."""

    def __init__(self, sock: socket.socket, factory: Callable, context: Any):
        self._context = context
        sock.setblocking(False)
        self.sockets = [sock]
        self._factory = factory
        self._loop = asyncio.get_running_loop()
        self._handshakes: set[asyncio.Task] = set()
        self._accepting = self._loop.create_task(self._accept())

    async def _accept(self) -> None:
        listener = self.sockets[0]
        while listener.fileno() >= 0:
            try:
                sock, peer = await self._loop.sock_accept(listener)
            except OSError as e:  # out of descriptors, say: the listener carries on
                if listener.fileno() < 0:
                    return
                logger.warning("accepting a TCP connection failed: %s", e)
                await asyncio.sleep(0.1)
                continue
            task = self._loop.create_task(self._handshake(sock, peer_name(peer)))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket, peer: str) -> None:
        made: list = []

        def factory():
            made.append(self._factory())
            return made[-1]

        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await self._loop.connect_accepted_socket(
                factory, sock, ssl=self._context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S
            )
        except asyncio.CancelledError:  # the listener closed meanwhile
            sock.close()
            raise
        except (OSError, asyncio.TimeoutError) as e:  # (a silent plain-TCP peer times out)
            if is_tls_error(e):
                reason = describe(e, peer, we_dialled=False)
            else:
                reason = (
                    f"TLS handshake with {peer} failed on this side (the server): no TLS "
                    f"handshake within {HANDSHAKE_TIMEOUT_S:g} s ({type(e).__name__}: {e}). "
                    "Is the peer plain TCP (MINRAY_USE_TLS not set there)?"
                )
            sock.close()
            if made:
                made[0].abort(reason)  # logs it, and tells whoever tracks the connection
            else:
                logger.warning("closing connection: %s", reason)

    def close(self) -> None:
        """Stop listening and drop handshakes in flight (open connections stay)."""
        self._accepting.cancel()
        for task in list(self._handshakes):
            task.cancel()
        self.sockets[0].close()


# --- saying what went wrong ------------------------------------------------------------

#: verify codes of OpenSSL (X509_V_ERR_*) -> what to do about it
_VERIFY_ADVICE = {
    10: "it has expired: make a new one with `minray tls init`",
    9: "it is not valid yet: check the clocks of both machines",
    62: "it does not name this host: make it with `minray tls init DIR --hosts HOST`",
    64: "it does not name this address: make it with `minray tls init DIR --hosts ADDRESS`",
    2: "it was not signed by the CA in MINRAY_TLS_CA_CERT here: give every machine "
    "certificates from the same `minray tls init`",
    19: "it was not signed by the CA in MINRAY_TLS_CA_CERT here: give every machine "
    "certificates from the same `minray tls init`",
    20: "it was not signed by the CA in MINRAY_TLS_CA_CERT here: give every machine "
    "certificates from the same `minray tls init`",
    21: "it was not signed by the CA in MINRAY_TLS_CA_CERT here: give every machine "
    "certificates from the same `minray tls init`",
}

#: OpenSSL reasons that mean the peer does not speak TLS at all
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP")


def describe(exc: BaseException, peer: str, we_dialled: bool) -> str:
    """A message for a failed TLS handshake with ``peer``: which side refused, and why."""
    here, there = ("client", "server") if we_dialled else ("server", "client")
    code = getattr(exc, "verify_code", None)
    if code is not None:
        why = getattr(exc, "verify_message", "") or str(exc)
        advice = _VERIFY_ADVICE.get(code, "check the certificates")
        return (
            f"TLS handshake with {peer} refused by this side (the {here}): the {there}'s "
            f"certificate failed verification ({why}); {advice}."
        )
    reason = _reason(exc)
    if "ALERT" in reason.upper():
        return (
            f"TLS handshake with {peer} refused by the other side (the {there}): it did not "
            f"accept this process's certificate ({reason}). Check that MINRAY_TLS_SERVER_CERT "
            "here was signed by the CA the other side trusts, is still valid, and names this "
            "machine."
        )
    if any(marker in reason.upper() for marker in _NOT_TLS):
        return (
            f"TLS handshake with {peer} failed on this side (the {here}): the {there} does not "
            f"speak TLS ({reason}). Set MINRAY_USE_TLS=1 there too, or turn it off here."
        )
    return f"TLS handshake with {peer} failed on this side (the {here}): {reason}"


def plain_peer_hint(first_bytes: bytes) -> str:
    """For a plain-TCP listener: a hint when what arrived looks like a TLS handshake."""
    if first_bytes[:1] == b"\x16" and first_bytes[1:2] == b"\x03":
        return (
            " (the peer speaks TLS but this listener does not: set MINRAY_USE_TLS=1 here "
            "too, or turn it off there)"
        )
    return ""


def timeout_hint() -> str:
    """For a connection that got no answer: a listener using TLS never answers plain TCP."""
    if enabled():
        return ""
    return (
        " If the cluster uses TLS, set MINRAY_USE_TLS=1 and the MINRAY_TLS_* certificate "
        "variables here too."
    )


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = getattr(exc, "strerror", None) or str(exc)
    return f"{reason}: {text}" if reason and reason not in text else text


def is_tls_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the ssl module (without importing it when TLS is off)."""
    return type(exc).__module__ == "ssl" or (
        type(exc).__name__.startswith("SSL") and isinstance(exc, OSError)
    )


def peer_name(address: Any) -> str:
    """``(host, port)`` -> ``"host:port"`` for messages."""
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def env_lines(cert: str, key: str, ca: str) -> list[str]:
    """The ``export`` lines that turn TLS on with these files."""
    return [
        "export MINRAY_USE_TLS=1",
        f"export MINRAY_TLS_SERVER_CERT={os.path.abspath(cert)}",
        f"export MINRAY_TLS_SERVER_KEY={os.path.abspath(key)}",
        f"export MINRAY_TLS_CA_CERT={os.path.abspath(ca)}",
    ]
