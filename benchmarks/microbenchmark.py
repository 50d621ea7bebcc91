"""Run minray's version of ``ray microbenchmark`` (same rows and output format).

python benchmarks/microbenchmark.py        # or: minray microbenchmark
TESTS_TO_RUN="tasks" python benchmarks/microbenchmark.py
"""

from minray.microbenchmark import main

if __name__ == "__main__":
    main()
