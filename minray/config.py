"""Settings: one frozen dataclass; environment overrides are read here and nowhere else.

Every tunable of the runtime lives in :class:`Config`. ``Config.from_env()``
applies ``MINRAY_<FIELD>`` environment variables (upper-case field names).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile


@dataclasses.dataclass(frozen=True)
class Config:
    #: values whose pickle is at most this many bytes travel inline in messages
    max_inline_bytes: int = 100 * 1024
    #: largest frame a connection accepts before closing it
    max_frame_bytes: int = 256 * 1024 * 1024
    #: seconds a new connection has to finish the token handshake before it is dropped
    #: (a silent or trickling peer cannot hold a connection open; see docs/security.md)
    handshake_timeout_s: float = 10.0
    #: connections per listener that may be in their handshake at once; past it new ones
    #: are closed at once, with a log line, while authenticated connections keep working
    max_handshaking_connections: int = 256
    #: lease requests one client may have waiting at a node; past it a request is refused
    #: with an error naming this setting
    max_pending_leases_per_client: int = 10_000
    #: default share of system memory given to the object store
    object_store_fraction: float = 0.3
    #: share of the object store that freed segments may keep for reuse
    segment_pool_fraction: float = 0.25
    #: where a full object store spills objects to files ("": the node's session
    #: directory); each node uses a subdirectory of its own (Ray: object_spilling_config)
    object_spilling_directory: str = ""
    #: share of the object store above which the node spills least recently used objects
    #: in the background, before a put finds it full, until it is below again (1.0: only
    #: when full; Ray: object_spilling_threshold)
    object_spilling_threshold: float = 0.8
    #: bytes: a background spill smaller than this waits while another spill is under
    #: way, so small objects go out in larger batches (Ray: min_spilling_size)
    min_spilling_size: int = 100 * 1024 * 1024
    #: root of this user's session directories (made mode 0700; see node/private_dirs.py)
    session_root: str = os.path.join(tempfile.gettempdir(), f"minray-{os.getuid()}")
    #: seconds an idle worker beyond the CPU count lingers before it is stopped
    idle_worker_timeout_s: float = 10.0
    #: how often the node reads worker log files (seconds)
    log_poll_interval_s: float = 0.05
    #: seconds the driver waits for the node process to come up
    node_start_timeout_s: float = 30.0
    #: seconds between a member node's heartbeats to the head
    heartbeat_interval_s: float = 1.0
    #: a node not heard from for this long is declared dead (its tasks fail over)
    node_death_timeout_s: float = 10.0
    #: seconds to reach the head (TCP connect, handshake, registration) before giving up
    head_connect_timeout_s: float = 5.0
    #: seconds a member node that lost the head tries to reconnect before it stops; a
    #: restarted head gives the nodes it recovers as long to come back (docs/cluster.md)
    head_reconnect_timeout_s: float = 60.0
    #: seconds a copy of an object between nodes may make no progress before it fails
    transfer_timeout_s: float = 30.0
    #: threads per node that copy objects to and from other nodes
    transfer_threads: int = 4
    #: largest request body the dashboard reads (bytes); a larger one is answered 413
    dashboard_max_body_bytes: int = 1024 * 1024
    #: largest runtime_env working_dir or py_module (bytes of the files it includes)
    runtime_env_max_bytes: int = 100 * 1024 * 1024
    #: the head's runtime_env packages, all together, at most (bytes)
    runtime_env_store_bytes: int = 2 * 1024**3
    #: seconds a stopped job's processes have between SIGTERM and SIGKILL (Ray's
    #: RAY_JOB_STOP_WAIT_TIME_S)
    job_stop_wait_s: float = 3.0
    #: submitted jobs the head keeps; past it a new job pushes out the oldest finished one
    max_jobs: int = 1000
    #: record task state changes for the state API (runtime/task_events.py)
    task_events: bool = True
    #: task events a process keeps while waiting to send them; past it new ones are
    #: dropped and counted (list_tasks shows the count)
    task_events_buffer_size: int = 100_000
    #: seconds an actor ended gracefully (its handles gone) may take for __ray_shutdown__
    #: and its atexit handlers before the node kills it (Ray: actor_graceful_shutdown_timeout_ms)
    actor_graceful_shutdown_s: float = 30.0
    #: the node kills a worker when its memory use passes this share of its memory (or of
    #: its cgroup's limit); 0 turns the memory monitor off (node/memory_monitor.py)
    memory_usage_threshold: float = 0.95
    #: seconds between the memory monitor's readings; 0 turns it off
    memory_monitor_refresh_s: float = 0.25
    #: retries of a retriable task killed by the memory monitor (-1: no limit), counted apart
    #: from max_retries; a task with max_retries=0 is never retried (Ray: task_oom_retries)
    task_oom_retries: int = -1
    #: seconds before the first retry of a task killed for memory, doubling each time up
    #: to a minute (Ray: task_oom_retry_delay_base_ms)
    task_oom_retry_delay_s: float = 1.0
    #: bytes of finished tasks an owner keeps to rebuild their lost results by running
    #: them again (runtime/lineage.py); past it the oldest go (Ray: max_lineage_bytes)
    max_lineage_bytes: int = 1024 * 1024 * 1024
    #: TLS on every TCP connection, with certificates checked against the CA (Ray's
    #: RAY_USE_TLS); Unix sockets stay plain (protocol/tls.py, docs/cluster.md "TLS")
    use_tls: bool = False
    #: this machine's certificate (PEM), shown to peers as server and as client
    tls_server_cert: str = ""
    #: the private key of ``tls_server_cert`` (PEM)
    tls_server_key: str = ""
    #: the CA certificate (PEM) that must have signed every peer's certificate
    tls_ca_cert: str = ""

    def __post_init__(self) -> None:
        for name in (
            "handshake_timeout_s",
            "max_handshaking_connections",
            "max_pending_leases_per_client",
            "task_events_buffer_size",
            "max_jobs",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{env_setting(name)} must be positive, got {getattr(self, name)}")
        if self.head_reconnect_timeout_s < 0:
            raise ValueError(
                f"{env_setting('head_reconnect_timeout_s')} must be 0 (stop at once when the "
                f"head is lost) or more, got {self.head_reconnect_timeout_s}"
            )
        if not 0.0 <= self.memory_usage_threshold <= 1.0:
            raise ValueError(
                f"memory_usage_threshold must be between 0 and 1 (a share of the node's "
                f"memory; 0 turns the memory monitor off), got {self.memory_usage_threshold} "
                f"({env_setting('memory_usage_threshold')})"
            )
        if not 0.0 <= self.object_spilling_threshold <= 1.0:
            raise ValueError(
                f"object_spilling_threshold must be between 0 and 1 (the share of the object "
                f"store above which objects are spilled ahead; 1 spills only when full), got "
                f"{self.object_spilling_threshold} ({env_setting('object_spilling_threshold')})"
            )
        if self.min_spilling_size < 0:
            raise ValueError(
                f"{env_setting('min_spilling_size')} must be 0 or more bytes, got "
                f"{self.min_spilling_size}"
            )

    @classmethod
    def from_env(cls) -> Config:
        overrides = {}
        for field in dataclasses.fields(cls):
            raw = os.environ.get(f"MINRAY_{field.name.upper()}")
            if raw is None:
                continue
            kind = type(field.default)
            try:
                if kind is bool:
                    overrides[field.name] = _flag(field.name, raw)
                    continue
                overrides[field.name] = kind(raw)
            except ValueError as e:
                raise ValueError(
                    f"environment variable MINRAY_{field.name.upper()}={raw!r} "
                    f"is not a valid {kind.__name__}"
                ) from e
        return cls(**overrides)


def env_setting(name: str) -> str:
    """How a message names a setting: ``name (environment variable MINRAY_NAME)``."""
    return f"{name} (environment variable MINRAY_{name.upper()})"


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"environment variable MINRAY_{name.upper()}={raw!r} is not 0 or 1")


CONFIG = Config.from_env()
