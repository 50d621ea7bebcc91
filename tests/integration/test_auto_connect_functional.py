"""RAY_ENABLE_AUTO_CONNECT=0 / MINRAY_ENABLE_AUTO_CONNECT=0: no automatic init() on first use."""

from __future__ import annotations

import pytest

import minray
from minray.exceptions import RaySystemError
from tests.conftest import assert_cleaned_up, runtime_processes


@minray.remote
def one():
    return 1


@minray.remote
class Counter:
    pass


def a_ref() -> minray.ObjectRef:
    return minray.ObjectRef(bytes(28))


CALLS = {
    "put": lambda: minray.put(1),
    "get": lambda: minray.get(a_ref()),
    "wait": lambda: minray.wait([a_ref()]),
    "task": lambda: one.remote(),
    "actor": lambda: Counter.remote(),
    "get_actor": lambda: minray.get_actor("nobody"),
    "runtime_context": lambda: minray.get_runtime_context().get_job_id(),
}


@pytest.mark.parametrize("variable", ["RAY_ENABLE_AUTO_CONNECT", "MINRAY_ENABLE_AUTO_CONNECT"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_auto_connect_off_raises_rays_error(monkeypatch, variable, call):
    monkeypatch.delenv("RAY_ENABLE_AUTO_CONNECT", raising=False)
    monkeypatch.delenv("MINRAY_ENABLE_AUTO_CONNECT", raising=False)
    monkeypatch.setenv(variable, "0")  # after import: read when the call is made
    assert not minray.is_initialized()
    with pytest.raises(RaySystemError, match=rf"has not been started yet.*init\(\).*{variable}=0"):
        CALLS[call]()
    assert not minray.is_initialized()


def test_minray_variable_wins_over_rays(monkeypatch):
    monkeypatch.setenv("RAY_ENABLE_AUTO_CONNECT", "0")
    monkeypatch.setenv("MINRAY_ENABLE_AUTO_CONNECT", "1")
    monkeypatch.setenv("MINRAY_ADDRESS", "local")
    assert not minray.is_initialized()
    try:
        assert minray.get(minray.put(5)) == 5  # started on first use
        assert minray.is_initialized()
    finally:
        session_dir = minray.api._state.session_dir
        started = runtime_processes()
        minray.shutdown()
    assert_cleaned_up(started, session_dir)
