"""The head's internal KV (pure), against a dict model with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.head.kv import InternalKV, KvFull

keys = st.sampled_from([b"a", b"ab", b"abc", b"b", b""])
namespaces = st.sampled_from([b"", b"ns"])
ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "del", "delp"]),
        namespaces,
        keys,
        st.binary(max_size=8),
        st.booleans(),
    ),
    max_size=50,
)


@given(ops)
def test_the_store_behaves_like_a_dict_and_counts_its_bytes(steps):
    kv, model = InternalKV(), {}
    for op, ns, key, value, flag in steps:
        if op == "put":
            existed = (ns, key) in model
            assert kv.put(ns, key, value, overwrite=flag) is existed
            if flag or not existed:
                model[(ns, key)] = value
        elif op == "del":
            assert kv.delete(ns, key) == int(model.pop((ns, key), None) is not None)
        else:
            gone = [k for k in model if k[0] == ns and k[1].startswith(key)]
            assert kv.delete(ns, key, by_prefix=True) == len(gone)
            for k in gone:
                del model[k]
        for ns_ in (b"", b"ns"):
            assert kv.keys(ns_, b"") == sorted(k for n, k in model if n == ns_)
        assert kv.used == sum(len(k) + len(v) for (_, k), v in model.items())
    for (ns, key), value in model.items():
        assert kv.get(ns, key) == value and kv.exists(ns, key)


def test_a_put_over_the_budget_is_refused_and_changes_nothing():
    kv = InternalKV(budget=10)
    kv.put(b"", b"k", b"12345", True)
    with pytest.raises(KvFull, match="budget"):
        kv.put(b"", b"j", b"123456", True)
    assert kv.keys(b"", b"") == [b"k"] and kv.used == 6
    assert kv.put(b"", b"k", b"123456789", True) is True  # replacing frees the old value
    assert kv.used == 10
