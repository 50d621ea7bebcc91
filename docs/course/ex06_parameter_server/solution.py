"""Exercise 6: a parameter server. A solution.

Run it:   python docs/course/ex06_parameter_server/solution.py
Check it: make course-check EX=6 SOLUTION=1
"""

import numpy as np

import minray as ray


@ray.remote
class ParameterServer:
    def __init__(self, keys, values):
        # values may arrive read-only (zero-copy from the object store): keep our own copies
        self.weights = {key: np.array(value, copy=True) for key, value in zip(keys, values)}

    def push(self, keys, values):
        """Add each update in values to the parameter of the same key."""
        for key, value in zip(keys, values):
            self.weights[key] += value

    def pull(self, keys):
        """The current parameters of keys, in the same order."""
        return [self.weights[key] for key in keys]


@ray.remote
def worker_task(ps, keys, steps):
    """`steps` times: pull the parameters, compute an update (ones), push it. Returns steps."""
    last = None
    for _ in range(steps):
        parameters = ray.get(ps.pull.remote(keys))  # the latest parameters
        updates = [np.ones_like(p) for p in parameters]  # "compute" an update
        last = ps.push.remote(keys, updates)
    ray.get(last)  # our last update has landed
    return steps


def train(keys, initial, num_workers, steps):
    """A server holding `initial`, num_workers worker tasks of `steps` steps: the final values."""
    ps = ParameterServer.remote(keys, initial)
    ray.get([worker_task.remote(ps, keys, steps) for _ in range(num_workers)])
    return ray.get(ps.pull.remote(keys))


if __name__ == "__main__":
    ray.init(num_cpus=4)
    keys = ["layer1", "layer2", "bias"]
    initial = [np.zeros(10), np.zeros((4, 4)), np.zeros(1)]
    final = train(keys, initial, num_workers=2, steps=100)
    for key, value in zip(keys, final):
        print(key, value if value is None else f"min {value.min()} max {value.max()}")
    ray.shutdown()
