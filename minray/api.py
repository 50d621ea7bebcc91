"""The public functions: init, shutdown, get, put, wait, remote, and cluster state.

A thin facade: each call checks its arguments the way Ray does and hands the
work to this process's CoreWorker. ``init()`` with no address starts an
embedded node process for this driver and stops it at ``shutdown()``.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import sys
import threading
import uuid
from typing import Any

import psutil

from . import accelerators, ids, system_config, waiting
from . import remote_function as remote_functions  # (module: remote_function imports api)
from .config import CONFIG
from .exceptions import RaySystemError
from .head.dashboard_address import announce_dashboard, dashboard_settings, dashboard_url
from .head.job_schema import with_submitted_job_env
from .head.query import query_head
from .node import launcher
from .node.cluster_address import connection_target, local_node
from .object_ref import ObjectRef
from .object_ref_generator import ObjectRefGenerator
from .options import ACTOR_DEFAULTS, TASK_DEFAULTS, UNSUPPORTED_TASK_OPTIONS, validate_task_options
from .protocol.messages import GetClusterInfo, GetNamedActor, KillActor, ShutdownNode
from .runtime.core_worker import CoreWorker
from .runtime.local_mode import LocalRunner
from .runtime.worker_main import DRIVER_JOB_ID
from .runtime_env import resolver as runtime_envs
from .runtime_env.validate import check as check_runtime_env

logger = logging.getLogger("minray")


class _State:
    """What this process knows about the cluster it is connected to."""

    def __init__(self) -> None:
        self.worker: CoreWorker | None = None
        self.node_process: subprocess.Popen | None = None
        self.session_dir: str | None = None
        self.namespace: str = ""
        self.env_vars: dict = {}
        self.lock = threading.RLock()


_state = _State()


def attach_worker(worker: CoreWorker) -> None:
    """Used by worker processes: make the API talk to this CoreWorker."""
    _state.worker = worker
    _state.session_dir = worker.session_dir


def is_initialized() -> bool:
    """True after ``init()`` (or inside a task), until ``shutdown()``."""
    return _state.worker is not None


class RayContext(dict):
    """What ``init()`` returns; also a context manager that calls ``shutdown()``."""

    def __enter__(self) -> RayContext:
        return self

    def __exit__(self, *exc) -> None:
        shutdown()

    @property
    def address_info(self) -> dict:
        return dict(self)


def init(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    resources: dict | None = None,
    object_store_memory: int | None = None,
    namespace: str | None = None,
    runtime_env: dict | None = None,
    ignore_reinit_error: bool = False,
    include_dashboard: bool | None = None,
    dashboard_host: str = "127.0.0.1",
    dashboard_port: int | None = None,
    log_to_driver: bool = True,
    local_mode: bool = False,
    logging_level: int = logging.INFO,
    _token: bytes | str | None = None,
    _system_config: dict | None = None,
    **kwargs: Any,
) -> RayContext:
    """Start minray on this machine (a node process plus workers) and connect to it.

    With ``address`` ("HOST:PORT" of a head, or "auto" for the cluster started on
    this machine; default: ``MINRAY_ADDRESS``, or ``RAY_ADDRESS`` under
    ``minray.compat``), connect to
    a running cluster instead, through its node on this machine. The cluster's
    token comes from ``_token``, ``MINRAY_AUTH_TOKEN``, ``~/.minray/auth_token``, or
    for a head on this machine its session directory.

    ``_system_config``: Ray's settings dict, for a new local cluster; the keys
    minray has an equivalent of apply (``health_check_period_ms``,
    ``health_check_failure_threshold``, ``health_check_timeout_ms``, ...: see
    ``minray/system_config.py``), the others are ignored with a warning.
    """
    with _state.lock:
        if kwargs:
            raise TypeError(f"init() got unexpected keyword arguments {sorted(kwargs)}")
        if _state.worker is not None:
            if ignore_reinit_error:
                logger.info("Calling minray.init() again after it has already been called.")
                return _context()
            raise RuntimeError(
                "Maybe you called minray.init twice by accident? This error can be suppressed "
                "by passing in 'ignore_reinit_error=True' or by calling 'minray.shutdown()' "
                "prior to 'minray.init()'."
            )
        if address is None:
            address = os.environ.get("MINRAY_ADDRESS") or None
            if address is None and sys.modules.get("ray") is sys.modules[__package__]:
                address = os.environ.get("RAY_ADDRESS") or None  # a Ray program, under compat
        if local_mode and address not in (None, "local"):
            raise ValueError(
                "local_mode=True runs every task in this process: it starts a cluster of its "
                f"own and cannot connect to one (address={address!r}). Drop one of the two."
            )
        _setup_logging(logging_level)
        runtime_env = with_submitted_job_env(runtime_env)  # a submitted job's (docs/jobs.md)
        check_runtime_env(runtime_env)
        _state.env_vars = dict((runtime_env or {}).get("env_vars") or {})
        if address not in (None, "local"):
            given = [k for k, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus),
                     ("resources", resources), ("object_store_memory", object_store_memory),
                     ("_system_config", system_config.check(_system_config) or None))
                     if v is not None]  # fmt: skip
            if given:
                raise ValueError(
                    f"When connecting to an existing cluster, {', '.join(given)} must not be "
                    "provided: the nodes' resources and settings are set when they start "
                    "(`minray start --num-cpus ...`, MINRAY_* environment variables)."
                )
            _state.namespace = namespace or str(uuid.uuid4())
            head = _connect_to_cluster(address, _token)
            runtime_envs.inherited = runtime_envs.resolve(_state.worker, runtime_env)
            _state.worker.log_to_driver = bool(log_to_driver)
            _state.worker.namespace = _state.namespace
            _state.worker.exit_with_node = True
            logger.info("Connected to the minray cluster at %s.", head)
            return _context()
        node_resources, gpu_ids, store_bytes = _node_resources(
            num_cpus, num_gpus, resources, object_store_memory
        )
        _state.namespace = namespace or str(uuid.uuid4())
        node_env = system_config.node_environment(_system_config)
        dashboard = dashboard_settings(include_dashboard, dashboard_host, dashboard_port)
        _start_local_cluster(node_resources, store_bytes, gpu_ids, node_env, dashboard)
        announce_dashboard(_state.session_dir, dashboard)
        runtime_envs.inherited = runtime_envs.resolve(_state.worker, runtime_env)
        _state.worker.log_to_driver = bool(log_to_driver)
        _state.worker.namespace = _state.namespace
        if local_mode:
            _state.worker.local_runner = LocalRunner(_state.worker)
            logger.info("Debug mode (local_mode): tasks and actor calls run in this process.")
        logger.info("Started a local minray instance (%s).", _state.session_dir)
        return _context()


def _setup_logging(level: int) -> None:
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("(minray) %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"init({name}=...) must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"init({name}=...) cannot be negative, got {value}")
    return float(value)


def _detect_cpus() -> int:
    """CPUs this process may run on (its affinity, where the OS has one), via psutil."""
    try:
        return len(psutil.Process().cpu_affinity())
    except (AttributeError, psutil.Error):  # macOS has no CPU affinity
        return psutil.cpu_count() or 1


def _node_resources(
    num_cpus, num_gpus, resources, object_store_memory, *, head=True, node_ip="127.0.0.1"
) -> tuple[dict, list, int]:
    """A node's resources, the device ids its GPUs are handed out as, and its object
    store's size in bytes (also under ``object_store_memory`` in the resources)."""
    out: dict[str, float] = {}
    out["CPU"] = _number("num_cpus", num_cpus) if num_cpus is not None else float(_detect_cpus())
    if num_gpus is not None:
        gpus = _number("num_gpus", num_gpus)
        gpu_ids = accelerators.node_gpu_ids(gpus)
    else:
        found = accelerators.detect_gpus()
        gpus, gpu_ids = float(found.count), found.device_ids
        kind = accelerators.accelerator_type(found.model)
        if kind:
            out[accelerators.ACCELERATOR_TYPE_PREFIX + kind] = 1.0
    if gpus:
        out["GPU"] = gpus
    out["memory"] = float(psutil.virtual_memory().available * 0.7)
    for name, amount in (resources or {}).items():
        if name in ("CPU", "GPU"):
            raise ValueError(
                "Use the 'num_cpus' and 'num_gpus' arguments of init() instead of "
                "'CPU' and 'GPU' in resources."
            )
        out[name] = _number(f"resources[{name!r}]", amount)
    out[f"node:{node_ip}"] = 1.0
    if head:
        out["node:__internal_head__"] = 1.0
    store = _object_store_bytes(object_store_memory)
    out["object_store_memory"] = float(store)
    return out, gpu_ids, store


