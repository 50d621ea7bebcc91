"""The head's tables on disk: one SQLite file a restarted head reads back.

``<session_dir>/head.sqlite3`` (WAL mode) holds what the cluster must not lose
when the head's process dies: the internal KV, the named actors and their homes
(with what a new home needs of a kept detached actor), the placement groups,
the jobs, the member nodes and the task table's attempts. Each table is rows of
``key -> value`` bytes; the head encodes its records with msgpack
(head/saved_tables.py) and never unpickles: user data stays opaque bytes here too.

The rule it keeps: **changes are queued and written together, once per loop
iteration** (``flush``, scheduled by the ``on_dirty`` hook when the first change
of an iteration arrives), in one transaction, so a burst of KV puts costs one
commit. With ``synchronous=NORMAL`` a commit survives the head's process dying
(the OS has the WAL); a power cut may lose the last ones.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable

TABLES = ("kv", "actors", "groups", "jobs", "nodes", "tasks", "meta")
FILE_NAME = "head.sqlite3"


class HeadStore:
    """Rows by table, written in batches (see the module doc)."""

    def __init__(self, path: str, on_dirty: Callable[[], None] | None = None):
        self.path = path
        #: called once when a change is queued after a flush (the head schedules a flush)
        self.on_dirty = on_dirty
        self._pending: dict[tuple[str, bytes], bytes | None] = {}
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for table in TABLES:
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (k BLOB PRIMARY KEY, v BLOB)")
        os.chmod(path, 0o600)

    def put(self, table: str, key: bytes, value: bytes) -> None:
        """Queue ``key -> value`` in ``table`` (written at the next flush)."""
        self._queue(table, key, value)

    def put_many(self, table: str, rows: list[tuple[bytes, bytes]]) -> None:
        """Queue every ``(key, value)`` of ``rows`` in ``table`` (a batch: checked once)."""
        _check(table)
        if rows:
            first = not self._pending
            self._pending.update(((table, key), value) for key, value in rows)
            if first and self.on_dirty is not None:
                self.on_dirty()

    def delete(self, table: str, key: bytes) -> None:
        self._queue(table, key, None)

    def load(self, table: str) -> dict[bytes, bytes]:
        """Every row of ``table`` as written (queued changes included)."""
        _check(table)
        rows = {bytes(k): bytes(v) for k, v in self._db.execute(f"SELECT k, v FROM {table}")}
        for (t, key), value in self._pending.items():
            if t == table:
                if value is None:
                    rows.pop(key, None)
                else:
                    rows[key] = value
        return rows

    def flush(self) -> None:
        """Write every queued change in one transaction."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        puts: dict[str, list] = {}
        deletes: dict[str, list] = {}
        for (table, key), value in pending.items():  # (a key is in one of them, once)
            if value is None:
                deletes.setdefault(table, []).append((key,))
            else:
                puts.setdefault(table, []).append((key, value))
        db = self._db
        db.execute("BEGIN")
        try:
            for table, keys in deletes.items():
                db.executemany(f"DELETE FROM {table} WHERE k = ?", keys)
            for table, rows in puts.items():
                db.executemany(f"INSERT OR REPLACE INTO {table} (k, v) VALUES (?, ?)", rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Write what is queued and close the file."""
        try:
            self.flush()
        finally:
            self._db.close()

    def _queue(self, table: str, key: bytes, value: bytes | None) -> None:
        _check(table)
        first = not self._pending
        self._pending[(table, key)] = value
        if first and self.on_dirty is not None:
            self.on_dirty()


def copy_store(source: str, target: str) -> None:
    """Copy the tables of a dead head's file (its WAL included) to ``target``."""
    if not os.path.exists(source):
        raise FileNotFoundError(f"no head tables to recover at {source}")
    old = sqlite3.connect(source)  # (read-write: it replays the dead head's WAL)
    new = sqlite3.connect(target)
    try:
        old.backup(new)
    finally:
        old.close()
        new.close()
    os.chmod(target, 0o600)


def _check(table: str) -> None:
    if table not in TABLES:
        raise ValueError(f"no head table {table!r}; the tables are {', '.join(TABLES)}")
