"""The zygote keeps what it shares with workers shared: its objects frozen before the
first fork, the small-object allocator's free blocks filled, and the type attribute cache
emptied (node/zygote.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from minray.node.zygote import _free_blocks

REPORT = """\
Small block threshold = 512, in 32 size classes.

class   size   num pools   blocks in use  avail blocks
-----   ----   ---------   -------------  ------------
    0     16           1             735           286
    1     32          10            4650           450
   31    512           7             203            14

# arenas allocated total           =                   14
14 arenas * 1048576 bytes/arena    =           14,680,064
"""


def test_the_allocator_report_gives_each_size_class_and_its_free_blocks() -> None:
    assert _free_blocks(REPORT) == [(16, 286), (32, 450), (512, 14)]


def test_a_report_without_size_classes_fills_nothing() -> None:
    assert _free_blocks("Small block threshold = 512\nno pools here\n") == []


def test_filling_takes_free_blocks_and_gives_stderr_back() -> None:
    """In a fresh interpreter (it keeps what it allocates): fewer free blocks afterwards,
    and fd 2 is the same file again."""
    script = textwrap.dedent(
        """
        import os, sys, tempfile
        from minray.node import zygote
        def free():
            with tempfile.TemporaryFile() as f:
                saved = os.dup(2); os.dup2(f.fileno(), 2)
                try:
                    sys._debugmallocstats()
                finally:
                    os.dup2(saved, 2); os.close(saved)
                f.seek(0)
                return sum(n for _, n in zygote._free_blocks(f.read().decode()))
        before, inode = free(), os.fstat(2).st_ino
        zygote._fill_free_blocks()
        print(before, free(), len(zygote._FILLERS), os.fstat(2).st_ino == inode)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after, fillers, same_stderr = out.stdout.split()
    assert int(fillers) > 0
    assert int(after) < int(before)
    assert same_stderr == "True"


def test_the_type_attribute_cache_is_emptied_with_what_this_python_offers(monkeypatch) -> None:
    """3.13 renamed sys._clear_type_cache to sys._clear_internal_caches; either is called,
    and a Python with neither forks as before."""
    from minray.node import zygote

    calls = []
    monkeypatch.delattr(sys, "_clear_internal_caches", raising=False)
    monkeypatch.setattr(sys, "_clear_type_cache", lambda: calls.append("type"), raising=False)
    zygote._clear_type_cache()
    internal = lambda: calls.append("internal")  # noqa: E731
    monkeypatch.setattr(sys, "_clear_internal_caches", internal, raising=False)
    zygote._clear_type_cache()
    monkeypatch.delattr(sys, "_clear_internal_caches")
    monkeypatch.delattr(sys, "_clear_type_cache")
    zygote._clear_type_cache()
    assert calls == ["type", "internal"]
