"""``minray.wait``: its arguments checked as Ray checks them, then the wait itself.

The checks run at C speed (``set(map(...))``): ``wait`` is called in loops, on
lists of thousands of refs. A list of plain refs waits in the ObjectReader; one
that holds generators too in ``object_ref_generator.wait_any``.
"""

from __future__ import annotations

from collections.abc import Callable

from .object_ref import REF_ID, ObjectRef
from .object_ref_generator import ObjectRefGenerator, wait_any

_WAITABLE = {ObjectRef, ObjectRefGenerator}
_PLAIN = {ObjectRef}


def wait(get_worker: Callable, object_refs, num_returns: int, timeout: float | None):
    """``minray.wait``; ``get_worker`` is called once the arguments are found good."""
    if isinstance(object_refs, (ObjectRef, ObjectRefGenerator)):
        what = type(object_refs).__name__
        raise TypeError(f"wait() expected a list of minray.ObjectRef, got a single minray.{what}")
    if not isinstance(object_refs, list):
        raise TypeError(f"wait() expected a list of minray.ObjectRef, got {type(object_refs)}")
    if timeout is not None and timeout < 0:
        raise ValueError(f"The 'timeout' argument must be nonnegative. Received {timeout}")
    kinds = set(map(type, object_refs))
    if not kinds <= _WAITABLE:
        for value in object_refs:
            if not isinstance(value, (ObjectRef, ObjectRefGenerator)):
                raise TypeError(
                    f"wait() expected a list of minray.ObjectRef, got list containing {type(value)}"
                )
    if not object_refs:
        return [], []
    unique = set(map(REF_ID, object_refs)) if kinds == _PLAIN else set(object_refs)
    if len(unique) != len(object_refs):
        raise ValueError("Wait requires a list of unique object refs.")
    if num_returns <= 0:
        raise ValueError(f"Invalid number of objects to return {num_returns}.")
    if num_returns > len(object_refs):
        raise ValueError(
            "num_returns cannot be greater than the number of objects provided to "
            f"minray.wait ({num_returns} > {len(object_refs)})."
        )
    worker = get_worker()
    if ObjectRefGenerator not in kinds:
        return worker.objects.wait(object_refs, int(num_returns), timeout)
    return wait_any(worker, object_refs, int(num_returns), timeout)