def _object_store_bytes(requested: int | None) -> int:
    if requested is not None:
        value = _number("object_store_memory", requested)
        if value < 1024 * 1024:
            raise ValueError(
                f"object_store_memory must be at least 1 MiB (got {int(value)} bytes)."
            )
        return int(value)
    total = psutil.virtual_memory().total * CONFIG.object_store_fraction
    try:
        shm_size = shutil.disk_usage("/dev/shm").total * 0.9
        total = min(total, shm_size)
    except OSError:
        pass
    return int(total)


def _start_local_cluster(
    node_resources: dict, store_bytes: int, gpu_ids: list, env: dict | None, dashboard: dict
) -> None:
    settings = launcher.node_settings(
        node_resources,
        gpu_ids,
        store_bytes,
        embedded=True,
        parent_pid=os.getpid(),
        extra={"code_paths": launcher.driver_code_paths()},
        **dashboard,
    )
    process, token = launcher.start_node(settings, env=env)
    session_dir = settings["session_dir"]
    worker = None
    try:
        worker = CoreWorker(
            mode="driver",
            node_address=f"unix:{os.path.join(session_dir, 'node.sock')}",
            session_dir=session_dir,
            token=token,
            job_id=DRIVER_JOB_ID,
            namespace=_state.namespace,
        )
        worker.start()
    except BaseException:  # noqa: B036 - also Ctrl-C: leave nothing behind
        if worker is not None:
            worker.stop()
        process.kill()
        process.wait()
        shutil.rmtree(session_dir, ignore_errors=True)
        raise
    _state.worker = worker
    _state.node_process = process
    _state.session_dir = session_dir


