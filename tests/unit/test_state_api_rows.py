"""The state API's pure parts: filters, limit, detail columns, and `minray list` tables."""

from __future__ import annotations

import pytest

from minray.state_cli import _parse_filter, _table
from minray.util.state.api import _select
from minray.util.state.common import ActorState

ROWS = [
    {"actor_id": f"{i:02x}", "class_name": "A" if i % 2 else "B", "state": "ALIVE",
     "job_id": "01000000", "name": "", "node_id": "n", "pid": 100 + i, "ray_namespace": "ns",
     "is_detached": False, "num_restarts": i, "death_cause": None}
    for i in range(5)
]  # fmt: skip


def test_filters_keep_matching_rows_either_way():
    assert [
        a.actor_id for a in _select(ActorState, ROWS, [("class_name", "=", "a")], 100, False)
    ] == [
        "01",
        "03",
    ]
    assert (
        len(_select(ActorState, ROWS, [("class_name", "!=", "A"), ("pid", "=", 104)], 100, False))
        == 1
    )


def test_detail_columns_appear_only_when_asked_and_rows_read_like_dicts():
    plain = _select(ActorState, ROWS, None, 100, False)[3]
    assert plain.num_restarts is None and plain["pid"] == 103 and plain.get("nope", 7) == 7
    detailed = _select(ActorState, ROWS, None, 100, True)[3]
    assert detailed.num_restarts == 3 and detailed.asdict()["is_detached"] is False
    with pytest.raises(KeyError):
        plain["nope"]


def test_limit_truncates_and_bad_filters_say_what_is_allowed():
    assert len(_select(ActorState, ROWS, None, 2, False)) == 2
    with pytest.raises(ValueError, match="not a column of ActorState; use one of actor_id"):
        _select(ActorState, ROWS, [("colour", "=", "red")], 100, False)
    with pytest.raises(ValueError, match="operator '>' is not supported"):
        _select(ActorState, ROWS, [("pid", ">", 1)], 100, False)
    with pytest.raises(ValueError, match="a filter is"):
        _select(ActorState, ROWS, ["state=ALIVE"], 100, False)


def test_the_cli_parses_filters_and_lines_up_tables():
    assert _parse_filter("state=ALIVE") == ("state", "=", "ALIVE")
    assert _parse_filter("name != x=y") == ("name", "!=", "x=y")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        _parse_filter("state")
    table = _table([{"a": 1, "bb": None}, {"a": 22, "bb": {"k": 1}}], ["a", "bb"]).splitlines()
    assert table == ["A   BB", "1   -", '22  {"k": 1}']
    assert _table([], ["a"]) == "(none)"
