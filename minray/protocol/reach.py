"""Which address to dial for a node: its Unix socket on the same machine, else TCP.

Nodes of one machine share an address (``NodeManagerAddress``) and reach each
other, and their processes, by Unix socket. A process at another address dials
the node's TCP listener (``NodeManagerPort``). Drivers and workers of a node whose
address is not 127.0.0.1 listen on TCP too, since their peers may be elsewhere.
"""

from __future__ import annotations

#: the default node address: nothing outside this machine can reach it
LOOPBACK = "127.0.0.1"


def listens_on_tcp(node_ip: str) -> bool:
    """Whether the processes of a node at ``node_ip`` must be reachable over TCP."""
    return node_ip != LOOPBACK


def reach_address(node: dict, local_ip: str) -> str | None:
    """How a process on the machine at ``local_ip`` reaches ``node``: its Unix socket when
    it is at the same address, else its TCP listener (None: it has none)."""
    ip = node.get("NodeManagerAddress", "")
    if ip == local_ip:
        return node.get("RayletSocketName") or None
    port = node.get("NodeManagerPort") or 0
    return f"tcp:{ip}:{port}" if ip and port else None