def _connect_to_cluster(address: str, token: bytes | str | None) -> str:
    """A driver for a running cluster, through the cluster's node on this machine;
    returns the head's address."""
    address, token = connection_target(address, token)
    nodes = query_head(address, token, GetClusterInfo()).nodes
    node = local_node(nodes)
    if node is None:
        raise ConnectionError(
            f"the minray cluster at {address} has no live node on this machine; a driver "
            "connects through a node on its own machine: start one here with "
            f"`minray start --address={address}`."
        )
    worker = CoreWorker(
        mode="driver",
        node_address=node["RayletSocketName"],
        session_dir=node["ObjectStoreSocketName"],
        token=token,
        job_id=DRIVER_JOB_ID,
        node_ip=node["NodeManagerAddress"],
        namespace=_state.namespace,
    )
    worker.start()
    _state.worker = worker
    _state.node_process = None
    _state.session_dir = node["ObjectStoreSocketName"]  # the node's: never removed here
    return address


def _context() -> RayContext:
    session_dir = _state.session_dir or ""
    worker = _state.worker
    return RayContext(
        node_ip_address=worker.node_ip if worker else "127.0.0.1",
        session_dir=session_dir,
        address=worker.node_address if worker else "",
        node_id=worker.node_id.hex() if worker else "",
        webui_url=dashboard_url(session_dir),
    )


def shutdown() -> None:
    """Stop the local cluster: workers, the node process, every shared-memory segment."""
    with _state.lock:
        worker, process = _state.worker, _state.node_process
        if worker is None or worker.mode != "driver":
            return
        _state.worker = None
        runtime_envs.inherited = None
        worker.stopping = True
        try:
            if process is not None and process.poll() is None:
                try:
                    worker.call_node(ShutdownNode(), 5)
                except Exception:
                    pass
        finally:
            worker.stop()
        if process is not None:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if _state.session_dir and process is not None:  # our own node's session
            shutil.rmtree(_state.session_dir, ignore_errors=True)
        _state.node_process = None
        _state.session_dir = None


