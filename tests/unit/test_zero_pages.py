"""Giving back the all-zero pages of a fresh object (zero_pages.py)."""

from __future__ import annotations

import asyncio
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray import _loop
from minray.zero_pages import PAGE, release_zero_pages, zero_page_runs


def _memory(pages: list[bool], lead: int, tail: int) -> bytes:
    """``lead`` bytes, then one page per entry (zeros where True), then ``tail`` bytes."""
    body = b"".join(bytes(PAGE) if zero else b"\x01" * PAGE for zero in pages)
    return b"\x02" * lead + body + b"\x03" * tail


@given(
    pages=st.lists(st.booleans(), max_size=12),
    lead=st.integers(0, PAGE - 1),
    tail=st.integers(0, PAGE - 1),
)
def test_runs_are_the_whole_zero_pages_and_only_those(pages, lead, tail) -> None:
    base = 0x10_0000 - lead  # the first whole page starts after the lead bytes
    runs = zero_page_runs(memoryview(_memory(pages, lead, tail)), base)
    released = {address for start, length in runs for address in range(start, start + length, PAGE)}
    expected = {0x10_0000 + i * PAGE for i, zero in enumerate(pages) if zero}
    assert released == expected
    for (start, length), following in zip(runs, runs[1:]):
        assert start + length < following[0]  # neighbouring zero pages make one run
    assert all(start % PAGE == 0 and length % PAGE == 0 and length for start, length in runs)


def test_a_page_the_memory_covers_only_in_part_is_never_given_back() -> None:
    """Three pages of zeros starting one byte into a page cover two whole pages."""
    base = 0x10_0000 + 1
    assert zero_page_runs(memoryview(bytes(3 * PAGE)), base) == [(base - 1 + PAGE, 2 * PAGE)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise is Linux-only here")
def test_a_new_uvloop_loop_gives_back_its_unused_buffer_and_still_runs() -> None:
    uvloop = pytest.importorskip("uvloop")
    loop = uvloop.new_event_loop()
    try:
        assert release_zero_pages(loop) > 200 * 1024  # of its 250 KiB, nearly all zeros
        assert release_zero_pages(loop) > 200 * 1024  # (still zeros: nothing wrote them)

        async def echo() -> bytes:
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            writer.write(b"x" * 100_000)
            data = await reader.readexactly(100_000)
            writer.close()
            return data

        async def handle(reader, writer) -> None:
            writer.write(await reader.readexactly(100_000))
            await writer.drain()
            writer.close()

        server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
        assert loop.run_until_complete(echo()) == b"x" * 100_000  # through the receive buffer
        server.close()
        loop.run_until_complete(server.wait_closed())
    finally:
        loop.close()


def test_small_objects_are_left_alone() -> None:
    assert release_zero_pages(object()) == 0
    assert release_zero_pages(bytes(10 * PAGE)) == 0  # (its type's basic size is small)


def test_minray_loops_are_made_with_their_zero_pages_given_back(monkeypatch) -> None:
    given_back = []
    monkeypatch.setattr(_loop, "release_zero_pages", lambda loop: given_back.append(loop) or 0)
    loop = _loop.new_event_loop()
    loop.close()
    assert given_back == ([loop] if _loop.uvloop is not None else [])
