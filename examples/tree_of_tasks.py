"""A tree of tasks: tasks that submit tasks and wait for them.

``tree_sum`` adds up a range of numbers by splitting it in halves, handing
each half to a child task, and adding the two results; at the bottom of the
tree the leaves add up their piece directly. ``quicksort`` does the same with
a list: partition around a pivot, sort the two sides in child tasks.

A parent waits in ``ray.get`` for its children, and a waiting task still holds
a worker process. While it waits it lends its CPU to other tasks (so two CPUs
are enough for any depth), but every waiting parent is one more process, so
trees of tasks should stay shallow: here depth 3, 15 tasks in all.

Run: ``python examples/tree_of_tasks.py``
"""

import random

import minray as ray


@ray.remote
def tree_sum(start, stop, depth):
    """The sum of range(start, stop), split over 2**depth leaf tasks."""
    if depth == 0:
        return sum(range(start, stop)), 1
    middle = (start + stop) // 2
    left = tree_sum.remote(start, middle, depth - 1)
    right = tree_sum.remote(middle, stop, depth - 1)
    (left_sum, left_tasks), (right_sum, right_tasks) = ray.get([left, right])
    return left_sum + right_sum, left_tasks + right_tasks + 1


@ray.remote
def quicksort(values, depth):
    """Sort a list; the top `depth` levels of the recursion are tasks."""
    if depth == 0 or len(values) <= 1:
        return sorted(values)
    pivot = values[len(values) // 2]
    lower = [v for v in values if v < pivot]
    equal = [v for v in values if v == pivot]
    higher = [v for v in values if v > pivot]
    lower_ref = quicksort.remote(lower, depth - 1)
    higher_ref = quicksort.remote(higher, depth - 1)
    return ray.get(lower_ref) + equal + ray.get(higher_ref)


def main(n=1_000_000, depth=3):
    ray.init(num_cpus=2)

    values = random.Random(0).sample(range(100_000), 5_000)
    ordered = ray.get(quicksort.remote(values, 2))
    is_sorted = ordered == sorted(values)
    print(f"quicksort of {len(values)} numbers by a tree of 7 tasks: sorted={is_sorted}")

    total, tasks = ray.get(tree_sum.remote(0, n, depth))
    ray.shutdown()
    expected = n * (n - 1) // 2
    print(
        f"sum of range({n}) by a tree of {tasks} tasks: {total} "
        f"({'correct' if total == expected else f'WRONG, expected {expected}'})"
    )


if __name__ == "__main__":
    main()
