"""Checks for exercise 4, a map-reduce word count: ``make course-check EX=4``."""

from collections import Counter

import pytest

import minray

pytestmark = pytest.mark.usefixtures("ray_cluster")

CHUNKS = [
    "the quick brown fox jumps over the lazy dog",
    "the dog sleeps and the fox runs",
    "a lazy afternoon for a quick brown dog",
    "over and over the fox jumps",
    "",
]


def expected_counts():
    return dict(Counter(word for chunk in CHUNKS for word in chunk.split()))


@pytest.fixture
def fetched(answer, monkeypatch):
    """How many objects the answer fetches with ray.get."""
    count = [0]
    real_get = minray.get

    def counting_get(refs, **kwargs):
        count[0] += len(refs) if isinstance(refs, list) else 1
        return real_get(refs, **kwargs)

    monkeypatch.setattr(minray, "get", counting_get)
    for name, value in vars(answer).items():  # also `from minray import get`
        if value is real_get:
            monkeypatch.setattr(answer, name, counting_get)
    return count


def test_map_words_is_a_task_with_one_return_per_reducer(answer):
    assert hasattr(answer.map_words, "remote"), "map_words is not a task: add @ray.remote"
    refs = answer.map_words.options(num_returns=3).remote("b a c a d", 3)
    assert isinstance(refs, list) and len(refs) == 3
    parts = minray.get(refs, timeout=30)
    merged = {}
    for r, part in enumerate(parts):
        assert all(answer.partition_of(word, 3) == r for word in part), "a word in a wrong part"
        merged.update(part)
    assert merged == {"a": 2, "b": 1, "c": 1, "d": 1}


def test_reduce_words_is_a_task_that_adds_counts(answer):
    assert hasattr(answer.reduce_words, "remote"), "reduce_words is not a task: add @ray.remote"
    ref = answer.reduce_words.remote({"a": 1}, {"a": 2, "b": 1}, {})
    assert minray.get(ref, timeout=30) == {"a": 3, "b": 1}


@pytest.mark.parametrize("num_reducers", [2, 3])
def test_word_count_counts_every_word(answer, num_reducers):
    assert answer.word_count(CHUNKS, num_reducers) == expected_counts()


def test_only_the_reducers_results_come_back_to_the_driver(answer, fetched):
    assert answer.word_count(CHUNKS, 3) == expected_counts()
    assert 0 < fetched[0] <= 3, (
        f"word_count fetched {fetched[0]} objects with ray.get: only the 3 reducers' dicts "
        "should come back. Pass the map tasks' refs to the reduce tasks; they get the values."
    )
