"""An ActorPool spreading work over actors, and a Queue between producer and consumer tasks.

``ActorPool.map`` hands each value to an idle actor and yields the results in
input order. A ``Queue`` is held by an actor and can be passed to tasks: here
a producer fills a bounded queue (blocking while it is full) and a consumer
drains it until it sees the end marker.

Run: ``python examples/actor_pool_queue.py``
"""

import minray as ray
from minray.util.actor_pool import ActorPool
from minray.util.queue import Empty, Queue


@ray.remote
class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def scale(self, x):
        return self.factor * x


@ray.remote
def producer(queue, n):
    for i in range(n):
        queue.put(i)  # waits while the queue is full
    queue.put(None)  # end marker


@ray.remote
def consumer(queue):
    total = 0
    while (item := queue.get(timeout=60)) is not None:
        total += item
    return total


if __name__ == "__main__":
    ray.init()
    pool = ActorPool([Scaler.remote(10), Scaler.remote(10)])
    print("pool.map:", list(pool.map(lambda actor, v: actor.scale.remote(v), range(8))))
    print("unordered:", sorted(pool.map_unordered(lambda a, v: a.scale.remote(v), [3, 1, 2])))

    queue = Queue(maxsize=5)
    done = consumer.remote(queue)
    ray.get(producer.remote(queue, 100))
    print("consumer summed:", ray.get(done))
    try:
        queue.get_nowait()
    except Empty:
        print("queue is empty at the end")
    queue.shutdown()
    ray.shutdown()
