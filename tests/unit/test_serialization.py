"""minray.serialization: cloudpickle with out-of-band buffers, ref tracking, diagnostics."""

import pickle
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray import serialization
from minray.object_ref import ObjectRef
from minray.object_store import layout
from minray.serialization import (
    describe_unpicklable,
    find_unpicklable,
    from_inline,
    note_ref,
    serialize,
    to_inline,
)


def round_trip(value, out_of_band=True):
    return from_inline(to_inline(serialize(value, out_of_band)))


# --- round trips ------------------------------------------------------------------------

PLAIN_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=10,
)


@given(value=PLAIN_VALUES)
def test_plain_values_survive_inline_round_trip(value):
    assert round_trip(value) == value


def test_functions_and_lambdas_survive_round_trip():
    offset = 10
    fn = round_trip(lambda x: x + offset)
    assert fn(1) == 11


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float64).reshape(3, 4),
        np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
        np.arange(20)[::3],  # not contiguous: pickled in band
        np.zeros(0, dtype=np.uint8),
        np.array([b"ab", b"c"]),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
    ],
    ids=["c-order", "fortran-order", "strided", "empty", "bytes", "structured"],
)
def test_numpy_arrays_survive_inline_round_trip(array):
    out = round_trip({"array": array})["array"]
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)


def test_large_contiguous_arrays_travel_out_of_band():
    array = np.arange(1000, dtype=np.int64)
    other = np.ones(500, dtype=np.float32)
    s = serialize([array, other])
    assert len(s.buffers) == 2
    assert len(s.pickled) < other.nbytes
    assert s.size == len(s.pickled) + array.nbytes + other.nbytes
    parts = to_inline(s)
    assert parts[1:] == [array.tobytes(), other.tobytes()]


def test_arrays_stay_in_band_when_out_of_band_is_off():
    array = np.arange(1000, dtype=np.int64)
    s = serialize(array, out_of_band=False)
    assert s.buffers == []
    assert len(s.pickled) > array.nbytes
    np.testing.assert_array_equal(from_inline(to_inline(s)), array)


def test_array_read_back_from_inline_bytes_is_a_copy_not_the_original():
    array = np.arange(10)
    out = round_trip(array)
    array[0] = 99
    assert out[0] == 0


def test_value_round_trips_through_a_shared_memory_layout():
    value = {"a": np.arange(100, dtype=np.float32), "b": [np.ones((3, 3)), "text"]}
    s = serialize(value)
    plan = serialization.plan_segment(s)
    mem = bytearray(plan.total_size)
    serialization.write_segment(mem, plan, s)
    assert layout.read_header(mem) == plan
    out = serialization.read_segment(mem)
    np.testing.assert_array_equal(out["a"], value["a"])
    np.testing.assert_array_equal(out["b"][0], value["b"][0])
    assert out["b"][1] == "text"


def test_arrays_read_from_a_segment_share_its_memory():
    array = np.arange(64, dtype=np.int64)
    s = serialize(array)
    plan = serialization.plan_segment(s)
    mem = bytearray(plan.total_size)
    serialization.write_segment(mem, plan, s)
    out = serialization.read_segment(mem)
    ((offset, _),) = plan.buffers
    mem[offset] = 42  # writing the mapping changes the array: no copy was made
    assert out[0] == 42
    assert offset % layout.ALIGN == 0


def test_function_id_is_a_stable_digest_of_the_blob():
    blob = serialization.dumps(len)
    assert serialization.function_id(blob) == serialization.function_id(bytes(blob))
    assert len(serialization.function_id(blob)) == 16
    assert serialization.function_id(blob) != serialization.function_id(blob + b"x")


# --- refs found while serializing ---------------------------------------------------------


def test_refs_inside_a_value_are_recorded_in_order():
    a = ObjectRef(b"a" * 28, "unix:/owner-a")
    b = ObjectRef(b"b" * 28, "unix:/owner-b")
    s = serialize({"x": [a, 1], "y": (b,)})
    assert s.refs == [[b"a" * 28, "unix:/owner-a"], [b"b" * 28, "unix:/owner-b"]]
    out = from_inline(to_inline(s))
    assert out["x"][0] == a and out["x"][0].owner_address == "unix:/owner-a"


def test_value_without_refs_records_none():
    assert serialize([1, "two", np.arange(3)]).refs == []


def test_note_ref_outside_serialize_is_ignored():
    note_ref(b"x" * 28, "unix:/o")  # must not raise nor leak into the next serialize
    assert serialize(1).refs == []


