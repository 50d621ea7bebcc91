"""A parameter server: one actor holds the model, worker tasks pull it and push updates.

Two workers each run 100 steps; a step pulls the current parameters and
pushes an update of ones. Every parameter ends at 200.

Run: ``python examples/parameter_server.py``
"""

import numpy as np

import minray as ray


@ray.remote
class ParameterServer:
    def __init__(self, keys, values):
        # values arrive read-only (zero-copy from the object store): keep our own copies
        self.weights = dict(zip(keys, [value.copy() for value in values]))

    def push(self, keys, values):
        for key, value in zip(keys, values):
            self.weights[key] += value

    def pull(self, keys):
        return [self.weights[key] for key in keys]


@ray.remote
def worker_task(ps, keys, steps):
    for _ in range(steps):
        parameters = ray.get(ps.pull.remote(keys))  # the latest parameters
        updates = [np.ones_like(p) for p in parameters]  # "compute" an update
        last = ps.push.remote(keys, updates)
    ray.get(last)  # our last update has landed
    return steps


if __name__ == "__main__":
    ray.init()
    keys = ["layer1", "layer2", "bias"]
    initial = [np.zeros(10), np.zeros((4, 4)), np.zeros(1)]
    ps = ParameterServer.remote(keys, initial)
    ray.get([worker_task.remote(ps, keys, 100) for _ in range(2)])
    final = ray.get(ps.pull.remote(keys))
    for key, value in zip(keys, final):
        print(key, "min", value.min(), "max", value.max())
    assert all((value == 200).all() for value in final)
    print("all parameters are 200")
    ray.shutdown()
