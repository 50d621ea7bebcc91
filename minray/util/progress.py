"""Progress bars for waiting on many ObjectRefs, with tqdm.

``as_completed(refs)`` yields values as their tasks finish; ``get(refs)``
returns them in input order, like ``minray.get``. Both advance a tqdm bar by
one per finished ref. The bar is written to stderr (tqdm's default), so it
also works when stdout is a pipe or a file; pass ``disable=True`` (or any
other tqdm argument) to change it. A task's error is raised when its value is
reached, as ``minray.get`` would raise it.

Built only on ``minray.wait`` and ``minray.get``: each round waits for at
least one ref, then collects every other ref that is ready by then, so a
burst of finished tasks costs one round, not one per ref.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import minray
from minray import ObjectRef


def _ready_batches(refs: list) -> Iterator[list]:
    """The (distinct) refs in groups, each group as soon as it is ready."""
    pending = list(dict.fromkeys(refs))
    while pending:
        minray.wait(pending, num_returns=1)
        ready, pending = minray.wait(pending, num_returns=len(pending), timeout=0)
        yield ready


def as_completed(
    refs: Iterable[ObjectRef], total: int | None = None, desc: str | None = None, **tqdm_kwargs
) -> Iterator[Any]:
    """Yield the values of ``refs`` in the order their tasks finish, advancing a bar."""
    refs = list(refs)
    counts: dict = {}
    for ref in refs:
        counts[ref] = counts.get(ref, 0) + 1
    from tqdm import tqdm  # here, not at import: it costs every minray process ~20 ms

    with tqdm(total=len(refs) if total is None else total, desc=desc, **tqdm_kwargs) as bar:
        for ready in _ready_batches(refs):
            for ref in ready:
                value = minray.get(ref)
                for _ in range(counts[ref]):  # a ref listed twice is yielded twice
                    bar.update(1)
                    yield value


def get(refs: ObjectRef | Iterable[ObjectRef], desc: str | None = None, **tqdm_kwargs) -> Any:
    """``minray.get(refs)`` with a bar that advances as each ref becomes ready."""
    if isinstance(refs, ObjectRef):
        return get([refs], desc=desc, **tqdm_kwargs)[0]
    refs = list(refs)
    from tqdm import tqdm

    with tqdm(total=len(refs), desc=desc, **tqdm_kwargs) as bar:
        for ready in _ready_batches(refs):
            now_ready = set(ready)
            bar.update(sum(1 for ref in refs if ref in now_ready))
    return minray.get(refs)


__all__ = ["as_completed", "get"]