atexit.register(shutdown)


#: environment variables that turn off the automatic ``init()`` when set to "0" (first wins)
AUTO_CONNECT_VARIABLES = ("MINRAY_ENABLE_AUTO_CONNECT", "RAY_ENABLE_AUTO_CONNECT")


def _auto_connect_switch() -> str | None:
    """The variable that turned the automatic ``init()`` off, read now; None if it is on."""
    for variable in AUTO_CONNECT_VARIABLES:
        value = os.environ.get(variable)
        if value is not None:
            return variable if value == "0" else None
    return None


def _auto_init() -> CoreWorker:
    """This process's CoreWorker, calling ``init()`` first if needed, as Ray's API calls do,
    unless ``MINRAY_ENABLE_AUTO_CONNECT`` (or ``RAY_ENABLE_AUTO_CONNECT``) is "0": then
    ``RaySystemError``, as Ray raises."""
    worker = _state.worker
    if worker is None:
        switch = _auto_connect_switch()
        if switch is not None:
            raise RaySystemError(
                "Minray has not been started yet. You can start it with 'minray.init()' "
                f"(it is not started on the first API call because {switch}=0)."
            )
        init()
        worker = _state.worker
    executor = worker.executor
    if executor is not None and executor.interrupts.deferred:  # a cancel waits for this call
        executor.interrupts.safe_point()
    return worker


# --- objects ------------------------------------------------------------------------------


def put(value: Any) -> ObjectRef:
    """Store ``value`` in the object store; returns an ObjectRef to it."""
    if isinstance(value, ObjectRef):
        raise TypeError(
            "Calling 'put' on an ObjectRef is not allowed. If you really want to do this, you "
            "can wrap the ObjectRef in a list and call 'put' on it."
        )
    return _auto_init().put(value)


def get(object_refs, *, timeout: float | None = None):
    """The value of an ObjectRef, or the values of a list of them (blocking)."""
    if isinstance(object_refs, ObjectRefGenerator):  # handed back untouched, as in Ray
        return object_refs
    if isinstance(object_refs, ObjectRef):
        return _auto_init().objects.get([object_refs], timeout)[0]
    if not isinstance(object_refs, list):
        raise ValueError(
            f"Invalid type of object refs, {type(object_refs)}, is given. 'object_refs' must "
            "either be an ObjectRef or a list of ObjectRefs."
        )
    for value in object_refs:
        if not isinstance(value, ObjectRef):
            raise TypeError(
                f"Attempting to call `get` on the value {value!r}, which is not an "
                "minray.ObjectRef."
            )
    if not object_refs:
        return []
    return _auto_init().objects.get(object_refs, timeout)


def wait(
    object_refs, *, num_returns: int = 1, timeout: float | None = None, fetch_local: bool = True
) -> tuple[list, list]:
    """Wait until ``num_returns`` of the refs are ready; returns ``(ready, not_ready)``."""
    return waiting.wait(_auto_init, object_refs, num_returns, timeout)


# --- tasks ---------------------------------------------------------------------------------


