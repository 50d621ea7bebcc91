"""minray.node.actor_directory.ActorDirectory: actor states and names (pure)."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from minray.exceptions import ActorAlreadyExistsError
from minray.node.actor_directory import ActorDirectory, ActorRecord
from minray.protocol.messages import ActorState

OWNER = object()
OTHER_OWNER = object()


def register(d, actor_id, name="", namespace="ns", *, owner=OWNER, **kwargs):
    kwargs.setdefault("detached", False)
    kwargs.setdefault("max_restarts", 0)
    return d.register(
        actor_id,
        owner,
        name=name,
        namespace=namespace,
        class_name="Counter",
        handle_blob=b"handle",
        **kwargs,
    )


# --- register and names --------------------------------------------------------------------


def test_register_returns_a_new_pending_record():
    d = ActorDirectory()
    record, created = register(d, b"a", "counter")
    assert created is True
    assert isinstance(record, ActorRecord)
    assert record.state == ActorState.PENDING
    assert (record.actor_id, record.name, record.namespace) == (b"a", "counter", "ns")
    assert d.get(b"a") is record
    assert d.named("counter", "ns") is record


def test_unnamed_actors_never_clash():
    d = ActorDirectory()
    register(d, b"a")
    _, created = register(d, b"b")
    assert created is True
    assert d.list_named(None) == []


def test_taken_name_raises_already_exists_naming_name_and_namespace():
    d = ActorDirectory()
    register(d, b"a", "counter", "prod")
    with pytest.raises(ActorAlreadyExistsError) as info:
        register(d, b"b", "counter", "prod")
    assert "counter" in str(info.value) and "prod" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert d.get(b"b") is None


def test_get_if_exists_returns_the_live_actor_holding_the_name():
    d = ActorDirectory()
    first, _ = register(d, b"a", "counter")
    record, created = register(d, b"b", "counter", get_if_exists=True)
    assert record is first and created is False
    assert d.get(b"b") is None


def test_get_if_exists_creates_when_the_name_is_free():
    d = ActorDirectory()
    record, created = register(d, b"a", "counter", get_if_exists=True)
    assert created is True and d.named("counter", "ns") is record


def test_same_name_in_another_namespace_is_a_different_actor():
    d = ActorDirectory()
    a, _ = register(d, b"a", "counter", "one")
    b, created = register(d, b"b", "counter", "two")
    assert created is True
    assert d.named("counter", "one") is a
    assert d.named("counter", "two") is b
    assert d.named("counter", "three") is None


def test_dead_actor_frees_its_name_for_a_new_actor():
    d = ActorDirectory()
    register(d, b"a", "counter")
    d.died(b"a", "killed")
    assert d.named("counter", "ns") is None
    assert d.list_named(None) == []
    record, created = register(d, b"b", "counter")
    assert created is True and d.named("counter", "ns") is record


def test_get_if_exists_does_not_return_a_dead_actor():
    d = ActorDirectory()
    register(d, b"a", "counter")
    d.died(b"a", "killed")
    record, created = register(d, b"b", "counter", get_if_exists=True)
    assert created is True and record.actor_id == b"b"


def test_dying_old_actor_leaves_the_new_holder_of_its_name_alone():
    d = ActorDirectory()
    register(d, b"a", "counter")
    d.died(b"a", "killed")
    new, _ = register(d, b"b", "counter")
    d.died(b"a", "again")
    assert d.named("counter", "ns") is new


def test_list_named_filters_by_namespace_or_lists_all_when_none():
    d = ActorDirectory()
    register(d, b"a", "x", "one")
    register(d, b"b", "y", "two")
    register(d, b"c", "w", "one")
    register(d, b"d")
    assert d.list_named("one") == [["w", "one"], ["x", "one"]]
    assert d.list_named("two") == [["y", "two"]]
    assert d.list_named("none") == []
    assert d.list_named(None) == [["w", "one"], ["x", "one"], ["y", "two"]]


# --- started ----------------------------------------------------------------------------


def test_started_makes_the_actor_alive_with_its_address_and_pid():
    d = ActorDirectory()
    register(d, b"a")
    record = d.started(b"a", "unix:/w1", 4242)
    assert record is d.get(b"a")
    assert (record.state, record.address, record.pid) == (ActorState.ALIVE, "unix:/w1", 4242)


def test_started_after_death_returns_none_and_keeps_it_dead():
    d = ActorDirectory()
    register(d, b"a")
    d.died(b"a", "killed")
    assert d.started(b"a", "unix:/w1", 1) is None
    assert d.get(b"a").state == ActorState.DEAD
    assert d.get(b"a").address == ""


def test_started_for_an_unknown_actor_returns_none():
    assert ActorDirectory().started(b"nope", "unix:/w", 1) is None


# --- worker_lost ---------------------------------------------------------------------------


def test_lost_worker_with_restarts_left_restarts_the_actor():
    d = ActorDirectory()
    record, _ = register(d, b"a", "counter", max_restarts=2)
    d.started(b"a", "unix:/w1", 1)
    record.worker, record.alloc = "worker", "alloc"
    assert d.worker_lost(b"a", "crashed", owner_alive=True) == ActorState.RESTARTING
    assert record.restarts == 1
    assert (record.worker, record.alloc, record.address) == (None, None, "")
    assert d.named("counter", "ns") is record


def test_lost_worker_dies_once_max_restarts_are_used_up():
    d = ActorDirectory()
    record, _ = register(d, b"a", max_restarts=2)
    for expected in (1, 2):
        assert d.worker_lost(b"a", "crashed", owner_alive=True) == ActorState.RESTARTING
        assert record.restarts == expected
        d.started(b"a", "unix:/w", 1)
    assert d.worker_lost(b"a", "crashed for good", owner_alive=True) == ActorState.DEAD
    assert record.restarts == 2
    assert record.death_cause == "crashed for good"


def test_lost_worker_without_restarts_kills_the_actor_with_the_cause():
    d = ActorDirectory()
    record, _ = register(d, b"a", "counter")
    assert d.worker_lost(b"a", "segfault", owner_alive=True) == ActorState.DEAD
    assert record.death_cause == "segfault"
    assert d.named("counter", "ns") is None


def test_max_restarts_minus_one_restarts_forever():
    d = ActorDirectory()
    record, _ = register(d, b"a", max_restarts=-1)
    for _ in range(50):
        assert d.worker_lost(b"a", "crashed", owner_alive=True) == ActorState.RESTARTING
    assert record.restarts == 50


def test_lost_worker_with_owner_gone_dies_saying_it_could_not_restart():
    d = ActorDirectory()
    record, _ = register(d, b"a", max_restarts=3)
    assert d.worker_lost(b"a", "crashed", owner_alive=False) == ActorState.DEAD
    assert record.death_cause.startswith("crashed")
    assert "could not restart" in record.death_cause
    assert record.restarts == 0


def test_lost_worker_with_no_restarts_left_does_not_blame_the_owner():
    d = ActorDirectory()
    record, _ = register(d, b"a")
    d.worker_lost(b"a", "crashed", owner_alive=False)
    assert record.death_cause == "crashed"


def test_lost_worker_of_a_dead_actor_changes_nothing():
    d = ActorDirectory()
    record, _ = register(d, b"a", max_restarts=-1)
    d.died(b"a", "killed")
    assert d.worker_lost(b"a", "crashed", owner_alive=True) == ActorState.DEAD
    assert record.death_cause == "killed" and record.restarts == 0


# --- died ------------------------------------------------------------------------------


def test_died_returns_the_record_once_and_keeps_the_first_cause():
    d = ActorDirectory()
    register(d, b"a")
    error = RuntimeError("boom")
    record = d.died(b"a", "init raised", error)
    assert record is d.get(b"a")
    assert record.state == ActorState.DEAD
    assert (record.death_cause, record.death_error) == ("init raised", error)
    assert d.died(b"a", "killed later") is None
    assert (record.death_cause, record.death_error) == ("init raised", error)


def test_died_for_an_unknown_actor_returns_none():
    assert ActorDirectory().died(b"nope", "gone") is None


def test_describe_names_class_id_and_placeholder_for_no_name():
    d = ActorDirectory()
    record, _ = register(d, b"\x01\x02", namespace="prod")
    text = record.describe()
    assert "class_name: Counter" in text
    assert "actor_id: 0102" in text
    assert "name: (none)" in text
    assert "namespace: prod" in text


# --- owned_by ----------------------------------------------------------------------------


def test_owned_by_lists_live_non_detached_actors_of_that_owner_only():
    d = ActorDirectory()
    mine, _ = register(d, b"a")
    restarting, _ = register(d, b"b", max_restarts=1)
    register(d, b"c", detached=True)
    register(d, b"d")
    register(d, b"e", owner=OTHER_OWNER)
    d.worker_lost(b"b", "crashed", owner_alive=True)
    d.died(b"d", "killed")
    assert d.owned_by(OWNER) == [mine, restarting]
    assert [r.actor_id for r in d.owned_by(OTHER_OWNER)] == [b"e"]
    assert d.owned_by(object()) == []


# --- properties --------------------------------------------------------------------------

NAMES = ["", "a", "b"]
NAMESPACES = ["one", "two"]


class DirectoryMachine(RuleBasedStateMachine):
    """Any mix of register/started/worker_lost/died keeps live names unique."""

    def __init__(self):
        super().__init__()
        self.d = ActorDirectory()
        self.next_id = 0

    def live_holders(self, name, namespace):
        return [
            r
            for r in self.d.actors.values()
            if r.name == name and r.namespace == namespace and r.state != ActorState.DEAD
        ]

    def pick(self, data):
        return data.draw(st.sampled_from(sorted(self.d.actors)))

    @rule(
        name=st.sampled_from(NAMES),
        namespace=st.sampled_from(NAMESPACES),
        owner=st.sampled_from([OWNER, OTHER_OWNER]),
        detached=st.booleans(),
        max_restarts=st.sampled_from([-1, 0, 1, 2]),
        get_if_exists=st.booleans(),
    )
    def register(self, name, namespace, owner, detached, max_restarts, get_if_exists):
        self.next_id += 1
        actor_id = self.next_id.to_bytes(4, "big")
        holders = self.live_holders(name, namespace) if name else []
        kwargs = dict(detached=detached, max_restarts=max_restarts, get_if_exists=get_if_exists)
        if holders and not get_if_exists:
            with pytest.raises(ActorAlreadyExistsError):
                register(self.d, actor_id, name, namespace, owner=owner, **kwargs)
            assert self.d.get(actor_id) is None
            return
        record, created = register(self.d, actor_id, name, namespace, owner=owner, **kwargs)
        if holders:
            assert (record, created) == (holders[0], False)
        else:
            assert created and record.actor_id == actor_id
            assert record.state == ActorState.PENDING

    @precondition(lambda self: self.d.actors)
    @rule(data=st.data(), pid=st.integers(1, 99))
    def started(self, data, pid):
        actor_id = self.pick(data)
        was_dead = self.d.get(actor_id).state == ActorState.DEAD
        record = self.d.started(actor_id, f"unix:/w{pid}", pid)
        if was_dead:
            assert record is None
        else:
            assert record.state == ActorState.ALIVE and record.pid == pid

    @precondition(lambda self: self.d.actors)
    @rule(data=st.data(), owner_alive=st.booleans())
    def worker_lost(self, data, owner_alive):
        record = self.d.get(self.pick(data))
        before, restarts = record.state, record.restarts
        state = self.d.worker_lost(record.actor_id, "lost", owner_alive)
        assert state == record.state
        if before == ActorState.DEAD:
            assert state == ActorState.DEAD and record.restarts == restarts
        elif state == ActorState.RESTARTING:
            assert owner_alive and record.restarts == restarts + 1
        else:
            assert state == ActorState.DEAD and record.death_cause.startswith("lost")

    @precondition(lambda self: self.d.actors)
    @rule(data=st.data())
    def died(self, data):
        record = self.d.get(self.pick(data))
        was_dead = record.state == ActorState.DEAD
        returned = self.d.died(record.actor_id, "killed")
        assert record.state == ActorState.DEAD
        assert returned is (None if was_dead else record)

    @invariant()
    def live_names_are_unique_per_namespace(self):
        seen = set()
        for r in self.d.actors.values():
            if r.name and r.state != ActorState.DEAD:
                assert (r.namespace, r.name) not in seen
                seen.add((r.namespace, r.name))

    @invariant()
    def named_finds_exactly_the_live_holder(self):
        for name in NAMES[1:]:
            for namespace in NAMESPACES:
                record = self.d.named(name, namespace)
                holders = self.live_holders(name, namespace)
                if record is None:
                    assert holders == []
                else:
                    assert record.state != ActorState.DEAD
                    assert (record.name, record.namespace) == (name, namespace)
                    assert holders == [record]

    @invariant()
    def list_named_lists_the_live_named_actors(self):
        live = sorted(
            [r.name, r.namespace]
            for r in self.d.actors.values()
            if r.name and r.state != ActorState.DEAD
        )
        assert self.d.list_named(None) == live

    @invariant()
    def restarts_never_exceed_max_restarts(self):
        for r in self.d.actors.values():
            assert r.max_restarts == -1 or r.restarts <= r.max_restarts


DirectoryMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None
)
test_random_operations_keep_live_names_unique = DirectoryMachine.TestCase


def test_the_kept_creation_of_a_detached_actor_goes_when_it_dies():
    directory = ActorDirectory()
    owner, other = object(), object()
    record, _ = directory.register(
        b"d", owner, name="d", namespace="ns", class_name="C", detached=True,
        max_restarts=1, handle_blob=b"h",
    )  # fmt: skip
    assert directory.kept_by(owner) == []  # nothing kept yet
    record.creation = b"spec"
    assert directory.kept_by(owner) == [record] and directory.kept_by(other) == []
    directory.died(b"d", "killed")
    assert record.creation == b"" and directory.kept_by(owner) == []
