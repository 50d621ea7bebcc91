"""What the head saves of its tables, and how a restarted head takes them back.

A mixin of :class:`~minray.head.service.HeadService`. Each ``_save_*`` writes the
current state of one record to the head's store (head/store.py) after a change;
without a store (an embedded node's head services, which go with their driver)
they do nothing. Records are msgpack, fields by name; blobs (KV values, a kept
detached actor's creation task) stay opaque bytes. The task table, the busiest,
is saved in batches instead: every ``TASK_SAVE_INTERVAL_S``, the attempts changed
since (one row per attempt however many events it had), and the deletion of those
it evicted, so the file holds at most the table's capacity of them.

Recovery (:meth:`SavedTables.restore_tables`), in order:

1. Member nodes come back **alive**, with nothing free, and a grace period: each
   has ``head_reconnect_timeout_s`` to register again (with the same id) before the
   death detector declares it dead, as if it had stopped heartbeating. Bundles and
   actors it holds stay where the saved tables say until then.
2. The KV, the named and detached actors' homes (with what a new home needs of a
   kept detached actor), the placement groups, the jobs and the task attempts are
   loaded.
3. The previous head's own node is dead (its workers and drivers went with its
   process): it is shown DEAD in ``nodes()``, and its death runs the usual course:
   its kept detached actors move to the new head node, its bundles are placed
   again, its jobs end, its other actors are dead; the attempts that ran there are
   FAILED (NODE_DIED), since their owners, if there too, will not say.

The member nodes fill in the rest as they register again: the bundles they hold
(head/bundle_reconcile.py), the actors they are home to, and the task events of
the last seconds before the head died, which they send again
(node/head_client.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import msgpack

from ..config import CONFIG
from ..protocol.messages import DetachedActor
from .job_table import JobRecord
from .node_table import NodeRecord
from .placement_service import GroupRecord
from .store import HeadStore, copy_store

if TYPE_CHECKING:
    from .service import HeadService

logger = logging.getLogger("minray.head")

#: seconds between two saves of the task table's changed attempts
TASK_SAVE_INTERVAL_S = 1.0

DETACHED_FIELDS = DetachedActor.__dataclass_fields__.keys()
_PACKER = msgpack.Packer(use_bin_type=True)  #: (one for the task table's many rows)


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack(blob: bytes) -> Any:
    return msgpack.unpackb(blob, raw=False, strict_map_key=False)


class SavedTables:
    """``_save_*`` after each change, ``restore_tables`` at a restart (module doc)."""

    store: HeadStore | None = None
    _task_saver: asyncio.TimerHandle | None = None

    # --- saving ------------------------------------------------------------------------------

    def _save_kv(self: HeadService, namespace: bytes, key: bytes) -> None:
        if self.store is not None:
            value = self.kv.get(namespace, key)
            row = pack([namespace, key])
            if value is None:
                self.store.delete("kv", row)
            else:
                self.store.put("kv", row, value)

    def _save_actor(self: HeadService, actor_id: bytes) -> None:
        if self.store is None:
            return
        saved = self.actor_homes.saved(actor_id)
        if saved is None:
            self.store.delete("actors", actor_id)
            return
        home, namespace, name, kept = saved
        kept_fields = None if kept is None else {f: getattr(kept, f) for f in DETACHED_FIELDS}
        row = {"home": home, "namespace": namespace, "name": name, "kept": kept_fields}
        self.store.put("actors", actor_id, pack(row))

    def _save_group(self: HeadService, record: GroupRecord) -> None:
        if self.store is None:
            return
        if record.state == "REMOVED":
            self.store.delete("groups", record.group_id)
            return
        row = {
            "name": record.name,
            "namespace": record.namespace,
            "bundles": record.bundles,
            "strategy": record.strategy,
            "detached": record.detached,
            "creator": record.creator,
            "nodes": record.nodes,
            "state": record.state,
        }
        self.store.put("groups", record.group_id, pack(row))

    def _save_job(self: HeadService, job_id: bytes) -> None:
        if self.store is None:
            return
        for old in self.jobs.dropped:
            self.store.delete("jobs", old)
        self.jobs.dropped.clear()
        job = self.jobs.jobs.get(job_id)
        if job is not None:
            row = [job.node_id, job.info, job.start_time, job.end_time, job.is_dead]
            self.store.put("jobs", job_id, pack(row))

    def _save_node(self: HeadService, node_id: bytes) -> None:
        """A member joined (saved) or died (forgotten)."""
        if self.store is None:
            return
        record = self.table.get(node_id)
        if record is None or not record.alive:
            self.store.delete("nodes", node_id)
        else:
            row = {"address": record.address, "total": record.total, "info": record.info}
            self.store.put("nodes", node_id, pack(row))

    def _save_tasks(self: HeadService) -> None:
        """Queue the task attempts changed since the last save, and the deletion of those
        the table evicted (written with the next flush)."""
        tasks, store = self.tasks, self.store
        if store is None or tasks.changed is None:
            return
        for key in tasks.forgotten:
            store.delete("tasks", pack(key))
        attempts, packb = tasks.attempts, _PACKER.pack
        rows = []
        for key in tasks.changed:
            r = attempts.get(key)
            if r is not None:
                rows.append((packb(key), packb((r.state, r.times, r.told, r.extra))))
        store.put_many("tasks", rows)
        tasks.changed.clear()
        tasks.forgotten.clear()

    def _save_tasks_often(self: HeadService) -> None:
        """Save the task table every TASK_SAVE_INTERVAL_S from now on."""
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self._save_tasks()
            self._task_saver = loop.call_later(TASK_SAVE_INTERVAL_S, tick)

        self._task_saver = loop.call_later(TASK_SAVE_INTERVAL_S, tick)

    def close_store(self: HeadService) -> None:
        """Save what changed and close the file (the head stops)."""
        if self._task_saver is not None:
            self._task_saver.cancel()
            self._task_saver = None
        if self.store is not None:
            self._save_tasks()
            self.store.close()
            self.store = None

    def _save_head(self: HeadService) -> None:
        """This head's own node, so the next head shows it dead."""
        if self.store is not None:
            info = {k: v for k, v in self._local_info().items() if k != "PendingDemands"}
            self.store.put("meta", b"head", pack([self.local_id, info]))

    def open_store(self: HeadService, path: str, recover_from: str = "") -> str:
        """Save the tables to ``path`` from now on, after taking back those saved at
        ``recover_from`` (a dead head's file) if given; returns what came back ("" if
        nothing was to be recovered)."""
        try:
            if recover_from:
                copy_store(recover_from, path)
            store = HeadStore(path)
        except sqlite3.DatabaseError as e:
            raise RuntimeError(
                f"the head's tables at {recover_from or path} cannot be read ({e}); start "
                "the head with empty tables instead (`minray start --head --fresh`)"
            ) from e
        store.on_dirty = lambda: asyncio.get_running_loop().call_soon(_flush, store)
        self.tasks.changed = set()  # (before a restore: what it evicts is deleted too)
        summary = self.restore_tables(store) if recover_from else ""
        self.store = store
        self._save_head()
        self._save_tasks_often()
        return summary

    # --- recovery ----------------------------------------------------------------------------

    def restore_tables(self: HeadService, store: HeadStore) -> str:
        """Take back what a previous head saved in ``store`` (see the module doc); returns
        what came back, in words."""
        now = self._clock()
        grace = max(0.0, CONFIG.head_reconnect_timeout_s - self.table.death_timeout_s)
        nodes = {k: unpack(v) for k, v in store.load("nodes").items()}
        for node_id, row in nodes.items():
            if node_id == self.local_id:
                continue
            record = self.table.register(node_id, row["address"], row["total"], now + grace)
            record.info, record.available = dict(row["info"]), {}
        kv = store.load("kv")
        for key, value in kv.items():
            namespace, name = unpack(key)
            self.kv.put(namespace, name, value, True)
        actors = {k: unpack(v) for k, v in store.load("actors").items()}
        for actor_id, row in actors.items():
            self.actor_homes.claim(actor_id, row["home"], row["name"], row["namespace"], True)
            if row["kept"] is not None:
                self.actor_homes.keep(actor_id, DetachedActor(**row["kept"]))
        groups = sorted(store.load("groups").items())
        for group_id, blob in groups:
            self._restore_group(group_id, unpack(blob))
        jobs = sorted(store.load("jobs").items(), key=lambda kv: int.from_bytes(kv[0], "little"))
        for job_id, blob in jobs:
            node_id, info, start, end, is_dead = unpack(blob)
            self.jobs.restore(JobRecord(job_id, node_id, info, start, end, is_dead))
        tasks = store.load("tasks")
        self.tasks.restore([[*unpack(key), *unpack(row)] for key, row in tasks.items()])
        self.store = store
        old_head = store.load("meta").get(b"head")
        if old_head is not None:
            self._old_head_died(*unpack(old_head))
        members = len(nodes)
        return (
            f"{members} member node(s) given {CONFIG.head_reconnect_timeout_s:g} s to reconnect, "
            f"{len(actors)} actor(s), {len(groups)} placement group(s), {len(jobs)} job(s), "
            f"{len(kv)} KV key(s), {len(tasks)} task attempt(s)"
        )

    def _restore_group(self: HeadService, group_id: bytes, row: dict) -> None:
        record = GroupRecord(
            group_id, row["name"], row["namespace"], row["bundles"], row["strategy"],
            row["detached"], row["creator"], list(row["nodes"]), row["state"],
        )  # fmt: skip
        self.groups[group_id] = record
        if record.state in ("PENDING", "RESCHEDULING"):
            self._waiting[group_id] = None

    def _old_head_died(self: HeadService, node_id: bytes, info: dict) -> None:
        """The previous head's node went with its process: shown dead, its death handled."""
        if node_id == self.local_id:
            return
        record: NodeRecord = self.table.register(node_id, info.get("RayletSocketName", ""), {}, 0)
        record.info = dict(info)
        why = "the head's process died; a new head took over its tables"
        self.table.remove(node_id, why)
        self._node_dead(node_id)
        self.store.delete("nodes", node_id)
        self.tasks.node_died(node_id.hex(), time.time(), f"the node of the task died: {why}")


def _flush(store: HeadStore) -> None:
    """Write the changes of this loop iteration; a failed write is logged, not fatal (the
    cluster runs on; only a restart would miss them)."""
    try:
        store.flush()
    except sqlite3.Error as e:
        logger.error("could not save the head's tables to %s: %s", store.path, e)
