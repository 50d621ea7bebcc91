"""The actor behind each "process" of a Pool: runs chunks of items, catching each item's
exception so one failure does not lose its neighbours."""

from __future__ import annotations

import pickle
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.pool import MaybeEncodingError, RemoteTraceback

import cloudpickle

import minray

#: how each item of a chunk is passed to the function
MAP, STARMAP, APPLY = 0, 1, 2


# --- the actor ----------------------------------------------------------------------------


def _portable_error(exc: BaseException) -> tuple[BaseException, str]:
    """The exception and its formatted traceback, replaced by a stand-in if it cannot pickle."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickle.loads(cloudpickle.dumps(exc))
    except Exception as reason:
        exc = MaybeEncodingError(reason, exc)
    return exc, text


def _rebuild_error(exc: BaseException, text: str) -> BaseException:
    """Attach the remote traceback as ``__cause__``, as the stdlib pool does."""
    exc.__cause__ = RemoteTraceback(f'\n"""\n{text}"""')
    return exc


class PoolActor:
    """One process of a Pool: runs the initializer once, then batches of calls."""

    def __init__(self, initializer: Callable | None = None, initargs: tuple | None = None):
        self._init_error = None
        if initializer is not None:
            try:
                initializer(*(initargs or ()))
            except Exception as exc:
                self._init_error = _portable_error(exc)

    def ping(self):
        """None when the initializer ran fine, else (exception, traceback text)."""
        return self._init_error

    def run_batch(self, func: Callable, mode: int, items: list) -> tuple[list, dict | None, float]:
        """Call ``func`` on each item: the values, {offset: error} (or None), and seconds taken."""
        if self._init_error is not None:
            return [None] * len(items), dict.fromkeys(range(len(items)), self._init_error), 0.0
        began = time.perf_counter()
        values = []
        errors = None
        for offset, item in enumerate(items):
            try:
                if mode == MAP:
                    value = func(item)
                elif mode == STARMAP:
                    value = func(*item)
                else:
                    value = func(*item[0], **item[1])
            except Exception as exc:
                value = None
                if errors is None:
                    errors = {}
                errors[offset] = _portable_error(exc)
            values.append(value)
        return values, errors, time.perf_counter() - began


_actor_class = None
_actor_class_lock = threading.Lock()


def _pool_actor_class():
    global _actor_class
    with _actor_class_lock:
        if _actor_class is None:
            _actor_class = minray.remote(PoolActor)
        return _actor_class
