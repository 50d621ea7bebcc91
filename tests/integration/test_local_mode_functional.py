"""Debug mode: init(local_mode=True) runs tasks and actor calls in the driver process,
one at a time, with the same API and errors, so pdb and print debugging work."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minray
from minray.exceptions import ActorDiedError, RayTaskError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

calls: list = []


@pytest.fixture
def local():
    minray.init(local_mode=True, num_cpus=1)
    calls.clear()
    yield
    minray.shutdown()


@minray.remote
def double(x):
    calls.append(x)  # the function itself runs: it sees this module's globals
    return os.getpid(), x * 2


@minray.remote
def broken():
    return 1 + "one"


@minray.remote
class Counter:
    def __init__(self, start: int = 0):
        self.n = start

    def add(self, k: int = 1) -> int:
        self.n += k
        return self.n


def test_a_task_runs_in_the_driver_at_remote_time(local):
    ref = double.remote(21)
    assert calls == [21]  # ran before anyone asked for its result
    assert minray.get(ref) == (os.getpid(), 42)
    big = minray.get(double.remote(np.ones(200_000)))[1]
    assert big.sum() == 400_000
    nested = minray.remote(lambda: minray.get(double.remote(5))[1])
    assert minray.get(nested.remote()) == 10


def test_errors_are_the_same_as_with_workers(local):
    with pytest.raises(TypeError) as caught:
        minray.get(broken.remote())
    assert isinstance(caught.value, RayTaskError)
    assert "broken()" in str(caught.value) and "unsupported operand" in str(caught.value)
    with pytest.raises(TypeError, match="At least one of the input arguments"):
        minray.get(double.remote(broken.remote()))


def test_retry_exceptions_runs_the_task_again(local, tmp_path):
    marker = tmp_path / "failed-once"

    @minray.remote(max_retries=2, retry_exceptions=True)
    def flaky() -> str:
        if not marker.exists():
            marker.touch()
            raise ValueError("first time")
        return "second time"

    assert minray.get(flaky.remote()) == "second time"


def test_actors_keep_state_and_are_found_by_name(local):
    counter = Counter.options(name="tally").remote(10)
    assert minray.get([counter.add.remote(), counter.add.remote(5)]) == [11, 16]
    assert minray.get(minray.get_actor("tally").add.remote()) == 17

    @minray.remote
    class Async:
        async def later(self, x: int) -> int:
            await asyncio.sleep(0.01)
            return x + 1

    assert minray.get(Async.remote().later.remote(1)) == 2


def test_a_dead_actor_says_why(local):
    @minray.remote
    class BadInit:
        def __init__(self):
            raise RuntimeError("no good")

        def ping(self) -> str:
            return "pong"

    with pytest.raises(ActorDiedError, match="no good"):
        minray.get(BadInit.remote().ping.remote())
    counter = Counter.remote()
    counter.__ray_terminate__.remote()
    with pytest.raises(ActorDiedError, match="__ray_terminate__"):
        minray.get(counter.add.remote())


def test_generators_are_refused_with_what_to_do(local):
    @minray.remote
    def numbers():
        yield 1

    with pytest.raises(ValueError, match="local_mode"):
        numbers.remote()


def test_local_mode_cannot_connect_to_a_cluster():
    with pytest.raises(ValueError, match="cannot connect"):
        minray.init(address="127.0.0.1:6380", local_mode=True)


def test_pdb_stops_inside_a_task(tmp_path):
    script = tmp_path / "debug_me.py"
    script.write_text(
        textwrap.dedent(
            """
            import minray
            minray.init(local_mode=True, num_cpus=1)

            @minray.remote
            def step(x):
                y = x * 7
                breakpoint()
                return y

            print("result", minray.get(step.remote(6)))
            minray.shutdown()
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONBREAKPOINT"}
    out = subprocess.run(
        [sys.executable, str(script)], input="p y\nc\n", capture_output=True, text=True,
        timeout=60, cwd=ROOT, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "(Pdb) 42" in out.stdout and "result 42" in out.stdout
