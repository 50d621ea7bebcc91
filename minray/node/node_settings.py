"""What a node process is started with (JSON on its command line; see launcher.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class NodeSettings:
    session_dir: str
    node_id: bytes
    resources: dict
    object_store_memory: int
    embedded: bool  #: this driver's own node: it stops when its driver disconnects
    parent_pid: int  #: stop when this process is gone (0: run until stopped)
    #: what tasks see of the node's GPUs, by scheduler slot (ints, or CUDA_VISIBLE_DEVICES' ids)
    gpu_ids: list = field(default_factory=list)
    #: run the head services' TCP listener here, at head_host:head_port (0: any free port)
    head: bool = False
    head_host: str = "127.0.0.1"
    head_port: int = 0
    #: "tcp:HOST:PORT" of the head to join; "" for a head or an embedded node
    head_address: str = ""
    #: the address other machines know this node by (Ray's NodeManagerAddress)
    node_ip: str = "127.0.0.1"
    #: serve the dashboard (head/dashboard.py) here, on a head or embedded node; -1: no
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = -1
    #: a dead head's saved tables (head.sqlite3) for this head to take back ("": none)
    recover_from: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"unix:{os.path.join(self.session_dir, 'node.sock')}"

    def worker_log(self, worker_id: bytes, suffix: str) -> str:
        return os.path.join(self.session_dir, "logs", f"worker-{worker_id.hex()[:12]}.{suffix}")
