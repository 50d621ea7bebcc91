"""The head's internal key-value store (pure): small bytes values by namespace and key.

Ray's ``ray.experimental.internal_kv``: libraries keep cluster-wide settings and
small shared state there. It lives in the head process's memory and goes with
the head. Its total size is bounded, so a runaway writer gets a clear error
instead of growing the head without end.
"""

from __future__ import annotations

#: the store's total size (keys and values) at most
KV_BUDGET_BYTES = 64 * 1024 * 1024


class KvFull(ValueError):
    """A put would take the store over its budget."""


class InternalKV:
    def __init__(self, budget: int = KV_BUDGET_BYTES) -> None:
        self._data: dict[tuple[bytes, bytes], bytes] = {}
        self.used = 0
        self.budget = budget

    def put(self, namespace: bytes, key: bytes, value: bytes, overwrite: bool) -> bool:
        """Store ``value`` (unless the key exists and not ``overwrite``); returns whether
        the key existed already, as Ray's does."""
        old = self._data.get((namespace, key))
        if old is not None and not overwrite:
            return True
        size = len(key) + len(value) - (len(key) + len(old) if old is not None else 0)
        if self.used + size > self.budget:
            raise KvFull(
                f"the internal KV would hold {self.used + size:,} bytes, over its budget of "
                f"{self.budget:,}: store large values as objects (minray.put) instead"
            )
        self._data[(namespace, key)] = value
        self.used += size
        return old is not None

    def get(self, namespace: bytes, key: bytes) -> bytes | None:
        return self._data.get((namespace, key))

    def exists(self, namespace: bytes, key: bytes) -> bool:
        return (namespace, key) in self._data

    def delete(self, namespace: bytes, key: bytes, by_prefix: bool = False) -> int:
        """Remove the key (or every key that starts with it); returns how many went."""
        if by_prefix:
            gone = [k for k in self._data if k[0] == namespace and k[1].startswith(key)]
        else:
            gone = [(namespace, key)] if (namespace, key) in self._data else []
        for k in gone:
            self.used -= len(k[1]) + len(self._data.pop(k))
        return len(gone)

    def keys(self, namespace: bytes, prefix: bytes) -> list[bytes]:
        return sorted(k for ns, k in self._data if ns == namespace and k.startswith(prefix))
