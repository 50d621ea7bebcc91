"""Exercise 3: put and zero-copy. A solution.

Run it:   python docs/course/ex03_put/solution.py
Check it: make course-check EX=3 SOLUTION=1
"""

import numpy as np

import minray as ray


@ray.remote
def column_sums(matrix, start, stop):
    """The sums of the columns start..stop-1 of matrix."""
    return matrix[:, start:stop].sum(axis=0)


def parallel_column_sums(matrix, pieces):
    """matrix.sum(axis=0), computed by `pieces` tasks, each summing a band of columns."""
    bounds = np.linspace(0, matrix.shape[1], pieces + 1).astype(int)
    matrix_ref = ray.put(matrix)  # stored once, in shared memory; every task reads that copy
    refs = [column_sums.remote(matrix_ref, a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return np.concatenate(ray.get(refs))


@ray.remote
def centered(matrix):
    """matrix minus its mean, as a new array."""
    return matrix - matrix.mean()  # a new array: the read-only input is left as it is


if __name__ == "__main__":
    ray.init(num_cpus=4)
    matrix = np.random.default_rng(0).random((2_000, 500))  # 8 MB
    sums = parallel_column_sums(matrix, 4)
    print("column sums match numpy:", np.allclose(sums, matrix.sum(axis=0)))
    ref = ray.put(matrix)
    view = ray.get(ref)
    print("ray.get(ref) is read-only (zero-copy):", not view.flags.writeable)
    try:
        print("centered mean:", ray.get(centered.remote(ref)).mean())
    except ValueError as error:  # the task's own error type, with its traceback
        print("centered failed:", str(error).splitlines()[-1])
    ray.shutdown()