def remote(*args, **kwargs):
    """Make a function a task or a class an actor: ``@minray.remote`` or ``@minray.remote(...)``."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return remote_functions.make_remote(args[0], {})
    if args or not kwargs:  # @minray.remote(2), @minray.remote(f, 2), @minray.remote()
        names = list(dict.fromkeys([*TASK_DEFAULTS, *ACTOR_DEFAULTS]))
        given = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        raise AssertionError(
            "The @minray.remote decorator must be applied either with no arguments and no "
            "parentheses, for example '@minray.remote', or it must be applied using some of "
            f"the arguments in the list {names}, for example "
            "'@minray.remote(num_returns=2, resources={\"CustomResource\": 1})'. "
            f"It was given @minray.remote({given})."
        )
    if not set(kwargs) - set(TASK_DEFAULTS) - UNSUPPORTED_TASK_OPTIONS:
        validate_task_options(dict(kwargs))  # now, as in Ray; actor options: on the class

    def decorator(function_or_class):
        return remote_functions.make_remote(function_or_class, kwargs)

    return decorator


# --- actors -------------------------------------------------------------------------------


def get_actor(name: str, namespace: str | None = None):
    """The handle of the live actor called ``name`` (in ``namespace``, default: this job's)."""
    if not isinstance(name, str) or not name:
        raise ValueError("Please supply a non-empty value to get_actor")
    if namespace is not None and not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str or None, got {type(namespace)}")
    worker = _auto_init()
    from .actor import handle_from_blob
    from .protocol.connection import RemoteError

    try:
        info = worker.call_node(GetNamedActor(name, namespace or worker.current_namespace()))
    except RemoteError as e:
        raise ValueError(str(e)) from None
    return handle_from_blob(info.handle_blob)


def kill(actor, *, no_restart: bool = True) -> None:
    """Kill an actor now: its running and pending calls fail with ActorDiedError."""
    from .actor import ActorHandle

    if not isinstance(actor, ActorHandle):
        raise ValueError(
            "minray.kill() only supported for actors. For tasks, try minray.cancel(). "
            f"Got: {type(actor)}."
        )
    _auto_init().call_node(KillActor(actor._actor_id, bool(no_restart)))


def cancel(ref: ObjectRef, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel the task or actor call that makes ``ref``: queued, it never runs; running, a
    task gets a KeyboardInterrupt (``force``: its worker exits) and an async actor call an
    asyncio cancel. ``recursive``: also the tasks and actor calls it submitted, and theirs."""
    ref = ref.completed() if isinstance(ref, ObjectRefGenerator) else ref  # its task, as Ray
    if not isinstance(ref, ObjectRef):
        raise TypeError(
            "minray.cancel() only supported for object refs. For actors, try minray.kill(). "
            f"Got: {type(ref)}."
        )
    worker = _auto_init()
    task_id = ref._id[: ids.TASK_ID_SIZE]
    if force and worker.actors.is_actor_call(task_id):
        raise ValueError("force=True is not supported for actor tasks.")
    try:  # (a borrowed ref: its owner is asked, which alone knows where the task is)
        worker.run_sync(worker.cancel_task(task_id, ref.owner_address, force, recursive), 10)
    except OSError:
        pass  # its owner is gone, and the task with it


# --- cluster state -------------------------------------------------------------------------


def _cluster_nodes() -> list[dict]:
    worker = _state.worker
    if worker is None:
        raise RaySystemError(
            "Minray has not been started yet. Trying to use state API before "
            "minray.init() has been called."
        )
    return worker.call_node(GetClusterInfo(), 10).nodes


def nodes() -> list[dict]:
    """One dict per node of the cluster (Ray's keys)."""
    out = []
    for node in _cluster_nodes():
        info = {k: v for k, v in node.items() if k not in ("AvailableResources",)}
        info["alive"] = info["Alive"]
        out.append(info)
    return out


def _sum_over_nodes(key: str) -> dict[str, float]:
    total: dict[str, float] = {}
    for node in _cluster_nodes():
        if not node["Alive"]:
            continue
        for name, amount in node[key].items():
            total[name] = total.get(name, 0.0) + amount
    return total


def cluster_resources() -> dict[str, float]:
    """Total resources of all live nodes."""
    return _sum_over_nodes("Resources")


def available_resources() -> dict[str, float]:
    """Free resources right now; a fully used resource is left out, as in Ray."""
    worker = _state.worker
    if worker is not None:  # leases kept for reuse go back first: they are not in use
        worker.run_sync(worker.submitter.return_idle_leases(), 10)
    return {k: v for k, v in _sum_over_nodes("AvailableResources").items() if v > 0}


def get_gpu_ids() -> list[int] | list[str]:
    """GPU ids assigned to the current task or actor (empty in the driver).

    Ints (``[0]``), or, when the node was started with ``CUDA_VISIBLE_DEVICES``
    set, that variable's ids as strings (``["2"]``), as in Ray."""
    worker = _auto_init()
    task = worker.current_task
    return list(task.gpu_ids) if task is not None else []
