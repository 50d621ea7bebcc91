"""Raft-style leader election among actors, where some nodes are slow or down.

Five ``Node`` actors each keep Raft's election state: the current term, whom
they voted for in it, and whom they follow. A node whose election timer fires
becomes a candidate: it starts a new term, votes for itself, and asks every
peer for its vote. It needs a majority (3 of 5), and it does not wait for
every reply: ``ray.wait(votes, num_returns=..., timeout=...)`` returns as soon
as enough votes are in, or when the election timeout passes, whichever comes
first. Without the timeout, one node that never answers would stall the
election forever.

The run:

* node 4 is down: it never replies;
* term 1: nodes 2 and 3 are behind a slow link and reply after 1.5 s, so
  node 0, whose timer fires first, gets one vote besides its own before its
  0.5 s timeout: no leader;
* the link recovers; term 2: node 1's timer fires first, it collects a
  majority at once, becomes leader and tells the others with a heartbeat.

The nodes are threaded actors (``max_concurrency``), so a node can answer a
vote request while one of its threads is waiting or sleeping.

Run: ``python examples/leader_election.py``
"""

import threading
import time

import minray as ray

NUM_NODES = 5
ELECTION_TIMEOUT_S = 0.5


@ray.remote(max_concurrency=8)
class Node:
    def __init__(self, node_id):
        self.id = node_id
        self.term = 0
        self.voted_for = None
        self.leader = None
        self.role = "follower"
        self.reply_delay = 0.0  # how late this node's replies arrive (a slow link or a dead node)
        self.peers = {}
        self.lock = threading.Lock()

    def set_peers(self, peers):
        self.peers = {i: handle for i, handle in peers.items() if i != self.id}

    def set_reply_delay(self, seconds):
        self.reply_delay = seconds

    def state(self):
        with self.lock:
            return {"id": self.id, "term": self.term, "role": self.role, "leader": self.leader}

    def _observe_term(self, term):
        """Raft's rule: a higher term seen anywhere turns this node into a follower of that term."""
        if term > self.term:
            self.term, self.voted_for, self.role, self.leader = term, None, "follower", None

    def request_vote(self, term, candidate_id):
        time.sleep(self.reply_delay)
        with self.lock:
            self._observe_term(term)
            granted = term == self.term and self.voted_for in (None, candidate_id)
            if granted:
                self.voted_for = candidate_id
            return self.term, granted

    def append_entries(self, term, leader_id):
        """A heartbeat from a leader (with no log entries, as elections need none)."""
        time.sleep(self.reply_delay)
        with self.lock:
            self._observe_term(term)
            if term < self.term:
                return self.term, False
            self.role, self.leader = "follower", leader_id
            return self.term, True

    def run_election(self, timeout):
        """Stand as candidate in a new term; returns what happened."""
        with self.lock:
            self.term += 1
            term = self.term
            self.role, self.voted_for, self.leader = "candidate", self.id, None
        majority = (len(self.peers) + 1) // 2 + 1
        granted = 1  # its own vote
        pending = [peer.request_vote.remote(term, self.id) for peer in self.peers.values()]
        deadline = time.monotonic() + timeout
        while granted < majority and pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # Only as many replies as votes still needed: a majority, not everyone.
            ready, pending = ray.wait(
                pending, num_returns=min(majority - granted, len(pending)), timeout=remaining
            )
            for peer_term, vote in ray.get(ready):
                with self.lock:
                    self._observe_term(peer_term)
                    if self.term != term:
                        return {"term": term, "votes": granted, "elected": False}
                granted += vote
        with self.lock:
            elected = granted >= majority and self.term == term and self.role == "candidate"
            if elected:
                self.role, self.leader = "leader", self.id
        if elected:
            beats = [peer.append_entries.remote(term, self.id) for peer in self.peers.values()]
            ray.wait(beats, num_returns=majority - 1, timeout=timeout)
        return {"term": term, "votes": granted, "elected": elected}


def election(nodes, candidate):
    start = time.perf_counter()
    outcome = ray.get(nodes[candidate].run_election.remote(ELECTION_TIMEOUT_S))
    took = time.perf_counter() - start
    verdict = "elected leader" if outcome["elected"] else "no leader"
    print(
        f"term {outcome['term']}: node {candidate} got {outcome['votes']} of {len(nodes)} votes "
        f"in {took:.2f} s -> {verdict}"
    )
    return outcome


def main():
    ray.init(num_cpus=2)
    nodes = [Node.remote(i) for i in range(NUM_NODES)]
    handles = dict(enumerate(nodes))
    ray.get([node.set_peers.remote(handles) for node in nodes])

    ray.get(nodes[4].set_reply_delay.remote(60.0))  # down for the whole run
    ray.get([nodes[i].set_reply_delay.remote(1.5) for i in (2, 3)])  # a slow link, for now

    first = election(nodes, candidate=0)
    assert not first["elected"], "a majority cannot answer within the timeout in term 1"

    ray.get([nodes[i].set_reply_delay.remote(0.0) for i in (2, 3)])  # the link recovers
    second = election(nodes, candidate=1)
    assert second["elected"], "nodes 0-3 are a majority and answer at once in term 2"

    # The leader waited for a majority of heartbeats only: give the others a moment.
    deadline = time.monotonic() + 5
    while True:
        states = ray.get([nodes[i].state.remote() for i in range(4)])  # node 4 would not answer
        if all(state["leader"] == 1 for state in states) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for state in states:
        print(f"  node {state['id']}: term {state['term']}, {state['role']}", end="")
        print(f", leader {state['leader']}")
    leaders = {state["leader"] for state in states}
    assert leaders == {1}, f"the live nodes disagree about the leader: {leaders}"
    ray.shutdown()
    print(f"leader: node {leaders.pop()}, term {second['term']}")


if __name__ == "__main__":
    main()
