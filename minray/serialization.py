"""Turning values into bytes and back: cloudpickle with pickle-5 out-of-band buffers.

``serialize`` returns the pickle stream, the large buffers it refers to (numpy
arrays, bytes-like objects) and the ObjectRefs found inside the value. Small
results travel inline as ``[pickle, *buffers]``; large ones are written to a
shared-memory segment (see object_store/layout.py) and read back zero-copy.

When a value cannot be pickled, :func:`describe_unpicklable` finds the innermost
object responsible so the error can name it.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import hashlib
import os
import pickle
import threading
from typing import Any

import cloudpickle

from .object_store import layout

_tls = threading.local()


class Serialized:
    __slots__ = ("pickled", "buffers", "refs")

    def __init__(self, pickled: bytes, buffers: list, refs: list):
        self.pickled = pickled
        self.buffers = buffers
        self.refs = refs  #: [[object_id, owner], ...] of ObjectRefs inside the value

    @property
    def size(self) -> int:
        return len(self.pickled) + sum(b.raw().nbytes for b in self.buffers)


def note_ref(object_id: bytes, owner: str | None) -> None:
    """Called by ObjectRef.__reduce__: remember a ref found while serializing."""
    refs = getattr(_tls, "refs", None)
    if refs is not None:
        refs.append([object_id, owner])


#: types the C pickler writes exactly as cloudpickle does, with no buffers and no refs
SCALARS = frozenset({type(None), bool, int, float, str, bytes})


def serialize(value: Any, out_of_band: bool = True) -> Serialized:
    """Pickle ``value``; large buffers go out of band unless ``out_of_band`` is False."""
    if type(value) in SCALARS:  # the common small result: no cloudpickle Pickler to build
        return Serialized(pickle.dumps(value, protocol=5), [], [])
    refs: list = []
    buffers: list = []
    outer = getattr(_tls, "refs", None)
    _tls.refs = refs
    try:
        callback = buffers.append if out_of_band else None
        pickled = cloudpickle.dumps(value, protocol=5, buffer_callback=callback)
    finally:
        _tls.refs = outer
    return Serialized(pickled, buffers, refs)


def dumps(value: Any) -> bytes:
    """Plain cloudpickle bytes (functions, exceptions); no ref tracking."""
    return cloudpickle.dumps(value, protocol=5)


def export(obj: Any, what: str, label: str) -> tuple[bytes, bytes]:
    """Pickle a function or class once, to send to workers: (its id, the pickle)."""
    try:
        blob = dumps(obj)
    except Exception as e:
        raise TypeError(f"Could not serialize {what}: " + describe_unpicklable(obj, label)) from e
    return function_id(blob), blob


def function_id(blob: bytes) -> bytes:
    return hashlib.blake2b(blob, digest_size=16).digest()


# --- inline values ----------------------------------------------------------------


def to_inline(s: Serialized) -> list:
    return [s.pickled, *(b.raw().tobytes() for b in s.buffers)]


def from_inline(parts: list) -> Any:
    return pickle.loads(parts[0], buffers=parts[1:])


# --- shared-memory values ---------------------------------------------------------


def plan_segment(s: Serialized) -> layout.Layout:
    return layout.plan(len(s.pickled), [b.raw().nbytes for b in s.buffers])


def write_segment(mem, plan: layout.Layout, s: Serialized) -> None:
    """Copy the value into ``mem`` (a writable mapping of ``plan.total_size`` bytes)."""
    view = memoryview(mem)
    header = layout.pack_header(plan)
    view[: len(header)] = header
    view[plan.pickle_offset : plan.pickle_offset + plan.pickle_length] = s.pickled
    for (offset, length), buf in zip(plan.buffers, s.buffers):
        source = buf.raw().cast("B")
        if length < PARALLEL_COPY_BYTES or source.readonly or COPY_THREADS < 2:
            view[offset : offset + length] = source
        else:
            _parallel_copy(mem, offset, source)
    view.release()


#: buffers at least this large are copied by several threads (memcpy releases the GIL;
#: two threads copy ~19 GB/s here where one copies ~10)
PARALLEL_COPY_BYTES = 16 * 1024 * 1024
COPY_THREADS = min(4, os.cpu_count() or 1)
_copy_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _parallel_copy(mem, offset: int, source: memoryview) -> None:
    global _copy_pool
    if _copy_pool is None:
        _copy_pool = concurrent.futures.ThreadPoolExecutor(COPY_THREADS, "minray-copy")
    destination = ctypes.c_char.from_buffer(mem, offset)
    origin = ctypes.c_char.from_buffer(source)
    try:
        to, frm, total = ctypes.addressof(destination), ctypes.addressof(origin), len(source)
        chunk = -(-total // COPY_THREADS) + 4095 & ~4095  # whole pages per thread
        copies = [
            _copy_pool.submit(ctypes.memmove, to + start, frm + start, min(chunk, total - start))
            for start in range(0, total, chunk)
        ]
        for copy in copies:
            copy.result()
    finally:
        del destination, origin  # release the buffers so the mapping can be closed


def read_segment(mem) -> Any:
    """Rebuild the value from a mapping; buffers stay backed by the mapping (no copy)."""
    plan = layout.read_header(mem)
    view = memoryview(mem)
    stream = view[plan.pickle_offset : plan.pickle_offset + plan.pickle_length]
    buffers = [view[offset : offset + length] for offset, length in plan.buffers]
    return pickle.loads(stream, buffers=buffers)


# --- diagnostics ------------------------------------------------------------------


def _children(value: Any, path: str):
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}[{k!r}]", v
    elif isinstance(value, (list, tuple, set, frozenset)):
        for i, v in enumerate(value):
            yield f"{path}[{i}]", v
    elif callable(value) and getattr(value, "__closure__", None):
        names = value.__code__.co_freevars
        for name, cell in zip(names, value.__closure__):
            try:
                yield f"{path} (closure variable {name!r})", cell.cell_contents
            except ValueError:
                continue
    if callable(value) and hasattr(value, "__code__") and hasattr(value, "__globals__"):
        for name in value.__code__.co_names:
            if name in value.__globals__:
                yield f"{path} (global {name!r})", value.__globals__[name]
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        for k, v in vars(value).items():
            yield f"{path}.{k}", v


def find_unpicklable(value: Any, path: str, depth: int = 0):
    """Return ``(path, obj, error)`` for the innermost unpicklable object, or None."""
    try:
        cloudpickle.dumps(value, protocol=5)
        return None
    except Exception as e:
        error = e
    if depth < 8:
        for child_path, child in _children(value, path):
            found = find_unpicklable(child, child_path, depth + 1)
            if found is not None:
                return found
    return path, value, error


def describe_unpicklable(value: Any, path: str) -> str:
    found = find_unpicklable(value, path)
    if found is None:
        return f"{path} could not be serialized"
    where, obj, error = found
    text = repr(obj)
    if len(text) > 120:
        text = text[:117] + "..."
    return (
        f"{where} is {text} (type {type(obj).__module__}.{type(obj).__qualname__}), "
        f"which cannot be pickled: {type(error).__name__}: {error}"
    )
