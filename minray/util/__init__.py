"""Ray's ``ray.util`` helpers, built on minray's public API."""

from __future__ import annotations

from .. import api
from ..protocol.messages import ListNamedActors


def list_named_actors(all_namespaces: bool = False) -> list:
    """Names of live named actors: of this job's namespace, or (all_namespaces) every one."""
    worker = api._auto_init()
    reply = worker.call_node(ListNamedActors(api._state.namespace, bool(all_namespaces)))
    if all_namespaces:
        return [{"name": name, "namespace": ns} for name, ns in reply.actors]
    return [name for name, _ in reply.actors]


__all__ = ["list_named_actors"]
