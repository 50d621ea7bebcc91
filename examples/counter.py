"""An actor holds state between calls: a counter shared by many tasks.

A sync actor runs one call at a time, so four tasks incrementing it 25 times
each always end at exactly 100, with no lock in user code.

Run: ``python examples/counter.py``
"""

import minray as ray


@ray.remote
class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1
        return self.value

    def get(self):
        return self.value


@ray.remote
def hammer(counter, times):
    """A task that uses the actor through a handle passed as an argument."""
    for _ in range(times):
        counter.increment.remote()
    return ray.get(counter.get.remote())


if __name__ == "__main__":
    ray.init()
    counter = Counter.remote()
    print("first calls:", ray.get([counter.increment.remote() for _ in range(5)]))
    ray.get([hammer.remote(counter, 25) for _ in range(4)])
    print("after 5 + 4 x 25 increments:", ray.get(counter.get.remote()))
    ray.shutdown()
