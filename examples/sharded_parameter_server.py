"""A sharded parameter server: the parameters are split across several actors.

Each worker pulls every shard (in parallel), computes an update for the whole
vector, splits it and pushes each piece to its shard. With 2 shards, 2
workers and 100 steps each, every parameter ends at 200.

Run: ``python examples/sharded_parameter_server.py``
"""

import numpy as np

import minray as ray

DIM = 1_000
NUM_SHARDS = 2


@ray.remote
class ParameterServerShard:
    def __init__(self, size):
        self.params = np.zeros(size)

    def get(self):
        return self.params

    def update(self, delta):
        self.params += delta
        return True


@ray.remote
def worker_task(shards, steps):
    for _ in range(steps):
        current = np.concatenate(ray.get([shard.get.remote() for shard in shards]))
        gradient = np.ones_like(current)
        pieces = np.array_split(gradient, len(shards))
        done = [shard.update.remote(piece) for shard, piece in zip(shards, pieces)]
    ray.get(done)
    return steps


if __name__ == "__main__":
    ray.init()
    sizes = [len(piece) for piece in np.array_split(np.zeros(DIM), NUM_SHARDS)]
    shards = [ParameterServerShard.remote(size) for size in sizes]
    ray.get([worker_task.remote(shards, 100) for _ in range(2)])
    params = np.concatenate(ray.get([shard.get.remote() for shard in shards]))
    print("parameters:", params.shape, "min", params.min(), "max", params.max())
    assert (params == 200).all()
    print("all parameters are 200")
    ray.shutdown()