def test_pickling_a_ref_outside_serialize_records_nothing():
    ref = ObjectRef(b"r" * 28, "unix:/o")
    pickle.dumps(ref)
    serialization.dumps(ref)
    assert serialize("plain").refs == []


class SerializesInside:
    """While being pickled, serializes another value (a nested serialize call)."""

    def __init__(self, inner):
        self.inner = inner
        self.inner_refs = None

    def __reduce__(self):
        self.inner_refs = serialize(self.inner).refs
        return list, ([],)


def test_nested_serialize_keeps_refs_of_outer_and_inner_apart():
    before = ObjectRef(b"o" * 28, "unix:/outer")
    after = ObjectRef(b"p" * 28, "unix:/outer")
    inner_ref = ObjectRef(b"i" * 28, "unix:/inner")
    nested = SerializesInside([inner_ref])
    s = serialize([before, nested, after])
    assert nested.inner_refs == [[b"i" * 28, "unix:/inner"]]
    assert s.refs == [[b"o" * 28, "unix:/outer"], [b"p" * 28, "unix:/outer"]]


def test_one_ref_object_appearing_twice_is_recorded_once_as_pickle_shares_it():
    ref = ObjectRef(b"a" * 28, "unix:/o")
    s = serialize([ref, ref])
    assert s.refs == [[b"a" * 28, "unix:/o"]]
    first, second = from_inline(to_inline(s))
    assert first is second


def test_failed_serialize_stops_recording_refs():
    with pytest.raises(TypeError):
        serialize([ObjectRef(b"a" * 28, "unix:/o"), threading.Lock()])
    note_ref(b"z" * 28, "unix:/o")
    assert serialize(2).refs == []


# --- finding what cannot be pickled ---------------------------------------------------------


class Holder:
    def __init__(self, thing):
        self.thing = thing


def make_closure():
    lock = threading.Lock()

    def uses_lock():
        return lock

    return uses_lock


def test_picklable_value_has_no_culprit():
    assert find_unpicklable({"a": [1, 2]}, "value") is None
    assert describe_unpicklable(3, "value") == "value could not be serialized"


@pytest.mark.parametrize(
    "value, where",
    [
        (threading.Lock(), "arg"),
        ({"key": threading.Lock()}, "arg['key']"),
        ([1, 2, threading.Lock()], "arg[2]"),
        ((0, [{"deep": threading.Lock()}]), "arg[1][0]['deep']"),
        (Holder(threading.Lock()), "arg.thing"),
        ({"h": [Holder(Holder(threading.Lock()))]}, "arg['h'][0].thing.thing"),
        (make_closure(), "arg (closure variable 'lock')"),
        ({"fns": [make_closure()]}, "arg['fns'][0] (closure variable 'lock')"),
        (Holder(make_closure()), "arg.thing (closure variable 'lock')"),
    ],
    ids=[
        "bare",
        "dict",
        "list",
        "nested",
        "attribute",
        "attributes",
        "closure",
        "closure-in-list",
        "closure-in-attribute",
    ],
)
def test_describe_unpicklable_names_the_path_to_a_nested_lock(value, where):
    text = describe_unpicklable(value, "arg")
    assert text.startswith(where + " is <unlocked _thread.lock object"), text
    assert "_thread.lock" in text
    assert "cannot be pickled: TypeError" in text


def test_find_unpicklable_returns_the_innermost_object_and_its_error():
    lock = threading.Lock()
    where, obj, error = find_unpicklable({"a": Holder(lock)}, "v")
    assert where == "v['a'].thing"
    assert obj is lock
    assert isinstance(error, TypeError)


def test_describe_unpicklable_shortens_long_reprs():
    class Loud:
        def __repr__(self):
            return "L" * 500

        def __reduce__(self):
            raise TypeError("no")

    text = describe_unpicklable([Loud()], "x")
    assert "L" * 117 + "..." in text
    assert "L" * 118 not in text


def test_a_buffer_large_enough_for_the_parallel_copy_arrives_intact():
    import mmap

    from minray import serialization

    array = np.random.default_rng(0).integers(0, 2**62, size=5 * 1024 * 1024 + 3)  # ~40 MiB
    assert array.nbytes >= serialization.PARALLEL_COPY_BYTES
    s = serialization.serialize(array)
    plan = serialization.plan_segment(s)
    mem = mmap.mmap(-1, plan.total_size)
    serialization.write_segment(mem, plan, s)
    copy = serialization.read_segment(mem)
    assert np.array_equal(copy, array)
    del copy
    mem.close()  # the copy released every view of the mapping
