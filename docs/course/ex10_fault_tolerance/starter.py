"""Exercise 10: fault tolerance, retries and restarts. The task is in README.md.

Run it:   python docs/course/ex10_fault_tolerance/starter.py
Check it: make course-check EX=10
"""

import os
import tempfile

import minray as ray


# TODO: let minray run this task again when its worker dies (max_retries=1 or more).
@ray.remote(max_retries=0)
def crash_once(marker):
    """Kills its own worker process the first time (no marker file yet); then returns its pid."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # as if the machine lost power: no exception, the process is gone
    return os.getpid()


# TODO: let minray restart this actor once (max_restarts=1) and run again the call that
# was running when it died (max_task_retries=1).
@ray.remote(max_restarts=0)
class Account:
    """A balance that survives a crash of its process, saved in a file after each deposit."""

    def __init__(self, path):
        self.path = path
        # TODO: a restarted actor runs __init__ again: start from the balance saved in
        # self.path if that file exists (import json; json.load), else from 0.
        self.balance = 0

    def deposit(self, amount, crash_marker=None):
        if crash_marker is not None and not os.path.exists(crash_marker):
            open(crash_marker, "w").close()
            os._exit(1)  # dies before this deposit is applied
        self.balance += amount
        # TODO: save the balance to self.path (json.dump), so a restart can read it back.
        return self.balance


if __name__ == "__main__":
    ray.init(num_cpus=4)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            print("crash_once ran in process", ray.get(crash_once.remote(f"{scratch}/task")))
        except ray.exceptions.RayError as error:
            print("crash_once failed:", type(error).__name__)
        account = Account.remote(os.path.join(scratch, "balance.json"))
        print("deposits:", ray.get([account.deposit.remote(10), account.deposit.remote(20)]))
        try:
            print("after a crash:", ray.get(account.deposit.remote(5, f"{scratch}/actor")))
        except ray.exceptions.RayError as error:
            print("deposit failed:", type(error).__name__)
    ray.shutdown()
