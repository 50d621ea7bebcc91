"""Exercise 5: actors and a counter. The task is in README.md, next to this file.

Run it:   python docs/course/ex05_counter/starter.py
Check it: make course-check EX=5
"""

import minray as ray


# TODO: make Counter an actor: decorate the class with @ray.remote.
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
        # TODO: call the actor through its handle: counter.increment.remote(). Then make
        # sure your increments are done before the task returns: ray.get the last one.
        counter.increment()
    return times


def count_with_tasks(num_tasks, times):
    """One new counter, incremented `times` times by each of num_tasks tasks: its final value."""
    counter = Counter()  # TODO: Counter.remote() starts the actor and returns its handle
    ray.get([hammer.remote(counter, times) for _ in range(num_tasks)])
    return counter.get()  # TODO: ray.get(counter.get.remote())


if __name__ == "__main__":
    ray.init(num_cpus=4)
    print("4 tasks x 25 increments:", count_with_tasks(4, 25))
    ray.shutdown()
