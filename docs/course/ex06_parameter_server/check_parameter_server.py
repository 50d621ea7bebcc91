"""Checks for exercise 6, a parameter server: ``make course-check EX=6``."""

import numpy as np
import pytest

import minray

pytestmark = pytest.mark.usefixtures("ray_cluster")

KEYS = ["layer1", "layer2", "bias"]


def initial():
    return [np.zeros(10), np.arange(16.0).reshape(4, 4), np.zeros(1)]


def assert_parameters(values, expected):
    assert len(values) == len(expected)
    for key, value, want in zip(KEYS, values, expected):
        assert value is not None, f"pull returned None for {key!r}"
        assert np.array_equal(value, want), f"{key!r} is {value}, expected {want}"


def test_pull_returns_the_initial_parameters(answer):
    ps = answer.ParameterServer.remote(KEYS, initial())
    assert_parameters(minray.get(ps.pull.remote(KEYS), timeout=30), initial())
    bias, layer1 = minray.get(ps.pull.remote(["bias", "layer1"]))
    assert np.array_equal(bias, np.zeros(1)) and np.array_equal(layer1, np.zeros(10))


def test_push_adds_to_the_parameters(answer):
    ps = answer.ParameterServer.remote(KEYS, initial())
    minray.get(ps.push.remote(["bias"], [np.full(1, 2.5)]))
    minray.get(ps.push.remote(KEYS, [np.ones(10), np.ones((4, 4)), np.ones(1)]))
    expected = initial()
    expected = [expected[0] + 1, expected[1] + 1, np.full(1, 3.5)]
    assert_parameters(minray.get(ps.pull.remote(KEYS)), expected)


def test_the_server_keeps_its_own_copy_of_a_stored_array(answer):
    big = np.zeros(100_000)  # 800 KB: it arrives read-only, from shared memory
    ps = answer.ParameterServer.remote(["big"], [big])
    minray.get(ps.push.remote(["big"], [np.ones(100_000)]), timeout=30)
    (value,) = minray.get(ps.pull.remote(["big"]))
    assert value is not None and (value == 1).all()


@pytest.mark.parametrize("num_workers, steps", [(2, 50), (3, 10)])
def test_train_applies_every_workers_updates(answer, num_workers, steps):
    final = answer.train(KEYS, initial(), num_workers, steps)
    total = num_workers * steps
    assert_parameters(final, [p + total for p in initial()])
