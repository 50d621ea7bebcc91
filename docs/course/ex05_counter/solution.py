"""Exercise 5: actors and a counter. A solution.

Run it:   python docs/course/ex05_counter/solution.py
Check it: make course-check EX=5 SOLUTION=1
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
    """A task that increments the counter `times` times."""
    for _ in range(times):
        last = counter.increment.remote()
    ray.get(last)  # calls from one caller run in order: all of ours are done now
    return times


def count_with_tasks(num_tasks, times):
    """One new counter, incremented `times` times by each of num_tasks tasks: its final value."""
    counter = Counter.remote()
    ray.get([hammer.remote(counter, times) for _ in range(num_tasks)])
    return ray.get(counter.get.remote())


if __name__ == "__main__":
    ray.init(num_cpus=4)
    print("4 tasks x 25 increments:", count_with_tasks(4, 25))
    ray.shutdown()
