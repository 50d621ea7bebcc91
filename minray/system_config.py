"""Ray's ``_system_config`` dict, as far as minray has the same settings.

``minray.init(_system_config={...})``, ``Cluster(head_node_args={"_system_config":
...})`` and ``Cluster.add_node(_system_config=...)`` take Ray's keys. Those
with a minray equivalent become ``MINRAY_*`` environment variables of the node
processes started with them (nodes read their settings from the environment,
see config.py); every other key is named in a warning, once per process, and
ignored.

* ``health_check_period_ms`` -> ``heartbeat_interval_s`` (period / 1000).
* ``health_check_failure_threshold`` and ``health_check_timeout_ms`` (with the
  period) -> ``node_death_timeout_s`` = threshold x period + timeout: the node
  missed ``threshold`` heartbeats and the last one had ``timeout`` to arrive.
  A key not given keeps minray's value (by default period 1 s, threshold =
  death timeout / period = 10, timeout one period).
* ``health_check_initial_delay_ms``: 0 is what minray does (a node is watched
  from its registration); another value is ignored, with the warning.
* ``idle_worker_killing_time_threshold_ms`` -> ``idle_worker_timeout_s``.
* ``memory_usage_threshold`` (a share, 0 to 1) and ``memory_monitor_refresh_ms``
  (0 turns the monitor off) -> the node's memory monitor (node/memory_monitor.py).
* ``object_spilling_config`` (JSON: ``{"type": "filesystem", "params":
  {"directory_path": DIR}}``) -> ``object_spilling_directory``; DIR must be
  writable, checked here (node/spilling.py).
* ``object_spilling_threshold`` (a share, 0 to 1; 1 spills only when the store is
  full) and ``min_spilling_size`` (bytes, 0 or more) -> the node's spilling ahead
  of a full store (node/spill_ahead.py).

A node's death by crash needs none of this: the head sees its connection close
at once. These settings matter for a hung node or a network cut.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any

from .config import CONFIG, Config
from .object_store import spill_files

logger = logging.getLogger("minray")

#: the Ray keys this module turns into minray settings
HEALTH_KEYS = (
    "health_check_period_ms",
    "health_check_failure_threshold",
    "health_check_timeout_ms",
)
MEMORY_KEYS = ("memory_usage_threshold", "memory_monitor_refresh_ms")
SPILLING_KEYS = ("object_spilling_config", "object_spilling_threshold", "min_spilling_size")
SUPPORTED_KEYS = frozenset(
    HEALTH_KEYS
    + MEMORY_KEYS
    + ("health_check_initial_delay_ms", "idle_worker_killing_time_threshold_ms")
    + SPILLING_KEYS
)

_warned: set[str] = set()
_warned_lock = threading.Lock()


def check(system_config: Any, where: str = "init()") -> dict:
    """The dict itself (``{}`` for None); TypeError if it is not a dict."""
    if system_config is None:
        return {}
    if not isinstance(system_config, dict):
        raise TypeError(
            f"The _system_config of {where} must be a dict of Ray setting names to values, "
            f"got {type(system_config).__name__}: pass e.g. "
            "_system_config={'health_check_period_ms': 1000}."
        )
    return system_config


def _number(key: str, value: Any, *, integer: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number > 0 or math.isinf(number):
        raise ValueError(f"_system_config[{key!r}] must be a positive number, got {value!r}")
    if integer and number != int(number):
        raise ValueError(f"_system_config[{key!r}] must be a whole number, got {value!r}")
    return number


def node_environment(system_config: Any, where: str = "init()", base: Config = CONFIG) -> dict:
    """``MINRAY_*`` environment variables for a node started with this ``_system_config``.

    Warns (once per key and process) about the keys minray ignores; ValueError
    for a value that is not a positive number, TypeError if not a dict.
    """
    config = check(system_config, where)
    env: dict[str, str] = {}
    given = {key: config[key] for key in HEALTH_KEYS if key in config}
    if given:
        period = base.heartbeat_interval_s
        if "health_check_period_ms" in given:
            period = _number("health_check_period_ms", given["health_check_period_ms"]) / 1000
            env["MINRAY_HEARTBEAT_INTERVAL_S"] = repr(period)
        threshold = round(base.node_death_timeout_s / base.heartbeat_interval_s)
        if "health_check_failure_threshold" in given:
            key = "health_check_failure_threshold"
            threshold = _number(key, given[key], integer=True)
        timeout = period
        if "health_check_timeout_ms" in given:
            timeout = _number("health_check_timeout_ms", given["health_check_timeout_ms"]) / 1000
        env["MINRAY_NODE_DEATH_TIMEOUT_S"] = repr(threshold * period + timeout)
    if "idle_worker_killing_time_threshold_ms" in config:
        key = "idle_worker_killing_time_threshold_ms"
        env["MINRAY_IDLE_WORKER_TIMEOUT_S"] = repr(_number(key, config[key]) / 1000)
    env.update(_memory_monitor_environment(config))
    env.update(_spilling_environment(config))
    ignored = [key for key in config if key not in SUPPORTED_KEYS]
    if config.get("health_check_initial_delay_ms", 0) != 0:
        ignored.append("health_check_initial_delay_ms")
    _warn_ignored(ignored, where)
    return env


def _memory_monitor_environment(config: dict) -> dict:
    env = {}
    if "memory_usage_threshold" in config:
        value = config["memory_usage_threshold"]
        share = _number("memory_usage_threshold", value) if value != 0 else 0.0
        if share > 1:
            raise ValueError(
                "_system_config['memory_usage_threshold'] is a share of the node's memory, "
                f"from 0 (monitor off) to 1, got {value!r}"
            )
        env["MINRAY_MEMORY_USAGE_THRESHOLD"] = repr(share)
    if "memory_monitor_refresh_ms" in config:
        value = config["memory_monitor_refresh_ms"]
        period = _number("memory_monitor_refresh_ms", value) / 1000 if value != 0 else 0.0
        env["MINRAY_MEMORY_MONITOR_REFRESH_S"] = repr(period)
    return env


def _spilling_environment(config: dict) -> dict:
    env = {}
    if "object_spilling_config" in config:
        directory = _spilling_directory(config["object_spilling_config"])
        env["MINRAY_OBJECT_SPILLING_DIRECTORY"] = directory
    if "object_spilling_threshold" in config:
        value = config["object_spilling_threshold"]
        share = value if type(value) in (int, float) else math.nan
        if not 0 <= share <= 1:
            raise ValueError(
                "_system_config['object_spilling_threshold'] is the share of the object store "
                "above which objects are spilled ahead of a full store, from 0 to 1 (1: spill "
                f"only when full), got {value!r}"
            )
        env["MINRAY_OBJECT_SPILLING_THRESHOLD"] = repr(float(share))
    if "min_spilling_size" in config:
        value = config["min_spilling_size"]
        if type(value) is not int or value < 0:
            raise ValueError(
                "_system_config['min_spilling_size'] is a whole number of bytes, 0 or more "
                f"(Ray's default is 100 * 1024 * 1024), got {value!r}"
            )
        env["MINRAY_MIN_SPILLING_SIZE"] = str(value)
    return env


def _spilling_directory(value: Any) -> str:
    """The directory of Ray's ``object_spilling_config`` (a JSON string), checked writable."""
    example = 'json.dumps({"type": "filesystem", "params": {"directory_path": "/tmp/spill"}})'
    try:
        spec = json.loads(value) if isinstance(value, (str, bytes)) else value
    except json.JSONDecodeError as e:
        raise ValueError(f"_system_config['object_spilling_config'] is not JSON ({e}): "
                         f"give {example}") from None  # fmt: skip
    if not isinstance(spec, dict) or spec.get("type") != "filesystem":
        raise ValueError(
            "_system_config['object_spilling_config'] must be a filesystem spilling "
            f"config (minray spills to local files only), got {value!r}: give {example}"
        )
    path = (spec.get("params") or {}).get("directory_path")
    if isinstance(path, list) and path:
        if len(path) > 1:
            logger.warning("object_spilling_config: minray spills to one directory, %r", path[0])
        path = path[0]
    if not isinstance(path, str) or not path:
        raise ValueError(
            "_system_config['object_spilling_config'] needs params.directory_path, a "
            f"directory to spill to, got {value!r}: give {example}"
        )
    return spill_files.check_directory(path)


def _warn_ignored(keys: list, where: str) -> None:
    with _warned_lock:
        new = [str(key) for key in keys if str(key) not in _warned]
        _warned.update(new)
    if new:
        logger.warning(
            "_system_config of %s: minray has no equivalent of %s, so %s ignored. "
            "It applies health_check_period_ms, health_check_failure_threshold, "
            "health_check_timeout_ms, health_check_initial_delay_ms=0, "
            "idle_worker_killing_time_threshold_ms, memory_usage_threshold, "
            "memory_monitor_refresh_ms, object_spilling_config, object_spilling_threshold "
            "and min_spilling_size (docs/cluster.md).",
            where,
            ", ".join(repr(key) for key in new),
            "it is" if len(new) == 1 else "they are",
        )


__all__ = ["SUPPORTED_KEYS", "check", "node_environment"]
