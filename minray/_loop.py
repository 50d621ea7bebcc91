"""Event loop choice: uvloop everywhere it is installed, asyncio's loop otherwise."""

from __future__ import annotations

import asyncio

from .zero_pages import release_zero_pages

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a declared dependency
    uvloop = None


def new_event_loop() -> asyncio.AbstractEventLoop:
    if uvloop is not None:
        loop = uvloop.new_event_loop()
        # a uvloop loop is 250 KiB, zero-filled when made: mostly a receive buffer whose
        # pages are only written as data comes (zero_pages.py); give back what it has not used
        release_zero_pages(loop)
        return loop
    return asyncio.new_event_loop()


def run(coro):
    """Run ``coro`` to completion on a fresh uvloop loop."""
    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
