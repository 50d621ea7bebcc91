"""minray.node.lease_limits: the cap on one client's waiting lease requests at a node."""

from minray.node.lease_limits import lease_refusal


def test_a_client_below_the_cap_is_queued():
    requests = {("a", i): None for i in range(3)} | {("b", i): None for i in range(5)}
    assert lease_refusal(requests, "a", 99, cap=4) is None


def test_a_client_at_the_cap_is_refused_naming_the_setting():
    requests = {("a", i): None for i in range(4)}
    refusal = lease_refusal(requests, "a", 99, cap=4)
    assert refusal.error == "TaskUnschedulableError"
    assert "MINRAY_MAX_PENDING_LEASES_PER_CLIENT" in refusal.message
    assert "4 lease requests" in refusal.message


def test_other_clients_are_not_refused_for_one_client_at_the_cap():
    requests = {("a", i): None for i in range(4)}
    assert lease_refusal(requests, "b", 1, cap=4) is None


def test_a_request_id_that_still_waits_is_refused():
    refusal = lease_refusal({("a", 7): None}, "a", 7, cap=100)
    assert refusal.error == "ValueError" and "already waiting" in refusal.message
