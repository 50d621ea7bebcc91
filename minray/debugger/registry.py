"""The list of paused tasks: one internal-KV entry per open remote breakpoint (no I/O).

A worker paused at ``breakpoint()`` writes a :class:`Breakpoint` (JSON) under
the key ``<node id>:<worker id>:<serial>`` of the namespace :data:`NAMESPACE`
in the head's internal KV, and deletes it when the session ends (``continue``,
``quit``) or the process exits. A worker that dies without saying so is cleaned
up by its node, which deletes every key under :func:`worker_prefix` when it
sees the process go (:func:`forget_worker`). ``minray debug`` lists the keys
and reads the entries.
"""

from __future__ import annotations

import dataclasses
import json

from ..protocol.messages import KvRequest

#: the internal-KV namespace of open breakpoints (Ray's ray debug uses the KV too)
NAMESPACE = b"minray_debugger"


@dataclasses.dataclass(frozen=True)
class Breakpoint:
    """A task or actor call paused in a remote pdb, waiting for ``minray debug``."""

    task: str  #: the task or actor method's name, as ``minray list tasks`` shows it
    task_id: str  #: hex
    file: str  #: where it stopped
    line: int
    function: str
    pid: int  #: the worker process
    node_ip: str
    node_id: str  #: hex
    address: str  #: ``HOST:PORT`` of the pdb socket (token-authenticated)
    time: float  #: when it stopped (seconds since the epoch)
    post_mortem: bool = False  #: stopped after an exception, not at breakpoint()

    def to_bytes(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> Breakpoint:
        """The entry stored in ``blob``; ValueError if it is not one."""
        try:
            fields = json.loads(blob)
            return cls(**fields)
        except (TypeError, ValueError) as e:
            raise ValueError(f"not a minray breakpoint entry: {e}") from None


def worker_prefix(node_id: bytes, worker_id: bytes) -> bytes:
    """How the keys of one worker's breakpoints start (its node deletes them when it dies)."""
    return f"{node_id.hex()}:{worker_id.hex()}:".encode()


def forget_worker(node_id: bytes, worker_id: bytes) -> KvRequest:
    """The request that deletes what a worker that died paused left open (its node sends it)."""
    return KvRequest("del", NAMESPACE, worker_prefix(node_id, worker_id), None, True)


def entry_key(node_id: bytes, worker_id: bytes, serial: int) -> bytes:
    return worker_prefix(node_id, worker_id) + str(serial).encode()
