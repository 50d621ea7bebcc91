"""Who may use the dashboard: the cluster token, the ``Host`` and ``Origin`` checks, and
the body-size cap, as one aiohttp middleware that every route of the app goes through.

The dashboard shows task names, errors and command lines, and later routes (job
submission, issue #14) can run code, so it takes the lessons of CVE-2023-48022 (no
auth on an API that runs code), CVE-2023-6019 (a user string reaching a shell) and
CVE-2025-62593 (a browser page on another site driving the local API):

* every request but the login page needs the cluster token, as ``Authorization:
  Bearer <hex token>`` or as the cookie the login page sets (HttpOnly,
  SameSite=Strict; its value is derived from the token, not the token itself):
  none is 401 (a browser asking for the page is sent to ``/login``), a wrong one 403;
* ``Host`` must name this dashboard (localhost, 127.0.0.1, [::1], the host it was
  told to serve, with any port): anything else is 403 (DNS rebinding);
* a request that may change something (POST, PUT, PATCH, DELETE) and a WebSocket
  upgrade whose ``Origin`` is not the dashboard's own gets 403 on any path, before
  routing (cross-site request forgery, cross-site WebSocket hijacking);
* a body over the cap is 413 before anything reads it.

The checks are pure functions (unit-tested); :func:`new_app` builds the app with the
middleware, and :func:`add_routes` is how a module adds its routes to it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

COOKIE = "minray_dashboard"
LOGIN_PATH = "/login"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


# --- pure checks ----------------------------------------------------------------------------


def split_host(value: str | None) -> tuple[str, int | None] | None:
    """``(name, port)`` of a ``Host`` header value (name lower-cased, IPv6 without
    brackets, port None when absent); None when it is not a host name, an IP address
    or ``[IPv6]``, optionally followed by ``:port``."""
    if not value or value != value.strip() or len(value) > 255:
        return None
    import ipaddress  # (here: minray's import stays fast when no dashboard is served)

    port: int | None = None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
        if rest:
            if not rest.startswith(":"):
                return None
            port = _port(rest[1:])
            if port is None:
                return None
        return name.lower(), port
    name, colon, rest = value.partition(":")
    if colon:
        port = _port(rest)
        if port is None:
            return None
    name = name.lower().rstrip(".")
    if not name or not all(part and _label(part) for part in name.split(".")):
        return None
    return name, port


def _port(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 5:
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def _label(part: str) -> bool:
    return (
        len(part) <= 63
        and part.isascii()
        and all(c.isalnum() or c in "-_" for c in part)
        and not part.startswith("-")
    )


def served_names(configured_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a ``Host`` header may carry: loopback's, the host the dashboard was
    told to serve, and ``extra`` (when it binds every address: this machine's
    addresses and host name)."""
    names = set(LOOPBACK_NAMES)
    for name in (configured_host, *extra):
        parsed = split_host(f"[{name}]" if ":" in name else name)
        if parsed is not None:
            names.add(parsed[0])
    return frozenset(names)


def host_allowed(host: str | None, names: frozenset[str]) -> bool:
    """Whether the ``Host`` header names this dashboard (any port: a forwarded port
    keeps the name)."""
    parsed = split_host(host)
    return parsed is not None and parsed[0] in names


def origin_allowed(origin: str | None, host: str | None, names: frozenset[str]) -> bool:
    """Whether a request's ``Origin`` is the dashboard's own: no ``Origin`` (not a
    browser: the token decides), or ``http(s)://`` the request's own ``Host`` (same
    name, same port) with a name the dashboard serves. ``null`` and any other site: no."""
    if origin is None:
        return True
    scheme, sep, rest = origin.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS or "/" in rest:
        return False
    theirs, ours = split_host(rest), split_host(host)
    if theirs is None or ours is None or theirs[0] not in names:
        return False
    default = _DEFAULT_PORTS[scheme]
    return theirs[0] == ours[0] and (theirs[1] or default) == (ours[1] or default)


def cookie_value(token: bytes) -> str:
    """What the login cookie holds: derived from the token, so that the cookie cannot be
    used as the cluster token elsewhere."""
    return hmac.new(token, b"minray dashboard cookie", "sha256").hexdigest()


def check_token(authorization: str | None, cookie: str | None, token: bytes) -> int:
    """200 when the request carries the token (``Bearer`` hex, or the login cookie), 401
    when it carries none, 403 when what it carries is wrong."""
    if authorization is not None:
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return 401
        return 200 if _same(given.strip().lower(), token.hex()) else 403
    if cookie is not None:
        return 200 if _same(cookie, cookie_value(token)) else 403
    return 401


def _same(given: str, expected: str) -> bool:
    try:
        return hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))
    except UnicodeEncodeError:
        return False


