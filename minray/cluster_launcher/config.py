"""The cluster file of ``minray up`` (YAML): read, checked, defaults filled in (pure).

The names follow Ray's cluster launcher where they mean the same thing
(``cluster_name``, ``provider.head_ip``/``worker_ips``, ``auth.ssh_user``/
``ssh_private_key``, ``setup_commands``); the start commands are
``head_start_minray_commands``/``worker_start_minray_commands``, and Ray's
``*_ray_commands`` are refused with the name to use instead. Commands run under
``bash`` on each host with ``MINRAY_HEAD_IP`` and ``MINRAY_NODE_IP`` exported.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any

DEFAULT_PORT = 6380
DEFAULT_DASHBOARD_PORT = 8265

HEAD_START = [
    "minray stop",
    "minray start --head --port={port} --node-ip-address=$MINRAY_HEAD_IP "
    "--dashboard-port={dashboard_port}",
]
WORKER_START = [
    "minray stop",
    "minray start --address=$MINRAY_HEAD_IP:{port} --node-ip-address=$MINRAY_NODE_IP",
]

_TOP = {
    "cluster_name", "provider", "auth", "setup_commands", "head_setup_commands",
    "worker_setup_commands", "head_start_minray_commands", "worker_start_minray_commands",
    "initialization_commands", "python", "head_port", "dashboard_port",
    "min_workers", "max_workers",
}  # fmt: skip
_PROVIDER = {"type", "head_ip", "worker_ips"}
_AUTH = {"ssh_user", "ssh_private_key", "ssh_port", "ssh_options"}
_RAY_ONLY = {
    "head_start_ray_commands": "head_start_minray_commands",
    "worker_start_ray_commands": "worker_start_minray_commands",
}
_NOT_HERE = {
    "docker", "available_node_types", "head_node_type", "file_mounts",
    "cluster_synced_files", "rsync_exclude", "idle_timeout_minutes", "upscaling_speed",
}  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class ClusterConfigError(ValueError):
    """The cluster file is wrong; the message names the key and what to write."""


@dataclass(frozen=True)
class ClusterConfig:
    cluster_name: str
    head_ip: str
    worker_ips: tuple[str, ...]
    ssh_user: str
    ssh_private_key: str | None = None
    ssh_port: int | None = None
    ssh_options: tuple[str, ...] = ()
    initialization_commands: tuple[str, ...] = ()
    setup_commands: tuple[str, ...] = ()
    head_setup_commands: tuple[str, ...] = ()
    worker_setup_commands: tuple[str, ...] = ()
    head_start_commands: tuple[str, ...] = ()
    worker_start_commands: tuple[str, ...] = ()
    python: str = "python3"
    head_port: int = DEFAULT_PORT
    dashboard_port: int = DEFAULT_DASHBOARD_PORT

    @property
    def address(self) -> str:
        return f"{self.head_ip}:{self.head_port}"

    def hosts(self) -> list[str]:
        return [self.head_ip, *self.worker_ips]

    def head_script(self) -> list[str]:
        """What runs on the head: initialization, setup, then the start commands."""
        return [
            *self.initialization_commands,
            *self.setup_commands,
            *self.head_setup_commands,
            *self.head_start_commands,
        ]

    def worker_script(self) -> list[str]:
        return [
            *self.initialization_commands,
            *self.setup_commands,
            *self.worker_setup_commands,
            *self.worker_start_commands,
        ]


def parse(data: Any, where: str = "the cluster file") -> ClusterConfig:
    """Check a loaded cluster file (a dict) and fill in the defaults."""
    if not isinstance(data, dict):
        raise ClusterConfigError(f"{where} must be a YAML mapping (key: value), not {_kind(data)}")
    for key in data:
        if key in _RAY_ONLY:
            raise ClusterConfigError(
                f"{where}: {key} is Ray's name; minray reads {_RAY_ONLY[key]} "
                "(commands that start minray, such as `minray start --head`)"
            )
        if key in _NOT_HERE:
            raise ClusterConfigError(
                f"{where}: {key} is a Ray cluster-launcher setting that minray up does not "
                "support (it starts minray on machines you name, over SSH); remove it"
            )
        if key not in _TOP:
            raise ClusterConfigError(
                f"{where}: unknown key {key!r}; the keys are {', '.join(sorted(_TOP))}"
            )
    name = data.get("cluster_name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ClusterConfigError(
            f"{where}: cluster_name must be a name of letters, digits, '.', '_' or '-' "
            f"(at most 63), not {name!r}"
        )
    provider = _section(data, "provider", _PROVIDER, where, required=True)
    if provider.get("type") not in ("ssh", "local"):
        raise ClusterConfigError(
            f"{where}: provider.type must be 'ssh' (machines you can SSH into; Ray calls it "
            f"'local'), not {provider.get('type')!r}. For Kubernetes and Slurm see docs/cluster.md"
        )
    head_ip = _host(provider.get("head_ip"), "provider.head_ip", where)
    workers = provider.get("worker_ips", []) or []
    if not isinstance(workers, list):
        raise ClusterConfigError(f"{where}: provider.worker_ips must be a list of addresses")
    worker_ips = tuple(_host(w, "provider.worker_ips", where) for w in workers)
    duplicates = sorted({h for h in [head_ip, *worker_ips] if [head_ip, *worker_ips].count(h) > 1})
    if duplicates:
        raise ClusterConfigError(
            f"{where}: {', '.join(duplicates)} is listed more than once (one node per machine)"
        )
    auth = _section(data, "auth", _AUTH, where, required=True)
    user = auth.get("ssh_user")
    if not isinstance(user, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", user):
        raise ClusterConfigError(f"{where}: auth.ssh_user must be a user name, not {user!r}")
    key = auth.get("ssh_private_key")
    if key is not None:
        if not isinstance(key, str):
            raise ClusterConfigError(f"{where}: auth.ssh_private_key must be a file path")
        key = os.path.expanduser(key)
        if not os.path.isfile(key):
            raise ClusterConfigError(
                f"{where}: auth.ssh_private_key {key} does not exist (leave it out to use "
                "ssh's own keys and agent)"
            )
    port = _port(auth.get("ssh_port"), "auth.ssh_port", where, None)
    head_port = _port(data.get("head_port"), "head_port", where, DEFAULT_PORT)
    dashboard_port = _port(
        data.get("dashboard_port"), "dashboard_port", where, DEFAULT_DASHBOARD_PORT
    )
    options = _strings(auth, "ssh_options", where, "auth.")
    for option in options:
        if not re.match(r"^[A-Za-z]+=\S*$", option):
            raise ClusterConfigError(
                f"{where}: each of auth.ssh_options is an ssh -o option as Name=value, "
                f"not {option!r}"
            )
    for key_name in ("min_workers", "max_workers"):
        if key_name in data and data[key_name] not in (None, len(worker_ips)):
            raise ClusterConfigError(
                f"{where}: {key_name} must be the number of worker_ips ({len(worker_ips)}): "
                "minray up starts one node on each machine listed, it does not autoscale"
            )
    python = data.get("python", "python3")
    if not isinstance(python, str) or not python.strip():
        raise ClusterConfigError(f"{where}: python must be the command of the hosts' Python")
    fill = {"port": head_port, "dashboard_port": dashboard_port}
    return ClusterConfig(
        cluster_name=name,
        head_ip=head_ip,
        worker_ips=worker_ips,
        ssh_user=user,
        ssh_private_key=key,
        ssh_port=port,
        ssh_options=tuple(options),
        initialization_commands=tuple(_strings(data, "initialization_commands", where)),
        setup_commands=tuple(_strings(data, "setup_commands", where)),
        head_setup_commands=tuple(_strings(data, "head_setup_commands", where)),
        worker_setup_commands=tuple(_strings(data, "worker_setup_commands", where)),
        head_start_commands=tuple(
            _strings(data, "head_start_minray_commands", where)
            or [c.format(**fill) for c in HEAD_START]
        ),
        worker_start_commands=tuple(
            _strings(data, "worker_start_minray_commands", where)
            or [c.format(**fill) for c in WORKER_START]
        ),
        python=python,
        head_port=head_port,
        dashboard_port=dashboard_port,
    )


def load(path: str) -> ClusterConfig:
    """Read and check the cluster file at ``path``; errors name the key and its line."""
    import yaml

    try:
        with open(path) as f:
            text = f.read()
        data = yaml.safe_load(text)
        lines = key_lines(yaml.compose(text))
    except OSError as e:
        raise ClusterConfigError(f"cannot read the cluster file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ClusterConfigError(f"{path} is not valid YAML: {e}") from None
    try:
        return parse(data, path)
    except ClusterConfigError as e:
        raise ClusterConfigError(with_line(str(e), path, lines)) from None


def key_lines(node: Any, prefix: str = "") -> dict[str, int]:
    """``{"auth.ssh_user": line, ...}`` (1-based) for the keys of a composed YAML file."""
    import yaml

    found: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                name = f"{prefix}{key.value}"
                found[name] = key.start_mark.line + 1
                found.update(key_lines(value, name + "."))
    return found


def with_line(message: str, where: str, lines: dict[str, int]) -> str:
    """The message with the line of the key it is about (the first it names, or that key's
    section when the key is missing), if the file has it."""
    about = re.match(r"(?:unknown key )?'?([A-Za-z_][\w.]*)'?", message[len(where) + 2 :])
    key = about[1] if about else ""
    while key and key not in lines:
        key = key.rpartition(".")[0]
    if not key:
        return message
    return message.replace(f"{where}: ", f"{where}, line {lines[key]}: ", 1)


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _section(data: dict, name: str, keys: set, where: str, required: bool) -> dict:
    section = data.get(name)
    if section is None and not required:
        return {}
    if not isinstance(section, dict):
        raise ClusterConfigError(
            f"{where}: {name} must be a mapping with {', '.join(sorted(keys))}, "
            f"not {_kind(section)}"
        )
    unknown = sorted(set(section) - keys)
    if unknown:
        raise ClusterConfigError(
            f"{where}: unknown key {name}.{unknown[0]}; {name} has {', '.join(sorted(keys))}"
        )
    return section


def _host(value: Any, key: str, where: str) -> str:
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            if _HOST.match(value):
                return value
    raise ClusterConfigError(f"{where}: {key} must be an IP address or host name, not {value!r}")


def _port(value: Any, key: str, where: str, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ClusterConfigError(f"{where}: {key} must be a port number (1-65535), not {value!r}")
    return value


def _strings(data: dict, key: str, where: str, prefix: str = "") -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClusterConfigError(f"{where}: {prefix}{key} must be a list of strings")
    return list(value)
