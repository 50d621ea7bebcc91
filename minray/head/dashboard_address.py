"""Where an embedded cluster's dashboard is, and what to tell its user (no aiohttp here).

Kept apart from head/dashboard.py, which imports aiohttp and every route module, so
that ``import minray`` and the CLI's quick commands do not pay for the web server.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("minray.head")

DEFAULT_PORT = 8265


def dashboard_settings(include: bool | None, host: str, port: int | None) -> dict:
    """The node settings for ``init(include_dashboard=..., dashboard_port=...)``: an embedded
    cluster serves a dashboard only when asked (it would slow start-up for nothing)."""
    if include is False or (include is None and port is None):
        return {}
    return {"dashboard_host": host, "dashboard_port": DEFAULT_PORT if port is None else port}


def dashboard_url(session_dir: str) -> str | None:
    """``HOST:PORT`` of the dashboard a session's node serves, as Ray's webui_url."""
    try:
        with open(os.path.join(session_dir, "dashboard_url")) as f:
            return f.read().strip()
    except OSError:
        return None


def announce_dashboard(session_dir: str, settings: dict) -> None:
    """Tell the user of an embedded cluster where its dashboard is and how to log in, or
    that it could not listen where asked."""
    if not settings:
        return
    where = dashboard_url(session_dir)
    if where is None:
        logger.warning(
            "the dashboard could not listen on %s:%d (is the port in use?); the cluster runs "
            "without it. Choose another port: init(dashboard_port=...) or --dashboard-port.",
            settings["dashboard_host"], settings["dashboard_port"],
        )  # fmt: skip
        return
    logger.info(
        "Dashboard at http://%s (it asks for this cluster's token: `minray dashboard` "
        "prints it).", where,
    )  # fmt: skip


__all__ = ["DEFAULT_PORT", "announce_dashboard", "dashboard_settings", "dashboard_url"]
