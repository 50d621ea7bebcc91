"""``/metrics``: the cluster in Prometheus' text format, read from the head's tables when
Prometheus scrapes (nothing polls in between).

Each scrape asks every live node for its live info and its actors (as the state API
does, each node within a few seconds; one that does not answer is left out and
counted in ``minray_nodes_not_answering``), then a collector turns the head's task
table and those rows into metric families. ``prometheus_client`` is imported only
when the dashboard starts.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..protocol.messages import GetStates

if TYPE_CHECKING:
    from aiohttp import web

    from .service import HeadService

#: Ray's actor states, each exported even when no actor is in it
ACTOR_STATES = ("DEPENDENCIES_UNREADY", "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD")


class ClusterCollector:
    """A prometheus_client collector of one scrape: the task table is read as it is
    collected; ``nodes`` and ``actors`` are the rows the nodes gave for this scrape."""

    def __init__(self, head: HeadService, nodes: list[dict], actors: list[dict], missing: int):
        self.head = head
        self.nodes = nodes
        self.actors = actors
        self.missing = missing

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        tasks = GaugeMetricFamily(
            "minray_tasks", "Tasks by the state of their latest attempt", labels=["state"]
        )
        for state, count in self.head.tasks.state_counts().items():
            tasks.add_metric([state], count)
        yield tasks
        yield CounterMetricFamily(
            "minray_task_events_dropped",
            "Task events dropped by processes, plus task attempts evicted from the head's table",
            value=self.head.tasks.dropped,
        )
        actors = GaugeMetricFamily("minray_actors", "Actors by state", labels=["state"])
        by_state = Counter(row.get("state", "") for row in self.actors)
        for state in (*ACTOR_STATES, *sorted(set(by_state) - set(ACTOR_STATES))):
            actors.add_metric([state], by_state.get(state, 0))
        yield actors
        yield from self._nodes()

    def _nodes(self) -> Iterator:
        from prometheus_client.core import GaugeMetricFamily

        live = {row["NodeID"]: row for row in self.nodes}
        known = self.head.nodes_info()
        alive = GaugeMetricFamily("minray_nodes", "Nodes by state", labels=["state"])
        alive.add_metric(["ALIVE"], sum(1 for n in known if n["Alive"]))
        alive.add_metric(["DEAD"], sum(1 for n in known if not n["Alive"]))
        yield alive
        yield GaugeMetricFamily(
            "minray_nodes_not_answering",
            "Live nodes that did not answer this scrape in time (left out below)",
            value=self.missing,
        )
        labels = ["node_id", "address"]
        family = {
            name: GaugeMetricFamily(name, text, labels=labels)
            for name, text in (
                ("minray_object_store_used_bytes", "Bytes of objects in the node's store"),
                ("minray_object_store_spilled_bytes", "Bytes of objects spilled to disk now"),
                (
                    "minray_object_store_spilled_ahead_bytes_total",
                    "Bytes spilled before the store was full (object_spilling_threshold)",
                ),
                ("minray_object_store_capacity_bytes", "Size of the node's object store"),
                ("minray_lease_queue_length", "Lease requests queued at the node"),
                ("minray_node_cpu_percent", "CPU use of the node's machine, percent"),
                ("minray_node_memory_used_bytes", "Memory in use on the node's machine"),
                ("minray_node_memory_total_bytes", "Memory of the node's machine"),
            )
        }
        total = GaugeMetricFamily(
            "minray_node_resource_total", "The node's resources", labels=[*labels, "resource"]
        )
        free = GaugeMetricFamily(
            "minray_node_resource_available",
            "The node's free resources",
            labels=[*labels, "resource"],
        )
        for row in live.values():
            where = [row["NodeID"], str(row.get("NodeManagerAddress", ""))]
            resources = row.get("Resources", {})
            values = {
                "minray_object_store_used_bytes": row.get("ObjectStoreUsedBytes", 0),
                "minray_object_store_spilled_bytes": row.get("ObjectStoreSpilledBytes", 0),
                "minray_object_store_spilled_ahead_bytes_total": row.get(
                    "ObjectStoreSpilledAheadBytesTotal", 0
                ),
                "minray_object_store_capacity_bytes": resources.get("object_store_memory", 0),
                "minray_lease_queue_length": sum(d[1] for d in row.get("PendingDemands") or ()),
                "minray_node_cpu_percent": row.get("CpuPercent", 0.0),
                "minray_node_memory_used_bytes": row.get("MemoryUsedBytes", 0),
                "minray_node_memory_total_bytes": row.get("MemoryTotalBytes", 0),
            }
            for name, value in values.items():
                family[name].add_metric(where, value)
            available = row.get("AvailableResources", {})
            for resource, amount in sorted(resources.items()):
                if not resource.startswith("node:") and "_group_" not in resource:
                    total.add_metric([*where, resource], amount)
                    free.add_metric([*where, resource], available.get(resource, 0.0))
        yield from family.values()
        yield total
        yield free


async def scrape(head: HeadService) -> bytes:
    """One scrape's text: the nodes asked (in parallel, each within a bounded time), then
    collected."""
    from prometheus_client import CollectorRegistry, generate_latest

    nodes, actors = await asyncio.gather(
        head.handle_GetStates(None, GetStates("node", False)),
        head.handle_GetStates(None, GetStates("actors", False)),
    )
    registry = CollectorRegistry(auto_describe=False)
    missing = len(set(nodes.missing) | set(actors.missing))
    registry.register(ClusterCollector(head, nodes.rows, actors.rows, missing))
    return generate_latest(registry)


def metrics_routes(head: HeadService) -> list:
    """The ``/metrics`` route, for dashboard_auth.add_routes."""
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST

    async def metrics(request: web.Request) -> web.Response:
        response = web.Response(body=await scrape(head))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return [("GET", "/metrics", metrics)]
