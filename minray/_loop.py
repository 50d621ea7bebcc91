"""Event loop choice: uvloop everywhere it is installed, asyncio's loop otherwise."""

from __future__ import annotations

import asyncio

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a declared dependency
    uvloop = None


def new_event_loop() -> asyncio.AbstractEventLoop:
    if uvloop is not None:
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(coro):
    """Run ``coro`` to completion on a fresh uvloop loop."""
    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
