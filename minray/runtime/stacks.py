"""Python stacks of a process's threads, read in-process: a dump now, and folded counts
from sampling. Pure: no threads, no clock, no I/O (runtime/stack_sampling.py runs it).

A *snapshot* is what ``sys._current_frames()`` returns, ``{thread id: innermost
frame}``, plus the threads' names. Two shapes come out of it:

* a **dump**: per thread, its frames as ``(file, line, function)``, outermost first
  and innermost last, printed as faulthandler and ``py-spy dump`` print them
  (:func:`format_dump`);
* **folded stacks** (Brendan Gregg's format, as ``py-spy record -f raw`` writes and
  speedscope reads): each distinct stack, ``("thread NAME", outermost label, ...,
  innermost label)``, with the number of samples that saw it (:class:`Folder`).
  Stacks stay tuples until printed, so a ``;`` in a file name cannot split a frame.

The rule it keeps: one sample counts once per thread it saw, so a thread's share of
the samples is the share of the time it was seen running there.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from types import FrameType

#: ``(file, line, function)``
Frame = tuple[str, int, str]
#: ``(thread name, thread id, frames outermost first)``
ThreadStack = tuple[str, int, list[Frame]]
#: a folded stack: ``("thread NAME", outermost label, ..., innermost label)``
Stack = tuple[str, ...]

#: bounds of a profile, checked where it is asked for and where it runs
MIN_DURATION_S = 0.1
MAX_DURATION_S = 60.0
MIN_RATE_HZ = 1
MAX_RATE_HZ = 1000
DEFAULT_RATE_HZ = 100
#: seconds a process has to answer, beyond a profile's duration; each hop further from
#: it (its node, the head, a CLI) waits this much longer than the one before
ANSWER_TIMEOUT_S = 5.0
#: a stack deeper than this is cut (its outermost frames are kept)
MAX_DEPTH = 256


def profile_problem(duration_s: float, rate_hz: int) -> str:
    """Why a profile of ``duration_s`` seconds at ``rate_hz`` cannot be taken ("" if it can)."""
    if (
        isinstance(duration_s, bool)
        or not isinstance(duration_s, (int, float))
        or not (MIN_DURATION_S <= duration_s <= MAX_DURATION_S)
    ):
        return (
            f"duration must be a number of seconds from {MIN_DURATION_S:g} to "
            f"{MAX_DURATION_S:g}, got {duration_s!r}"
        )
    if (
        isinstance(rate_hz, bool)
        or not isinstance(rate_hz, int)
        or not (MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ)
    ):
        return (
            f"rate must be a whole number of samples a second from {MIN_RATE_HZ} to "
            f"{MAX_RATE_HZ}, got {rate_hz!r}"
        )
    return ""


def frames_of(frame: FrameType | None) -> list[Frame]:
    """The stack ending at ``frame``, outermost first, at most MAX_DEPTH frames."""
    frames: list[Frame] = []
    while frame is not None:
        code = frame.f_code
        frames.append((code.co_filename, frame.f_lineno or 0, code.co_name))
        frame = frame.f_back
    frames.reverse()
    return frames[:MAX_DEPTH]


def snapshot(
    current: Mapping[int, FrameType],
    names: Mapping[int, str],
    exclude: Collection[int] = (),
) -> list[ThreadStack]:
    """Each thread's stack in ``current`` (``sys._current_frames()``), but those in
    ``exclude``; the main thread first, then by name."""
    threads = [
        (names.get(ident, f"Thread-{ident}"), ident, frames_of(frame))
        for ident, frame in current.items()
        if ident not in exclude
    ]
    threads.sort(key=lambda t: (t[0] != "MainThread", t[0], t[1]))
    return threads


def format_dump(threads: Iterable[ThreadStack]) -> str:
    """The stacks as text, each thread's innermost call last (as a traceback reads)."""
    lines = []
    for name, ident, frames in threads:
        lines.append(f'Thread {ident} "{name}" (most recent call last):')
        for file, line, function in frames:
            lines.append(f'  File "{file}", line {line}, in {function}')
        if not frames:
            lines.append("  (no Python frames)")
        lines.append("")
    return "\n".join(lines)


def short_path(path: str) -> str:
    """The last two parts of a file's path (``minray/api.py``): enough to tell files apart
    in a flame graph without its width going to site-packages."""
    head, tail = os.path.split(path)
    parent = os.path.basename(head)
    return f"{parent}/{tail}" if parent else tail


def frame_label(frame: Frame) -> str:
    """``function (dir/file.py:line)``: a frame in a folded stack."""
    file, line, function = frame
    return f"{function} ({short_path(file)}:{line})"


class Folder:
    """Folded stacks from samples: :meth:`add` one snapshot's threads at a time."""

    def __init__(self) -> None:
        self.counts: dict[Stack, int] = {}
        self.samples = 0  #: snapshots added
        self._labels: dict[Frame, str] = {}  #: cache: the same frames recur every sample

    def add(self, threads: Iterable[ThreadStack]) -> None:
        self.samples += 1
        labels, counts = self._labels, self.counts
        if len(labels) > 100_000:  # (bounded, for a long profile of generated code)
            labels.clear()
        for name, _, frames in threads:
            stack = [f"thread {name}"]
            for frame in frames:
                label = labels.get(frame)
                if label is None:
                    label = labels[frame] = frame_label(frame)
                stack.append(label)
            key = tuple(stack)
            counts[key] = counts.get(key, 0) + 1

    def rows(self) -> list[list]:
        """``[[list of labels, count], ...]``, as the Profile message carries them."""
        return [[list(stack), count] for stack, count in self.counts.items()]


def fold(stacks: Iterable[Stack]) -> dict[Stack, int]:
    """How many times each stack occurs."""
    counts: dict[Stack, int] = {}
    for stack in stacks:
        counts[stack] = counts.get(stack, 0) + 1
    return counts


def merge(*foldings: Mapping[Stack, int]) -> dict[Stack, int]:
    """The counts of several foldings added up (profiles of one process, or of several)."""
    total: dict[Stack, int] = {}
    for counts in foldings:
        for stack, count in counts.items():
            total[stack] = total.get(stack, 0) + count
    return total


def from_rows(rows: Iterable) -> dict[Stack, int]:
    """The folding a Profile message carries (:meth:`Folder.rows`), with tuples again."""
    counts: dict[Stack, int] = {}
    for stack, count in rows:
        key = tuple(stack)
        counts[key] = counts.get(key, 0) + int(count)
    return counts


def folded_text(counts: Mapping[Stack, int]) -> str:
    """Folded stacks as text, one ``label;label;... count`` line per stack, sorted (speedscope
    and flamegraph.pl read it); a ``;`` or line break inside a label becomes a space."""
    lines = []
    for stack, count in sorted(counts.items()):
        lines.append(";".join(_clean(label) for label in stack) + f" {count}")
    return "\n".join(lines) + ("\n" if lines else "")


def parse_folded(text: str) -> dict[Stack, int]:
    """The counts of :func:`folded_text`'s output (ValueError on a line without a count)."""
    counts: dict[Stack, int] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            raise ValueError(f"line {number} is not 'frame;frame;... count': {line!r}")
        key = tuple(stack.split(";"))
        counts[key] = counts.get(key, 0) + int(count)
    return counts


def _clean(label: str) -> str:
    return label.replace(";", " ").replace("\n", " ").replace("\r", " ")
