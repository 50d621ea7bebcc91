"""runtime_env packages over HTTP, at Ray's paths, for the job clients' uploads.

``GET /api/packages/gcs/{name}`` answers 200 when the head keeps the package,
404 when not; ``PUT /api/packages/gcs/{name}`` keeps the request's body as the
package (head/packages.py checks the name and the store's budget). So Ray's
``JobSubmissionClient`` and ``minray.job_submission`` upload a local
``working_dir`` or ``py_modules`` once, then submit the job with its ``gcs://``
uri. Uploads may be larger than the dashboard's other bodies, up to
``runtime_env_max_bytes`` (dashboard_auth.py lets this path through and the
handler counts the bytes as they come).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import CONFIG
from .dashboard_auth import error_response

if TYPE_CHECKING:
    from aiohttp import web

    from .service import HeadService

PREFIX = "/api/packages/"
_CHUNK = 1024 * 1024


def package_routes(head: HeadService) -> list:
    """The package routes' ``(method, path, handler)``."""
    from aiohttp import web

    def checked(request: web.Request) -> str:
        if request.match_info["protocol"] != "gcs":
            raise ValueError("only gcs:// packages are kept by the head (/api/packages/gcs/...)")
        if head.packages is None:
            raise ValueError("this head keeps no runtime_env packages")
        return request.match_info["name"]

    async def exists(request: web.Request) -> web.Response:
        try:
            name = checked(request)
            found = head.packages.has(name)
        except ValueError as e:
            return error_response(400, str(e))
        if not found:
            return error_response(404, f"Package gcs://{name} does not exist")
        return web.json_response({"package": f"gcs://{name}"})

    async def upload(request: web.Request) -> web.Response:
        limit = CONFIG.runtime_env_max_bytes
        try:
            name = checked(request)
        except ValueError as e:
            return error_response(400, str(e))
        data = bytearray()
        while chunk := await request.content.read(_CHUNK):
            data += chunk
            if len(data) > limit:
                return error_response(
                    413,
                    f"the package is over {limit:,} bytes (runtime_env_max_bytes, environment "
                    "variable MINRAY_RUNTIME_ENV_MAX_BYTES); leave out data with "
                    "runtime_env['excludes']",
                )
        if not data:
            return error_response(400, "the package is empty: send the zip file as the body")
        try:
            head.packages.put(name, bytes(data))
        except ValueError as e:
            return error_response(400, str(e))
        return web.json_response({"package": f"gcs://{name}"})

    return [
        ("GET", PREFIX + "{protocol}/{name}", exists),
        ("PUT", PREFIX + "{protocol}/{name}", upload),
    ]
