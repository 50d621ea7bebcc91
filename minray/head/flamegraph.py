"""A flame graph of folded stacks, as a self-contained SVG. Pure: stacks in, text out.

Each frame is a box: its width is its share of the samples, the stack grows
upward from the root (``all``) at the bottom, and a frame's callees sit on it,
left to right by name, as flamegraph.pl draws them. Each box is one ``<g
class="frame">`` holding a ``<title>`` (the tooltip: the whole label, samples,
percent), a ``<rect>`` and, when it is wide enough, its label cut to fit. Boxes
narrower than ``MIN_WIDTH_PX`` are left out (their samples still count in their
parents). No script and no external file: it shows anywhere, the dashboard's
page included.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

WIDTH_PX = 1200
ROW_PX = 17
PAD_PX = 10
TITLE_PX = 40
#: narrower boxes are not drawn
MIN_WIDTH_PX = 0.1
#: about how wide a character of the 11 px label font is
CHAR_PX = 6.6


@dataclass
class Node:
    """A frame in the merged call tree: its samples include its callees'."""

    name: str
    count: int = 0
    children: dict[str, Node] = field(default_factory=dict)


@dataclass(frozen=True)
class Box:
    """A frame placed in the graph."""

    name: str
    count: int
    depth: int  #: 0: the root
    x: float
    width: float


def call_tree(counts: Mapping[tuple[str, ...], int]) -> Node:
    """The stacks merged into one tree under ``all``; each node counts the samples of
    every stack that passes through it."""
    root = Node("all")
    for stack, count in counts.items():
        if count <= 0:
            continue
        root.count += count
        node = root
        for name in stack:
            node = node.children.setdefault(name, Node(name))
            node.count += count
    return root


def layout(root: Node, width: float) -> list[Box]:
    """Boxes for the tree, the root ``width`` wide; callees sorted by name, left-aligned
    on their caller. Boxes under MIN_WIDTH_PX are dropped with their callees."""
    if root.count <= 0:
        return []
    total = root.count
    boxes: list[Box] = []
    todo = [(root, 0, 0.0)]
    while todo:
        node, depth, x = todo.pop()
        w = node.count * width / total
        if w < MIN_WIDTH_PX:
            continue
        boxes.append(Box(node.name, node.count, depth, x, w))
        left = x
        for name in sorted(node.children):
            child = node.children[name]
            todo.append((child, depth + 1, left))
            left += child.count * width / total
    boxes.sort(key=lambda b: (b.depth, b.x))
    return boxes


def color(name: str) -> str:
    """A warm colour, the same for the same name (hue from red to yellow)."""
    h = zlib.crc32(name.encode())
    return f"rgb({205 + h % 50},{80 + (h >> 8) % 130},{40 + (h >> 16) % 50})"


def fit(label: str, width: float) -> str:
    """The label cut to what ``width`` pixels hold ("" when not even three characters)."""
    room = int((width - 6) / CHAR_PX)
    if room < 3:
        return ""
    return label if len(label) <= room else label[: room - 2] + ".."


def render_svg(
    counts: Mapping[tuple[str, ...], int], title: str, subtitle: str = "", width: int = WIDTH_PX
) -> str:
    """The flame graph of ``counts`` (folded stacks, see runtime/stacks.py) as SVG text."""
    root = call_tree(counts)
    boxes = layout(root, width - 2 * PAD_PX)
    depth = max((b.depth for b in boxes), default=0)
    height = TITLE_PX + (depth + 1) * ROW_PX + PAD_PX
    total = max(root.count, 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flamegraph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" data-samples="{root.count}">',
        "<style>.frame text{font:11px ui-monospace,monospace;fill:#000;pointer-events:none}"
        ".frame:hover rect{stroke:#000;stroke-width:0.6}</style>",
        f'<rect width="{width}" height="{height}" fill="#fdfbf7"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" '
        f'style="font:15px system-ui,sans-serif">{escape(title)}</text>',
        f'<text x="{width / 2}" y="33" text-anchor="middle" '
        f'style="font:11px system-ui,sans-serif;fill:#555">{escape(subtitle)}</text>',
    ]
    if not boxes:
        out.append(f'<text x="{PAD_PX}" y="{TITLE_PX + 12}">no samples</text>')
    for box in boxes:
        x = PAD_PX + box.x
        y = height - PAD_PX - (box.depth + 1) * ROW_PX
        share = 100.0 * box.count / total
        tip = f"{box.name}: {box.count} sample{'s' if box.count != 1 else ''} ({share:.1f}%)"
        out.append(
            f'<g class="frame" data-name={quoteattr(box.name)} data-samples="{box.count}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x:.2f}" y="{y}" width="{box.width:.2f}" height="{ROW_PX - 1}" '
            f'rx="2" fill="{color(box.name)}"/>'
        )
        label = fit(box.name, box.width)
        if label:
            out.append(f'<text x="{x + 3:.2f}" y="{y + ROW_PX - 5}">{escape(label)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
