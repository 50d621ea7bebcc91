"""Tasks: results, argument passing, nesting, num_returns, options."""

from __future__ import annotations

import time

import pytest

import minray
from tests.conftest import _start


@minray.remote
def double(x):
    return 2 * x


@minray.remote
def describe(*args, **kwargs):
    return [type(a).__name__ for a in args], {k: type(v).__name__ for k, v in kwargs.items()}


def test_a_task_returns_its_value_through_get(cluster):
    assert minray.get(double.remote(21)) == 42


def test_many_tasks_return_values_in_submission_order(cluster):
    assert minray.get([double.remote(i) for i in range(50)]) == [2 * i for i in range(50)]


def test_a_chain_of_dependent_tasks_receives_values_not_refs(cluster):
    ref = double.remote(1)
    for _ in range(5):
        ref = double.remote(ref)
    assert minray.get(ref) == 64


def test_top_level_refs_arrive_as_values_and_nested_refs_stay_refs(cluster):
    value = minray.put(5)
    types, kw = minray.get(describe.remote(value, [value], key=value, nested={"a": value}))
    assert types == ["int", "list"]
    assert kw == {"key": "int", "nested": "dict"}

    @minray.remote
    def read_nested(items):
        return minray.get(items[0]) + 1

    assert minray.get(read_nested.remote([value])) == 6


def test_a_ref_returned_from_a_task_comes_back_as_a_ref(cluster):
    @minray.remote
    def make_ref():
        return [minray.put("inner")]

    (inner,) = minray.get(make_ref.remote())
    assert isinstance(inner, minray.ObjectRef)
    assert minray.get(inner) == "inner"


def test_keyword_only_arguments_work(cluster):
    @minray.remote
    def kwonly(a, *, b=1):
        return a + b

    assert minray.get(kwonly.remote(1, b=10)) == 11


def test_num_returns_gives_one_ref_per_value(cluster):
    @minray.remote(num_returns=3)
    def three():
        return 1, 2, 3

    refs = three.remote()
    assert len(refs) == 3
    assert minray.get(refs) == [1, 2, 3]


def test_num_returns_zero_returns_none_and_still_runs(cluster, tmp_path):
    marker = tmp_path / "ran"

    @minray.remote(num_returns=0)
    def side_effect(path):
        open(path, "w").close()

    assert side_effect.remote(str(marker)) is None
    deadline = time.time() + 10
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists()


def test_a_wrong_number_of_returned_values_fails_every_ref(cluster):
    @minray.remote(num_returns=2)
    def three():
        return 1, 2, 3

    for ref in three.remote():
        with pytest.raises(ValueError, match="num_returns=2"):
            minray.get(ref)


def test_options_override_num_returns_and_name(cluster):
    refs = double.options(num_returns=1, name="renamed").remote(4)
    assert minray.get(refs) == 8


def test_tasks_can_submit_tasks_and_wait_inside(cluster):
    @minray.remote
    def parent():
        refs = [double.remote(i) for i in range(4)]
        ready, _ = minray.wait(refs, num_returns=4)
        return sum(minray.get(ready))

    assert minray.get(parent.remote()) == 12


@pytest.mark.timeout(180)
def test_recursive_fib_completes_on_one_cpu_because_blocked_workers_lend_it(cluster_1cpu):
    @minray.remote
    def fib(n):
        if n < 2:
            return n
        return sum(minray.get([fib.remote(n - 1), fib.remote(n - 2)]))

    assert minray.get(fib.remote(12)) == 144


def test_arguments_are_snapshotted_at_call_time(cluster):
    @minray.remote
    def length(items):
        return len(items)

    items = [1, 2, 3]
    ref = length.remote(items)
    items.append(4)
    assert minray.get(ref) == 3


def test_a_large_argument_goes_through_shared_memory(cluster):
    np = pytest.importorskip("numpy")

    @minray.remote
    def total(array):
        return float(array.sum()), array.flags.writeable

    array = np.ones(1_000_000)
    assert minray.get(total.remote(array)) == (1_000_000.0, False)


