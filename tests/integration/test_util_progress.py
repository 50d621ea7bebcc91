"""minray.util.progress: tqdm bars while waiting on refs."""

from __future__ import annotations

import io

import pytest

import minray
from minray.exceptions import RayTaskError
from minray.util import progress


@minray.remote
def square(x):
    return x * x


@minray.remote
def fail():
    raise KeyError("no such thing")


@minray.remote
class Gate:
    def __init__(self):
        import asyncio

        self.event = asyncio.Event()

    async def open(self):
        self.event.set()

    async def wait(self):
        await self.event.wait()
        return "late"


def test_get_returns_values_in_input_order_and_fills_the_bar(cluster):
    out = io.StringIO()  # not a tty
    refs = [square.remote(i) for i in range(10)]
    assert progress.get(refs, desc="squares", file=out) == [i * i for i in range(10)]
    bar = out.getvalue()
    assert "squares" in bar and "10/10" in bar


def test_get_accepts_one_ref_and_repeated_refs(cluster):
    ref = square.remote(3)
    assert progress.get(ref, disable=True) == 9
    assert progress.get([ref, ref, square.remote(2)], disable=True) == [9, 9, 4]
    assert progress.get([], disable=True) == []


def test_as_completed_yields_values_as_they_finish(cluster):
    out = io.StringIO()
    gate = Gate.remote()
    slow = gate.wait.remote()
    done = progress.as_completed([slow, square.remote(4)], desc="mixed", file=out)
    assert next(done) == 16  # the gate is still closed
    minray.get(gate.open.remote())
    assert list(done) == ["late"]
    assert "2/2" in out.getvalue()


def test_as_completed_with_an_explicit_total_and_duplicates(cluster):
    out = io.StringIO()
    ref = square.remote(5)
    assert list(progress.as_completed([ref, ref], total=4, file=out)) == [25, 25]
    assert "2/4" in out.getvalue()


def test_errors_are_raised_as_get_raises_them(cluster):
    with pytest.raises(KeyError, match="no such thing") as info:
        progress.get([square.remote(1), fail.remote()], disable=True)
    assert isinstance(info.value, RayTaskError)
    with pytest.raises(KeyError):
        list(progress.as_completed([fail.remote()], disable=True))


def test_the_default_bar_goes_to_stderr(cluster, capsys):
    assert progress.get([square.remote(2)]) == [4]
    captured = capsys.readouterr()
    assert captured.out == "" and "1/1" in captured.err
