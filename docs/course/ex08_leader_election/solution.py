"""Exercise 8: wait with timeouts, in a leader election. A solution.

Run it:   python docs/course/ex08_leader_election/solution.py
Check it: make course-check EX=8 SOLUTION=1
"""

import threading
import time

import minray as ray


@ray.remote(max_concurrency=4)
class Node:
    """A voter in a Raft-style election. A threaded actor: it answers while it sleeps."""

    def __init__(self, node_id, reply_delay=0.0):
        self.id = node_id
        self.reply_delay = reply_delay  # a slow link; a large value is a node that is down
        self.term = 0
        self.voted_for = None
        self.lock = threading.Lock()

    def request_vote(self, term, candidate_id):
        """True if this node votes for candidate_id in term (one vote per term)."""
        time.sleep(self.reply_delay)
        with self.lock:
            if term > self.term:
                self.term, self.voted_for = term, None
            granted = term == self.term and self.voted_for in (None, candidate_id)
            if granted:
                self.voted_for = candidate_id
            return granted


def run_election(candidate_id, term, peers, timeout):
    """Ask every peer for its vote; the number of votes, the candidate's own included.

    Returns as soon as the candidate has a majority of all nodes (peers + itself), or
    when `timeout` seconds have passed, whichever comes first.
    """
    votes = 1  # its own
    majority = (len(peers) + 1) // 2 + 1
    pending = [peer.request_vote.remote(term, candidate_id) for peer in peers]
    deadline = time.monotonic() + timeout
    while votes < majority and pending:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        needed = min(majority - votes, len(pending))
        ready, pending = ray.wait(pending, num_returns=needed, timeout=left)
        votes += sum(ray.get(ready))
    return votes


def main():
    ray.init(num_cpus=4)
    down = Node.remote(4, 60.0)  # never answers in time
    slow_links = [Node.remote(1, 0.0), Node.remote(2, 1.5), Node.remote(3, 1.5), down]
    fast_links = [Node.remote(1, 0.0), Node.remote(2, 0.0), Node.remote(3, 0.0), down]
    for term, peers in [(1, slow_links), (2, fast_links)]:
        start = time.perf_counter()
        votes = run_election(0, term, peers, timeout=0.5)
        verdict = "elected" if votes >= 3 else "no leader"
        print(f"term {term}: {votes} of 5 votes in {time.perf_counter() - start:.2f} s: {verdict}")
    ray.shutdown()


if __name__ == "__main__":
    main()
