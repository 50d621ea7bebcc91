"""Checks for exercise 8, wait with timeouts in a leader election: ``make course-check EX=8``."""

import time

import pytest

import minray

pytestmark = pytest.mark.usefixtures("ray_cluster")


@pytest.fixture
def nodes(answer):
    """Start peers with the given reply delays; kill them after the test (one sleeps long)."""
    started = []

    def make(*delays):
        peers = [answer.Node.remote(i + 1, delay) for i, delay in enumerate(delays)]
        awake = [peer for peer, delay in zip(peers, delays) if delay < 1]
        minray.get([peer.request_vote.remote(0, -1) for peer in awake], timeout=30)  # started
        started.extend(peers)
        return peers

    yield make
    for peer in started:
        minray.kill(peer)


def elect(answer, peers, term, timeout):
    start = time.perf_counter()
    votes = answer.run_election(0, term, peers, timeout)
    return votes, time.perf_counter() - start


def test_a_majority_is_elected_without_waiting_for_a_dead_node(answer, nodes):
    peers = nodes(0.0, 0.0, 0.0, 30.0)  # the last one is down
    votes, took = elect(answer, peers, 1, timeout=5.0)
    assert votes >= 3, f"{votes} votes: 3 peers answer at once, so the candidate has 4 of 5"
    assert took < 2.0, (
        f"the election took {took:.2f} s: return as soon as a majority voted, without "
        "waiting for every peer (ray.wait with num_returns)"
    )


def test_an_election_ends_at_its_timeout_without_a_majority(answer, nodes):
    peers = nodes(0.0, 3.0, 3.0, 30.0)  # two slow links, one node down
    votes, took = elect(answer, peers, 1, timeout=0.5)
    assert votes == 2, f"{votes} votes: only the candidate and one peer answer within 0.5 s"
    assert 0.4 <= took < 1.5, (
        f"the election took {took:.2f} s with a 0.5 s timeout: wait until the timeout for "
        "the votes still missing (ray.wait with timeout), then give up"
    )


def test_votes_refused_do_not_count(answer, nodes):
    peers = nodes(0.0, 0.0, 0.0, 0.0)
    assert minray.get([peer.request_vote.remote(1, 99) for peer in peers[:3]]) == [True] * 3
    votes, took = elect(answer, peers, 1, timeout=0.5)  # the same term: three already voted
    assert votes == 2, f"{votes} votes: three peers voted for node 99 in this term"
