"""Exercise 3: put and zero-copy. The task is in README.md, next to this file.

Run it:   python docs/course/ex03_put/starter.py
Check it: make course-check EX=3
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
    # TODO: every task gets its own copy of the matrix in the object store. Store it
    # once with ray.put(matrix) and pass that ref to every task instead.
    refs = [column_sums.remote(matrix, a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return np.concatenate(ray.get(refs))


@ray.remote
def centered(matrix):
    """matrix minus its mean, as a new array."""
    # TODO: the task reads matrix from shared memory without a copy, so it is read-only:
    # this line fails. Compute a new array instead of changing the one you were given.
    matrix -= matrix.mean()
    return matrix


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
