"""Exercise 6: a parameter server. The task is in README.md, next to this file.

Run it:   python docs/course/ex06_parameter_server/starter.py
Check it: make course-check EX=6
"""

import numpy as np

import minray as ray


@ray.remote
class ParameterServer:
    def __init__(self, keys, values):
        # TODO: keep the parameters in a dict {key: array}. Arrays that come out of the
        # object store are read-only (exercise 3): store your own copies, value.copy().
        self.weights = {}

    def push(self, keys, values):
        """Add each update in values to the parameter of the same key."""
        # TODO

    def pull(self, keys):
        """The current parameters of keys, in the same order."""
        # TODO
        return [None for _ in keys]


@ray.remote
def worker_task(ps, keys, steps):
    """`steps` times: pull the parameters, compute an update (ones), push it. Returns steps."""
    # TODO: each step: parameters = ray.get(ps.pull.remote(keys)), then
    # ps.push.remote(keys, [np.ones_like(p) for p in parameters]). Wait for the last push
    # before you return, so the driver sees all of your updates.
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
