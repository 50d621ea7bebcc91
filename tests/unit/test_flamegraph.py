"""minray.head.flamegraph: folded stacks drawn as SVG boxes whose widths are their samples."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from minray.head.flamegraph import (
    MIN_WIDTH_PX,
    PAD_PX,
    WIDTH_PX,
    call_tree,
    fit,
    layout,
    render_svg,
)

SVG = "{http://www.w3.org/2000/svg}"


def frames(svg: str) -> dict[str, list[tuple[int, float, float, float]]]:
    """``{name: [(samples, x, y, width), ...]}`` of the drawn boxes."""
    root = ET.fromstring(svg)
    out: dict = {}
    for g in root.iter(f"{SVG}g"):
        rect = g.find(f"{SVG}rect")
        box = (int(g.get("data-samples")), float(rect.get("x")), float(rect.get("y")),
               float(rect.get("width")))  # fmt: skip
        out.setdefault(g.get("data-name"), []).append(box)
    return out


def test_a_known_set_of_stacks_gives_boxes_as_wide_as_their_samples():
    counts = {("thread main", "a", "b"): 3, ("thread main", "a", "c"): 1}
    svg = render_svg(counts, "actor X", "4 samples")
    drawn = frames(svg)
    full = WIDTH_PX - 2 * PAD_PX
    assert [box[0] for box in drawn["all"]] == [4]
    assert drawn["all"][0][3] == full
    assert drawn["thread main"][0][3] == full and drawn["a"][0][3] == full
    (b,), (c,) = drawn["b"], drawn["c"]
    assert (b[0], b[3]) == (3, full * 0.75) and (c[0], c[3]) == (1, full * 0.25)
    assert b[1] == PAD_PX and c[1] == PAD_PX + full * 0.75  # callees left to right by name
    assert b[2] == c[2] < drawn["a"][0][2] < drawn["all"][0][2]  # the stack grows upward
    assert ET.fromstring(svg).get("data-samples") == "4"
    assert "<title>b: 3 samples (75.0%)</title>" in svg
    assert "actor X" in svg and "4 samples" in svg


def test_labels_are_escaped_and_cut_to_fit_their_box():
    svg = render_svg({("<script>&", "f (x.py:1)"): 1}, "t <b>")
    ET.fromstring(svg)  # well-formed
    assert "<script>" not in svg and "&lt;script&gt;&amp;" in svg and "t &lt;b&gt;" in svg
    assert fit("a_long_function_name", 40) == "a_l.." and fit("abc", 10) == ""
    assert fit("short", 500) == "short"


def test_no_samples_draws_an_empty_graph_that_says_so():
    svg = render_svg({}, "nothing")
    assert "no samples" in svg and frames(svg) == {}


def test_boxes_too_narrow_to_see_are_left_out_but_their_samples_count_above():
    counts = {("a",): 100_000, ("b",): 1}
    boxes = layout(call_tree(counts), 1000)
    assert [box.name for box in boxes] == ["all", "a"]
    assert boxes[0].count == 100_001 and 1000 / 100_001 < MIN_WIDTH_PX


stacks = st.dictionaries(
    st.lists(st.sampled_from("abcde"), min_size=1, max_size=5).map(tuple),
    st.integers(1, 50),
    max_size=20,
)


@given(stacks)
def test_every_frame_counts_at_least_its_callees_and_the_root_counts_all(counts):
    root = call_tree(counts)
    assert root.count == sum(counts.values())
    todo = [root]
    while todo:
        node = todo.pop()
        assert node.count >= sum(child.count for child in node.children.values())
        todo.extend(node.children.values())


@given(stacks)
def test_callees_sit_within_their_caller(counts):
    boxes = layout(call_tree(counts), 1000.0)
    by_depth: dict[int, list] = {}
    for box in boxes:
        by_depth.setdefault(box.depth, []).append(box)
    for box in boxes:
        if box.depth == 0:
            assert (box.x, box.width) == (0.0, 1000.0)
            continue
        parents = [p for p in by_depth[box.depth - 1] if p.x - 1e-6 <= box.x]
        parent = max(parents, key=lambda p: p.x)
        assert box.x + box.width <= parent.x + parent.width + 1e-6
