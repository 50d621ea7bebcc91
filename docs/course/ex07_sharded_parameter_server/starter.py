"""Exercise 7: a sharded parameter server. The task is in README.md, next to this file.

Run it:   python docs/course/ex07_sharded_parameter_server/starter.py
Check it: make course-check EX=7
"""

import numpy as np

import minray as ray


@ray.remote
class ParameterServerShard:
    """One piece of the parameter vector."""

    def __init__(self, size):
        self.params = np.zeros(size)

    def get(self):
        return self.params

    def update(self, delta):
        self.params += delta


def make_shards(dim, num_shards):
    """num_shards shard actors that together hold a vector of dim zeros."""
    # TODO: one ParameterServerShard per piece: the sizes of np.array_split(np.zeros(dim),
    # num_shards). For now a single shard holds the whole vector.
    return [ParameterServerShard.remote(dim)]


@ray.remote
def worker_task(shards, steps):
    """`steps` times: pull every shard, compute an update (ones), push each piece. Returns steps."""
    for _ in range(steps):
        # TODO: get all shards at once (one ray.get of a list of refs, so they are fetched
        # in parallel), np.concatenate them, np.array_split the update into len(shards)
        # pieces and send each piece to its shard.
        current = ray.get(shards[0].get.remote())
        last = shards[0].update.remote(np.ones_like(current))
    ray.get(last)  # TODO: wait for the last update of every shard
    return steps


def train(shards, num_workers, steps):
    """Run num_workers worker tasks over the shards; the final parameter vector."""
    ray.get([worker_task.remote(shards, steps) for _ in range(num_workers)])
    return np.concatenate(ray.get([shard.get.remote() for shard in shards]))


if __name__ == "__main__":
    ray.init(num_cpus=4)
    shards = make_shards(1_000, 4)
    params = train(shards, num_workers=2, steps=100)
    print(f"{len(shards)} shards, {params.size} parameters, min {params.min()} max {params.max()}")
    ray.shutdown()
