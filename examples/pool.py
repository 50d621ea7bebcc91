"""A drop-in multiprocessing.Pool whose processes are minray actors.

``Pool()`` starts minray if needed and makes one actor per CPU of the cluster;
``map``, ``imap``, ``apply_async`` and the rest behave as in the stdlib.

Run: ``python examples/pool.py`` (as a Ray program: import from ``ray.util.multiprocessing``)
"""

from minray.util.multiprocessing import Pool


def f(index):
    return index


pool = Pool()
for result in pool.map(f, range(100)):
    print(result)

# the rest of the stdlib API works the same way
print("squares:", pool.map(lambda x: x * x, range(10)))
print("starmap:", pool.starmap(pow, [(2, 5), (3, 3)]))
print("imap in order:", list(pool.imap(f, range(5))))
print("async:", pool.apply_async(sum, ([1, 2, 3],)).get(timeout=30))
print("100,000 items, summed:", sum(pool.map(lambda x: x + 1, range(100_000))))
pool.close()
pool.join()
