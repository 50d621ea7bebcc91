"""The cluster's internal key-value store, as Ray's ``ray.experimental.internal_kv``.

Small values shared by every driver, task and actor of a cluster, kept by the
head (``minray/head/kv.py``); they go when the head stops. Keys and values are
``bytes`` (a ``str`` is encoded as UTF-8); every call takes an optional
``namespace``. Large data belongs in the object store (``minray.put``).
"""

from __future__ import annotations

from .. import api
from ..protocol.connection import RemoteError
from ..protocol.messages import KvRequest

__all__ = [
    "_internal_kv_del",
    "_internal_kv_exists",
    "_internal_kv_get",
    "_internal_kv_initialized",
    "_internal_kv_list",
    "_internal_kv_put",
]


def _internal_kv_initialized() -> bool:
    """Whether this process is connected to a cluster (so the KV can be used)."""
    return api.is_initialized()


def _internal_kv_put(
    key: str | bytes, value: str | bytes, overwrite: bool = True, *, namespace=None
) -> bool:
    """Store ``value`` under ``key``; with ``overwrite=False`` an existing value stays.
    Returns whether the key existed already (as Ray's does)."""
    return _ask("put", key, namespace, _bytes(value, "value"), bool(overwrite))


def _internal_kv_get(key: str | bytes, *, namespace=None) -> bytes | None:
    """The value stored under ``key``, or None."""
    return _ask("get", key, namespace)


def _internal_kv_exists(key: str | bytes, *, namespace=None) -> bool:
    return _ask("exists", key, namespace)


def _internal_kv_del(key: str | bytes, *, del_by_prefix: bool = False, namespace=None) -> int:
    """Delete ``key`` (or, with ``del_by_prefix``, every key starting with it); returns
    how many keys were deleted."""
    return _ask("del", key, namespace, None, bool(del_by_prefix))


def _internal_kv_list(prefix: str | bytes, *, namespace=None) -> list[bytes]:
    """The keys that start with ``prefix``, sorted."""
    return _ask("keys", prefix, namespace)


def _ask(op: str, key, namespace, value=None, flag: bool = False):
    request = KvRequest(op, _bytes(namespace or b"", "namespace"), _bytes(key, "key"), value, flag)
    try:
        return api._auto_init().call_node(request).result
    except RemoteError as e:
        raise ValueError(str(e)) from None


def _bytes(value, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"the internal KV's {what} must be str or bytes, got {type(value).__name__}")
