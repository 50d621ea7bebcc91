"""Checks for exercise 3, put and zero-copy: ``make course-check EX=3``."""

import numpy as np
import pytest

import minray

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture
def matrix():
    return np.random.default_rng(1).random((2_000, 500))  # 8 MB: it goes to shared memory


@pytest.fixture
def puts(answer, monkeypatch):
    """Every value the answer passes to ray.put, in order."""
    values = []
    real_put = minray.put

    def counting_put(value, **kwargs):
        values.append(value)
        return real_put(value, **kwargs)

    monkeypatch.setattr(minray, "put", counting_put)
    for name, value in vars(answer).items():  # also `from minray import put`
        if value is real_put:
            monkeypatch.setattr(answer, name, counting_put)
    return values


def test_parallel_column_sums_matches_numpy(answer, matrix):
    for pieces in (1, 3, 4):
        sums = answer.parallel_column_sums(matrix, pieces)
        assert sums.shape == (500,)
        assert np.allclose(sums, matrix.sum(axis=0))


def test_parallel_column_sums_puts_the_matrix_once(answer, matrix, puts):
    answer.parallel_column_sums(matrix, 4)
    big = [value for value in puts if isinstance(value, np.ndarray) and value.size >= matrix.size]
    assert len(big) == 1, (
        f"ray.put stored the matrix {len(big)} times: put it once, before the loop, and "
        "pass the same ref to all 4 tasks"
    )


def test_an_array_from_the_object_store_is_read_only(matrix):
    view = minray.get(minray.put(matrix))
    assert np.array_equal(view, matrix)
    assert not view.flags.writeable  # zero-copy: a view of shared memory


def test_centered_returns_a_new_array_and_leaves_the_stored_one_alone(answer, matrix):
    ref = minray.put(matrix)
    result = minray.get(answer.centered.remote(ref), timeout=30)
    assert np.allclose(result, matrix - matrix.mean())
    assert abs(result.mean()) < 1e-9
    assert np.array_equal(minray.get(ref), matrix), "the stored matrix must not change"
