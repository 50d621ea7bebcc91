"""minray.runtime.refcount.ReferenceCounter: who still needs an object (pure)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from minray.runtime.refcount import Free, ReferenceCounter, Release

ME = "unix:/me"
OWNER = "unix:/owner"
PEER = "unix:/peer"
OTHER = "unix:/other"
X = b"x" * 28
Y = b"y" * 28
Z = b"z" * 28


def owned(*object_ids):
    rc = ReferenceCounter(ME)
    for object_id in object_ids:
        rc.add_owned(object_id)
        rc.add_local(object_id, ME)
    return rc


# --- owned objects ----------------------------------------------------------------------


def test_owned_object_is_freed_when_its_last_local_ref_goes():
    rc = owned(X)
    rc.add_local(X, ME)
    assert rc.remove_local(X) == []
    assert X in rc
    assert rc.remove_local(X) == [Free(X)]
    assert X not in rc and len(rc) == 0


def test_owner_of_names_the_owner_until_the_object_is_gone():
    rc = owned(X)
    rc.add_local(Y, OWNER)
    assert rc.owner_of(X) == ME
    assert rc.owner_of(Y) == OWNER
    rc.remove_local(X)
    assert rc.owner_of(X) is None


def test_removing_refs_of_unknown_objects_does_nothing():
    rc = ReferenceCounter(ME)
    assert rc.remove_local(X) == []
    assert rc.remove_hold(X) == []
    assert rc.remove_submitted([X]) == []
    assert rc.remove_borrower(X, PEER, 1) == []
    assert rc.peer_died(PEER) == []


def test_submitted_task_keeps_its_argument_alive():
    rc = owned(X)
    rc.add_submitted([[X, ME]])
    assert rc.remove_local(X) == []
    assert rc.counts(X)["submitted"] == 1
    assert rc.remove_submitted([X]) == [Free(X)]


def test_one_task_can_take_the_same_object_twice():
    rc = owned(X)
    rc.add_submitted([[X, ME], [X, ME]])
    rc.remove_local(X)
    assert rc.remove_submitted([X]) == []
    assert rc.remove_submitted([X]) == [Free(X)]


def test_removing_submitted_refs_frees_each_object_that_is_done():
    rc = owned(X, Y)
    rc.add_submitted([[X, ME], [Y, ME]])
    rc.remove_local(X)
    assert rc.remove_submitted([X, Y]) == [Free(X)]
    assert Y in rc


def test_hold_keeps_an_object_alive():
    rc = owned(X)
    rc.add_hold(X, ME)
    assert rc.remove_local(X) == []
    assert rc.remove_hold(X) == [Free(X)]


# --- borrowers --------------------------------------------------------------------------


def test_borrower_keeps_an_owned_object_alive_until_it_releases_every_grant():
    rc = owned(X)
    rc.add_borrower(X, PEER)
    rc.add_borrower(X, PEER)
    rc.add_borrower(X, OTHER)
    assert rc.remove_local(X) == []
    assert rc.counts(X)["borrowers"] == {PEER: 2, OTHER: 1}
    assert rc.remove_borrower(X, PEER, 1) == []
    assert rc.counts(X)["borrowers"] == {PEER: 1, OTHER: 1}
    assert rc.remove_borrower(X, OTHER, 1) == []
    assert rc.remove_borrower(X, PEER, 1) == [Free(X)]


def test_borrower_can_release_several_grants_at_once():
    rc = owned(X)
    for _ in range(3):
        rc.add_borrower(X, PEER)
    rc.remove_local(X)
    assert rc.remove_borrower(X, PEER, 3) == [Free(X)]


def test_release_from_a_process_that_is_not_a_borrower_is_ignored():
    rc = owned(X)
    rc.add_borrower(X, PEER)
    assert rc.remove_borrower(X, OTHER, 1) == []
    assert rc.counts(X)["borrowers"] == {PEER: 1}


def test_sending_a_ref_to_ourselves_is_not_a_borrow():
    rc = owned(X)
    rc.add_borrower(X, ME)
    assert rc.counts(X)["borrowers"] == {}
    assert rc.remove_local(X) == [Free(X)]


def test_sending_a_borrowed_ref_back_to_its_owner_is_not_a_borrow():
    rc = ReferenceCounter(ME)
    rc.record_grant(X, OWNER, PEER)
    rc.add_local(X, OWNER)
    rc.add_borrower(X, OWNER)
    assert rc.counts(X)["borrowers"] == {}
    assert rc.remove_local(X) == [Release(PEER, X, 1)]


def test_add_borrower_of_an_unknown_object_is_ignored():
    rc = ReferenceCounter(ME)
    rc.add_borrower(X, PEER)
    assert X not in rc


def test_peer_died_drops_every_grant_to_that_borrower():
    rc = owned(X, Y)
    for _ in range(3):
        rc.add_borrower(X, PEER)
    rc.add_borrower(Y, PEER)
    rc.add_borrower(Y, OTHER)
    rc.remove_local(X)
    rc.remove_local(Y)
    assert rc.peer_died(PEER) == [Free(X)]
    assert rc.counts(Y)["borrowers"] == {OTHER: 1}
    assert rc.peer_died(PEER) == []
    assert rc.peer_died(OTHER) == [Free(Y)]


# --- borrowed refs and grants ---------------------------------------------------------------


def test_borrowed_ref_released_to_its_grantor_when_its_last_use_goes():
    rc = ReferenceCounter(ME)
    assert rc.record_grant(X, OWNER, OWNER) == []
    rc.add_local(X, OWNER)
    assert rc.counts(X)["grants"] == {OWNER: 1}
    assert rc.remove_local(X) == [Release(OWNER, X, 1)]
    assert X not in rc


def test_a_second_grant_for_a_ref_we_already_hold_is_handed_back_at_once():
    rc = ReferenceCounter(ME)
    assert rc.record_grant(X, OWNER, OWNER) == []
    rc.add_local(X, OWNER)
    assert rc.record_grant(X, OWNER, OWNER) == [Release(OWNER, X, 1)]
    assert rc.record_grant(X, OWNER, PEER) == [Release(PEER, X, 1)]  # passed on by a borrower
    rc.add_local(X, OWNER)
    assert rc.counts(X)["grants"] == {OWNER: 1}
    assert rc.remove_local(X) == []
    assert rc.remove_local(X) == [Release(OWNER, X, 1)]


def test_grant_received_after_the_ref_was_released_is_kept_again():
    rc = ReferenceCounter(ME)
    rc.record_grant(X, OWNER, PEER)
    rc.add_local(X, OWNER)
    assert rc.remove_local(X) == [Release(PEER, X, 1)]
    assert rc.record_grant(X, OWNER, OTHER) == []
    rc.add_local(X, OWNER)
    assert rc.remove_local(X) == [Release(OTHER, X, 1)]


def test_borrowed_ref_stays_while_we_lend_it_on():
    rc = ReferenceCounter(ME)
    rc.record_grant(X, OWNER, OWNER)
    rc.add_local(X, OWNER)
    rc.add_borrower(X, PEER)  # we passed it to PEER: keep our own grant
    assert rc.remove_local(X) == []
    assert rc.remove_borrower(X, PEER, 1) == [Release(OWNER, X, 1)]


def test_our_own_object_coming_back_is_not_a_grant():
    rc = owned(X)
    assert rc.record_grant(X, ME, PEER) == []
    assert rc.record_grant(Y, OWNER, ME) == []
    assert rc.counts(X)["grants"] == {}
    assert rc.counts(Y)["grants"] == {}
    assert rc.remove_local(X) == [Free(X)]


def test_borrowed_ref_without_grants_is_forgotten_silently():
    rc = ReferenceCounter(ME)
    rc.add_local(X, OWNER)
    assert rc.remove_local(X) == []
    assert X not in rc


# --- nested refs ---------------------------------------------------------------------


def test_set_contains_holds_inner_refs_until_the_outer_object_is_freed():
    rc = owned(X, Y)
    rc.set_contains(X, [[Y, ME]])
    assert rc.remove_local(Y) == []  # X's value still contains Y
    assert rc.counts(Y)["holds"] == 1
    assert rc.remove_local(X) == [Free(X), Free(Y)]
    assert len(rc) == 0


def test_freeing_an_outer_object_cascades_through_several_levels():
    rc = owned(X, Y, Z)
    rc.set_contains(X, [[Y, ME]])
    rc.set_contains(Y, [[Z, ME]])
    assert rc.remove_local(Z) == []
    assert rc.remove_local(Y) == []
    assert rc.remove_local(X) == [Free(X), Free(Y), Free(Z)]


def test_inner_ref_with_its_own_users_outlives_the_outer_object():
    rc = owned(X, Y)
    rc.set_contains(X, [[Y, ME]])
    assert rc.remove_local(X) == [Free(X)]
    assert rc.counts(Y) == {"local": 1, "submitted": 0, "holds": 0, "borrowers": {}, "grants": {}}
    assert rc.remove_local(Y) == [Free(Y)]


def test_outer_object_holding_a_borrowed_ref_releases_it_to_the_grantor():
    rc = owned(X)
    rc.record_grant(Y, OWNER, PEER)
    rc.set_contains(X, [[Y, OWNER]])
    assert rc.remove_local(X) == [Free(X), Release(PEER, Y, 1)]


def test_object_containing_the_same_ref_twice_holds_it_twice():
    rc = owned(X, Y)
    rc.set_contains(X, [[Y, ME], [Y, ME]])
    assert rc.counts(Y)["holds"] == 2
    rc.remove_local(Y)
    assert rc.remove_local(X) == [Free(X), Free(Y)]


def test_set_contains_of_an_unknown_object_holds_nothing():
    rc = owned(Y)
    rc.set_contains(X, [[Y, ME]])
    assert rc.counts(Y)["holds"] == 0


# --- properties ------------------------------------------------------------------------

KINDS = ["local", "submitted", "hold", "borrower:" + PEER, "borrower:" + OTHER]


def acquire(rc, kind):
    if kind == "local":
        rc.add_local(X, ME)
    elif kind == "submitted":
        rc.add_submitted([[X, ME]])
    elif kind == "hold":
        rc.add_hold(X, ME)
    else:
        rc.add_borrower(X, kind.split(":", 1)[1])


def release(rc, kind, count=1):
    if kind == "local":
        return rc.remove_local(X)
    if kind == "submitted":
        return rc.remove_submitted([X])
    if kind == "hold":
        return rc.remove_hold(X)
    return rc.remove_borrower(X, kind.split(":", 1)[1], count)


@st.composite
def balanced_histories(draw):
    """A first reference held to the end, and acquire/release pairs interleaved in between.

    Borrowers release their grants in chunks (``remove_borrower`` with a count), so one
    release can stand for several acquisitions.
    """
    first = draw(st.sampled_from(["local", "submitted", "hold"]))
    kinds = draw(st.lists(st.sampled_from(KINDS), max_size=12))
    order = draw(st.permutations(range(2 * len(kinds))))
    # pair i is acquired at the earlier and released at the later of its two slots
    slots = {}
    for position, slot in enumerate(order):
        slots.setdefault(slot // 2, []).append(position)
    events = []
    for i, kind in enumerate(kinds):
        start, end = sorted(slots[i])
        events.append((start, "acquire", kind))
        events.append((end, "release", kind))
    events.sort()
    steps = [("acquire", first)] + [(op, kind) for _, op, kind in events]
    # merge consecutive borrower releases of the same borrower into one counted release
    merged = []
    for op, kind in steps:
        if (
            op == "release"
            and kind.startswith("borrower")
            and merged
            and merged[-1][:2] == (op, kind)
            and draw(st.booleans())
        ):
            merged[-1] = (op, kind, merged[-1][2] + 1)
        else:
            merged.append((op, kind, 1))
    return merged + [("release", first, 1)]


@settings(max_examples=200)
@given(history=balanced_histories())
def test_balanced_history_frees_the_object_exactly_once_at_the_end(history):
    rc = ReferenceCounter(ME)
    rc.add_owned(X)
    frees = []
    for step, (op, kind, count) in enumerate(history):
        if op == "acquire":
            acquire(rc, kind)
        else:
            for action in release(rc, kind, count):
                assert action == Free(X), action
                frees.append(step)
    assert frees == [len(history) - 1]
    assert X not in rc


@settings(max_examples=200)
@given(ops=st.lists(st.tuples(st.sampled_from(KINDS), st.booleans()), max_size=30))
def test_object_is_freed_exactly_when_its_modelled_count_drops_to_zero(ops):
    """Against a simple model: any history that never releases more than it acquired."""
    rc = ReferenceCounter(ME)
    rc.add_owned(X)
    rc.add_local(X, ME)
    model = {kind: 0 for kind in KINDS}
    model["local"] = 1
    freed = False
    for kind, is_acquire in ops:
        if freed:
            break
        if is_acquire:
            acquire(rc, kind)
            model[kind] += 1
        elif model[kind]:
            actions = release(rc, kind)
            model[kind] -= 1
            if sum(model.values()) == 0:
                assert actions == [Free(X)]
                freed = True
            else:
                assert actions == []
                assert rc.counts(X)["local"] == model["local"]
    assert (X not in rc) == freed


@settings(max_examples=100)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(["grant", "use", "drop"]), st.sampled_from([OWNER, PEER, OTHER])),
        max_size=25,
    )
)
def test_every_grant_received_is_released_to_its_grantor_exactly_once(events):
    """Whether handed back at once or when the last use goes, grants all go home."""
    rc = ReferenceCounter(ME)
    received = {}
    released = {}
    uses = 0

    def count(actions):
        for action in actions:
            assert isinstance(action, Release) and action.object_id == X
            released[action.grantor] = released.get(action.grantor, 0) + action.count

    for kind, grantor in events:
        if kind == "grant":
            received[grantor] = received.get(grantor, 0) + 1
            count(rc.record_grant(X, OWNER, grantor))
        elif kind == "use":
            uses += 1
            rc.add_local(X, OWNER)
        elif uses:
            uses -= 1
            count(rc.remove_local(X))
        if X in rc:
            assert sum(rc.counts(X)["grants"].values()) <= 1  # never more than one kept
    while uses:
        uses -= 1
        count(rc.remove_local(X))
    if X in rc:  # granted but never used: the grant is still held
        assert rc.counts(X)["local"] == 0
        for grantor, n in rc.counts(X)["grants"].items():
            released[grantor] = released.get(grantor, 0) + n
    assert released == received