def test_runtime_env_vars_reach_the_task(cluster):
    @minray.remote(runtime_env={"env_vars": {"MINRAY_TEST_VAR": "yes"}})
    def read_env():
        import os

        return os.environ.get("MINRAY_TEST_VAR")

    assert minray.get(read_env.remote()) == "yes"


def test_runtime_context_inside_a_task_names_the_task(cluster):
    @minray.remote
    def context():
        ctx = minray.get_runtime_context()
        return ctx.get_task_id(), ctx.get_job_id(), ctx.get_node_id()

    task_id, job_id, node_id = minray.get(context.remote())
    assert len(task_id) == 48
    assert job_id == "01000000"
    assert len(node_id) == 56


def test_thousands_of_back_to_back_tasks_never_stall(cluster):
    @minray.remote
    def one():
        return 1

    for _ in range(3000):  # each get empties the queue while lease requests are in flight
        assert minray.get(one.remote(), timeout=10) == 1


def test_workers_import_the_drivers_own_modules_from_its_script_directory(tmp_path):
    import subprocess
    import sys

    (tmp_path / "helpers_mod.py").write_text("def triple(x):\n    return 3 * x\n")
    (tmp_path / "main.py").write_text(
        "import minray\nfrom helpers_mod import triple\nminray.init(num_cpus=1)\n"
        "print('result', minray.get(minray.remote(triple).remote(5)))\nminray.shutdown()\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, str(tmp_path / "main.py")],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "result 15" in result.stdout


@pytest.mark.parametrize("cluster", [{"num_cpus": 2}], indirect=True)
def test_resources_are_free_right_after_the_tasks_that_held_them_finish(cluster):
    @minray.remote
    def one():
        return 1

    for _ in range(3):
        assert sum(minray.get([one.remote() for _ in range(10)])) == 10
        # the leases the driver keeps a moment for reuse are not counted as in use
        assert minray.available_resources()["CPU"] == 2.0


@minray.remote
def read_session_var():
    import os

    return os.environ.get("MINRAY_SESSION_VAR")


@minray.remote
def call_read_session_var():
    return minray.get(read_session_var.remote())


def test_a_function_called_in_one_session_sends_what_the_next_session_set():
    """.remote() works out once what a function's calls send alike; what comes from the
    session (env_vars of init's runtime_env here) follows a new init() after shutdown()."""
    for value in ("first", "second"):
        session = _start(runtime_env={"env_vars": {"MINRAY_SESSION_VAR": value}})
        next(session)
        try:
            assert minray.get(read_session_var.remote(), timeout=30) == value
            # a function already called pickles (inside another task) as it did before
            assert minray.get(call_read_session_var.remote(), timeout=30) == value
        finally:
            next(session, None)  # shut down, and checked clean


@minray.remote(runtime_env={"env_vars": {"MINRAY_OUTER": "outer", "MINRAY_BOTH": "outer"}})
def outer_env():
    child = read_env_vars.options(runtime_env={"env_vars": {"MINRAY_BOTH": "child"}})
    return minray.get([read_env_vars.remote(), child.remote()])


@minray.remote
def read_env_vars():
    import os

    return {k: v for k, v in os.environ.items() if k in ("MINRAY_OUTER", "MINRAY_BOTH")}


@minray.remote(runtime_env={"env_vars": {"MINRAY_OUTER": "actor"}})
class EnvHolder:
    def nested(self):
        return minray.get(read_env_vars.remote())


def test_nested_tasks_inherit_env_vars_and_their_own_win(cluster):
    """As in Ray: what a task or actor submits inherits its runtime_env's env_vars, under
    the child's own."""
    inherited, own = minray.get(outer_env.remote(), timeout=30)
    assert inherited == {"MINRAY_OUTER": "outer", "MINRAY_BOTH": "outer"}
    assert own == {"MINRAY_OUTER": "outer", "MINRAY_BOTH": "child"}
    assert minray.get(EnvHolder.remote().nested.remote(), timeout=30) == {"MINRAY_OUTER": "actor"}
    assert minray.get(read_env_vars.remote(), timeout=30) == {}  # the driver's own: none
