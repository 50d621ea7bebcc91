"""What a node tells the processes connected to it, unasked: their workers' output
lines, that a task asks for resources no node has, why a lease request waits, that a
node died, that its memory monitor kills a worker we lease, and (its store being full)
which segments we have finished writing.

A mixin of :class:`~minray.runtime.core_worker.CoreWorker` (``log_to_driver``,
``_infeasible_warned``).
"""

from __future__ import annotations

import logging
import os
import sys

from ..exceptions import RaySystemError
from ..object_store import shm
from ..protocol.connection import Connection
from ..protocol.messages import Ok, UnpinSegments, ValueKind
from .task_submitter import NODE_GONE

logger = logging.getLogger("minray")


class NodeNotices:
    """``handle_<Message>`` methods for the node's notifications."""

    def handle_LogLines(self, conn: Connection, msg) -> None:
        if not self.log_to_driver:
            return
        out, err = sys.stdout, sys.stderr
        for pid, name, is_err, text in msg.lines:
            stream = err if is_err else out
            stream.write(f"\x1b[36m({name} pid={pid})\x1b[0m {text}\n")
        out.flush()
        err.flush()

    def handle_FlushWritten(self, conn: Connection, msg) -> UnpinSegments:
        """The node's store is full: the segments we reserved and have written since our
        last CreateObject may be spilled now."""
        return UnpinSegments(self.segments.take_written())

    def handle_OomKilled(self, conn: Connection, msg) -> Ok:
        """The node's memory monitor kills a worker leased to us (it waits for our Ok):
        the task running there fails with OutOfMemoryError, or runs again."""
        self.submitter.oom_killed(conn, msg.lease_id, msg.message)
        return Ok()

    def handle_NodeDied(self, conn: Connection, msg) -> None:
        """A node was declared dead: close what leads there (a hung node keeps its
        connections open), so its tasks fail over and its lease requests go elsewhere."""
        self.nodes.node_died(msg.node_id)
        self.submitter.node_died(msg.node_id)
        self.objects_on_dead_node(msg.node_id)  # found elsewhere, or rebuilt
        self.close_peers(tuple(msg.prefixes))  # its workers: actors' callers learn too

    def handle_LeasePending(self, conn: Connection, msg) -> None:
        """Why a lease request of ours still waits at that node (it changed)."""
        self.submitter.lease_pending(conn, msg.request_id, msg.reason)

    def handle_ResourcesInfeasible(self, conn: Connection, msg) -> None:
        need = {k: float(v) for k, v in msg.resources.items()}
        key = (msg.task_name, tuple(sorted(need.items())))
        if key in self._infeasible_warned:
            return
        self._infeasible_warned.add(key)
        missing = {k: v for k, v in need.items() if v > msg.available.get(k, 0)}
        what = (
            f"Actor {msg.task_name[: -len('.__init__')]!r}"
            if msg.task_name.endswith(".__init__")
            else f"Task {msg.task_name!r}"
        )
        logger.warning(
            "%s cannot be scheduled: no node has %s (it asks for %s; the cluster has %s). "
            "It stays pending until a node with these resources joins. Check its "
            "num_cpus/num_gpus/resources options, or start minray with the resources it needs "
            "(e.g. minray.init(num_gpus=1)). [Ray: No available node types can fulfill resource "
            "request %s]",
            what,
            missing or need,
            need,
            msg.available,
            need,
        )

    def _node_closed(self, conn: Connection) -> None:
        # the node that would unlink our shared-memory objects is gone: do it ourselves, for
        # those in its store only (another node's, on this machine too, are that node's own)
        for _, value in self.store.items():
            if value.kind == ValueKind.SHARED and value.payload[2] == self.node_id:
                shm.unlink(value.payload[0])
        if self.mode == "worker":
            os._exit(1)  # the node is gone: nothing left to work for
        if self.exit_with_node and not self.stopping:
            # a driver of a running cluster whose node (or head) is gone: as Ray's does,
            # it exits rather than wait on a cluster that is no more
            logger.error(
                "The minray node this driver was connected through is gone (%s): the "
                "cluster's head died or the node was stopped. Exiting.",
                conn.close_reason,
            )
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        self.submitter.fail_all(RaySystemError(NODE_GONE))
        self.actors.fail_all(RaySystemError(NODE_GONE))