def body_limit(path: str, default: int, large: tuple[tuple[str, int, str], ...]) -> tuple[int, str]:
    """The most bytes a request to ``path`` may send, and the setting that says so:
    ``default``, or that of the first ``(prefix, limit, setting)`` of ``large`` that
    ``path`` starts with."""
    for prefix, limit, setting in large:
        if path.startswith(prefix):
            return limit, setting
    return default, "MINRAY_DASHBOARD_MAX_BODY_BYTES"


def wants_page(method: str, path: str, accept: str | None) -> bool:
    """A browser opening a page, not the API (sent to the login page rather than a 401)."""
    api = path.startswith("/api") or path == "/metrics"
    return method == "GET" and not api and "text/html" in (accept or "")


# --- the app --------------------------------------------------------------------------------


def new_app(
    token: bytes,
    host: str,
    max_body_bytes: int,
    extra_names: Iterable[str] = (),
    large_bodies: Iterable[tuple[str, int, str]] = (),
) -> web.Application:
    """The dashboard's app: every route added to it (:func:`add_routes`) goes through the
    checks above; ``/login`` is its only route that takes no token. ``large_bodies``:
    ``(path prefix, limit, setting)`` of routes that take bodies over ``max_body_bytes``
    (their handlers read the body as a stream, counting)."""
    large = tuple(large_bodies)
    from aiohttp import web

    from .dashboard_page import login_page

    names = served_names(host, extra_names)
    expected_cookie = cookie_value(token)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = request.headers
        if not host_allowed(headers.get("Host"), names):
            return error_response(
                403,
                "the Host header does not name this dashboard (open it "
                "as http://localhost:PORT or by the host it was started with)",
            )
        upgrade = "websocket" in headers.get("Upgrade", "").lower()
        if (request.method in UNSAFE_METHODS or upgrade) and not origin_allowed(
            headers.get("Origin"), headers.get("Host"), names
        ):
            return error_response(403, "requests from another site are refused (Origin)")
        limit, setting = body_limit(request.path, max_body_bytes, large)
        if (request.content_length or 0) > limit:
            return error_response(
                413, f"the request body is over {limit} bytes, the dashboard's limit ({setting})"
            )
        if request.path != LOGIN_PATH:
            status = check_token(headers.get("Authorization"), request.cookies.get(COOKIE), token)
            if status == 401 and wants_page(request.method, request.path, headers.get("Accept")):
                raise web.HTTPFound(LOGIN_PATH)
            if status != 200:
                return error_response(
                    status,
                    "this dashboard needs the cluster token: "
                    "'Authorization: Bearer <token>', or log in at /login"
                    if status == 401
                    else "wrong cluster token",
                )
        try:
            response = await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return error_response(413, f"the request body is over {max_body_bytes} bytes")
        except web.HTTPNotFound:
            return error_response(
                404, f"no such page or API: {request.path} (see /api for the list)"
            )
        except web.HTTPMethodNotAllowed as e:
            return error_response(
                405,
                f"{request.method} is not allowed on {request.path} "
                f"(allowed: {', '.join(sorted(e.allowed_methods))})",
            )
        _harden(response)
        return response

    async def login_form(request: web.Request) -> web.Response:
        return _harden(web.Response(text=login_page(""), content_type="text/html"))

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or check_token(f"Bearer {given}", None, token) != 200:
            page = login_page("That is not this cluster's token.")
            return _harden(web.Response(status=403, text=page, content_type="text/html"))
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, expected_cookie, httponly=True, samesite="Strict", path="/")
        raise response

    app = web.Application(middlewares=[guard], client_max_size=max_body_bytes)
    app.router.add_get(LOGIN_PATH, login_form)
    app.router.add_post(LOGIN_PATH, login)
    return app


def add_routes(app: web.Application, routes: Iterable[tuple[str, str, Handler]]) -> None:
    """Add ``(method, path, handler)`` routes to the dashboard's app (made by
    :func:`new_app`, so they need the token like every other). Modules that serve more
    of the dashboard (the job API of issue #14) add theirs through this."""
    for method, path, handler in routes:
        if not path.startswith("/") or path == LOGIN_PATH:
            raise ValueError(f"a dashboard route must start with '/' and not be /login: {path!r}")
        app.router.add_route(method, path, handler)


def error_response(status: int, message: str) -> web.Response:
    """The dashboard's error answer: ``{"error": message, "status": status}``."""
    from aiohttp import web

    body = json.dumps({"error": message, "status": status})
    return _harden(web.Response(status=status, text=body, content_type="application/json"))


def _harden(response: web.StreamResponse) -> web.StreamResponse:
    """Headers every answer carries: never framed by another site, never sniffed, never cached,
    its address never sent to another site."""
    if not response.prepared:
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        # (not "no-referrer": under it a browser sends "Origin: null" with the page's own
        # form posts and fetches, which the Origin check must refuse)
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
