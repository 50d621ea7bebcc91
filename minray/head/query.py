"""Asking the head one question from synchronous code (drivers, ``cluster_utils``, the CLI).

Each call opens an authenticated TCP connection on a short-lived event loop of
its own, in a helper thread, so it works whatever loop the caller runs. Errors
say what was tried and what to do: an unreachable address, a refused token.
"""

from __future__ import annotations

import asyncio
import threading

from ..config import CONFIG
from ..protocol import tls
from ..protocol.connection import Connection, ConnectionLost, connect
from ..protocol.messages import Message


class _Asker:
    """Handler of the short connection: the head sends nothing unasked on it."""


TOKEN_HELP = (
    "Give the head's token with --token, the MINRAY_AUTH_TOKEN environment variable, "
    "or the file ~/.minray/auth_token (the head prints how)."
)


class HeadUnreachable(ConnectionError):
    """The head could not be reached, refused the token, or went away."""


async def connect_to_head(address: str, handler, token: bytes, timeout: float) -> Connection:
    """An authenticated connection to the head at ``tcp:HOST:PORT``, or HeadUnreachable
    saying what went wrong and what to check."""
    try:
        return await asyncio.wait_for(
            connect(address, handler, token, CONFIG.max_frame_bytes), timeout
        )
    except tls.TLSHandshakeError as e:  # says which side refused and why
        raise HeadUnreachable(f"could not join the minray head at {address}: {e}") from e
    except ConnectionLost as e:  # reached, but the handshake failed
        raise HeadUnreachable(
            f"the minray head at {address} closed the connection during the token "
            f"handshake ({e}): the token given is not the cluster's. {TOKEN_HELP}"
        ) from e
    except (OSError, asyncio.TimeoutError) as e:
        raise HeadUnreachable(
            f"could not reach a minray head at {address} within {timeout:g} s "
            f"({type(e).__name__}: {e}). Is `minray start --head` running there, is the "
            "address right, and is no firewall blocking the port?" + tls.timeout_hint()
        ) from e


def parse_host_port(address: str) -> tuple[str, int]:
    """``"HOST:PORT"`` -> (host, port), or ValueError naming the accepted forms."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"address {address!r} is not a minray head address. Accepted forms: "
            "'HOST:PORT' (e.g. '127.0.0.1:6380', as `minray start --head` prints), "
            "'auto' (the cluster started on this machine), or None/'local' (start a "
            "new local cluster)."
        )
    return host.strip("[]"), int(port)


def query_head(address: str, token: bytes, msg: Message, timeout: float | None = None):
    """Send ``msg`` to the head at ``HOST:PORT`` and return its reply.

    Raises ConnectionError naming the address when it cannot be reached in time or
    refuses the token; RemoteError when the head answers with an error.
    """
    host, port = parse_host_port(address)
    timeout = CONFIG.head_connect_timeout_s if timeout is None else timeout
    result: dict = {}

    async def ask():
        conn = await connect_to_head(f"tcp:{host}:{port}", _Asker(), token, timeout)
        try:
            return await asyncio.wait_for(conn.request(msg), timeout)
        except asyncio.TimeoutError as e:
            raise ConnectionError(f"the minray head at {address} did not answer in time") from e
        finally:
            conn.close()
            await conn.gone()  # (TLS: its goodbye, before asyncio.run closes the loop)

    def run():
        try:
            result["reply"] = asyncio.run(ask())
        except BaseException as e:  # noqa: B036 - handed to the calling thread
            result["error"] = e

    thread = threading.Thread(target=run, name="minray-head-query", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["reply"]
