"""Checks for exercise 7, a sharded parameter server: ``make course-check EX=7``."""

import numpy as np
import pytest

import minray

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.mark.parametrize("dim, num_shards", [(10, 3), (1_000, 4), (5, 1)])
def test_make_shards_splits_the_vector_over_the_shards(answer, dim, num_shards):
    shards = answer.make_shards(dim, num_shards)
    assert len(shards) == num_shards, f"make_shards({dim}, {num_shards}) made {len(shards)} shards"
    pieces = minray.get([shard.get.remote() for shard in shards], timeout=30)
    sizes = [piece.size for piece in pieces]
    assert sizes == [piece.size for piece in np.array_split(np.zeros(dim), num_shards)]
    assert all((piece == 0).all() for piece in pieces)


@pytest.mark.parametrize("num_shards, num_workers, steps", [(3, 2, 20), (2, 3, 5)])
def test_train_updates_every_shard(answer, num_shards, num_workers, steps):
    shards = answer.make_shards(100, num_shards)
    assert len(shards) == num_shards, "make_shards made the wrong number of shards"
    params = answer.train(shards, num_workers, steps)
    assert params.shape == (100,)
    assert (params == num_workers * steps).all(), (
        f"parameters range from {params.min()} to {params.max()}, expected all "
        f"{num_workers * steps}: every worker must update every shard, and wait for its "
        "last update on each"
    )


def test_a_worker_task_updates_shards_made_elsewhere(answer):
    """worker_task works with any list of shards: here, two shards of different sizes."""
    shards = [answer.ParameterServerShard.remote(n) for n in (3, 2)]
    assert minray.get(answer.worker_task.remote(shards, 4), timeout=30) == 4
    pieces = minray.get([shard.get.remote() for shard in shards])
    assert [list(piece) for piece in pieces] == [[4.0] * 3, [4.0] * 2]
