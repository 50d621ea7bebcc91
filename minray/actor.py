"""``@minray.remote`` on a class: ActorClass, ActorHandle, ActorMethod, ``method``, ``exit_actor``.

``Cls.remote(*args)`` registers the actor with the node (so a taken name fails
at once), submits its creation task and returns an :class:`ActorHandle` before
``__init__`` has run. ``handle.method.remote(...)`` sends a call straight to
the actor's worker and returns ObjectRefs.

A handle made by ``Cls.remote()`` carries the actor's *lifetime ref*, an
ObjectRef owned by the creating process. Copies of the handle (pickled into
tasks, actors, return values) borrow that ref, so ordinary reference counting
tells the owner when the last handle anywhere is gone: the actor then exits,
as in Ray. Handles from ``get_actor()`` do not keep an actor alive.
"""

from __future__ import annotations

import inspect

from . import api, ids, serialization
from . import options as opts
from .exceptions import (
    ActorAlreadyExistsError,
    PendingCallsLimitExceeded,
    RaySystemError,
)
from .object_ref import ObjectRef
from .object_ref_generator import generator_result
from .protocol.connection import RemoteError
from .protocol.messages import RegisterActor
from .runtime.actor_executor import READY, TERMINATE
from .runtime.actor_exit import exit_current_actor
from .runtime.concurrency_groups import (
    check_group_name,
    check_method_groups,
    unknown_group_message,
)
from .runtime.task_builder import build_actor_creation, submit_actor_creation, submit_actor_task
from .runtime_env import resolver as runtime_envs

#: Ray's default max_concurrency for async actors
DEFAULT_MAX_CONCURRENCY_ASYNC = 1000
_METHOD_OPTIONS = "__minray_method_options__"
_VALID_METHOD_OPTIONS = (
    "num_returns",
    "max_task_retries",
    "name",
    "concurrency_group",
    "_generator_backpressure_num_objects",
)
_BACKPRESSURE = "_generator_backpressure_num_objects"


def method(*args, **kwargs):
    """Options for one actor method: ``@minray.method(num_returns=2)``."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return args[0]  # bare @minray.method
    if args:
        raise AssertionError("@minray.method takes keyword arguments only, e.g. num_returns=2")
    for key in kwargs:
        if key not in _VALID_METHOD_OPTIONS:
            raise AssertionError(
                f"Unknown option {key!r} for @minray.method; valid ones are "
                f"{list(_VALID_METHOD_OPTIONS)}."
            )
    if "num_returns" in kwargs:
        opts._check_num_returns(kwargs["num_returns"])
    if "concurrency_group" in kwargs:
        check_group_name(kwargs["concurrency_group"])
    opts._check_backpressure(kwargs.get(_BACKPRESSURE))

    def decorate(function):
        setattr(function, _METHOD_OPTIONS, dict(kwargs))
        return function

    return decorate


def exit_actor() -> None:
    """End the current actor from inside one of its methods (or ``__init__``), as in Ray.

    The call fails with ActorDiedError for its caller (even if the method catches the
    exception and goes on), so do the calls queued behind it; calls running now end
    first; then ``__ray_shutdown__`` and the atexit handlers run, and the actor exits.
    """
    exit_current_actor(api._state.worker)


class _ClassInfo:
    """What a handle needs to know about its actor's class; small and picklable."""

    def __init__(self, cls: type):
        self.class_name = cls.__name__
        self.methods: dict[str, dict] = {}
        self.signatures: dict[str, inspect.Signature] = {}
        self.generators: set[str] = set()
        self.is_async = False
        for name, member in inspect.getmembers(cls, predicate=inspect.isfunction):
            self.methods[name] = dict(getattr(member, _METHOD_OPTIONS, {}))
            try:
                self.signatures[name] = inspect.signature(member)
            except (TypeError, ValueError):
                pass
            if inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member):
                self.is_async = True
            if inspect.isgeneratorfunction(member) or inspect.isasyncgenfunction(member):
                self.generators.add(name)
        for name in (TERMINATE, READY):
            self.methods[name] = {}
        #: the methods that name a concurrency group (@minray.method(concurrency_group=...))
        self.method_groups = {
            name: options["concurrency_group"]
            for name, options in self.methods.items()
            if options.get("concurrency_group")
        }
        #: methods a call without arguments suits, and those that take only a fixed number
        #: of positional arguments (``self`` included): such calls skip the signature check
        self.no_argument_calls = {n for n, sig in self.signatures.items() if _binds_alone(sig)}
        self.arities = {n: opts.positional_arity(sig) for n, sig in self.signatures.items()}
        # signatures check calls early; one whose default value cannot be pickled stays here
        try:
            serialization.dumps(self.signatures)
            self._signatures_travel = True
        except Exception:
            self._signatures_travel = False

    def binds_surely(self, name: str, args: tuple, kwargs: dict) -> bool:
        """Whether a call of method ``name`` with these arguments binds without a check: no
        arguments to a method that needs none, or exactly the positional arguments of a
        plain signature (``self`` counted)."""
        if kwargs:
            return False
        if not args:
            return name in self.no_argument_calls
        return len(args) + 1 == self.arities.get(name)

    def __getstate__(self) -> dict:
        if self._signatures_travel:
            return self.__dict__
        return {**self.__dict__, "signatures": {}}


def _binds_alone(signature: inspect.Signature) -> bool:
    """Whether a method takes ``self`` and nothing else required."""
    try:
        signature.bind(None)
    except TypeError:
        return False
    return True


class ActorClassInheritanceException(TypeError):
    """A class statement named an actor class among its bases (as in Ray)."""


class _RefuseSubclass(type):
    """Metaclass of the stand-in base an actor class puts in a class statement's bases
    (``ActorClass.__mro_entries__``): it refuses to make the class, naming it."""

    def __new__(mcs, name: str, bases: tuple, namespace: dict, **kwargs):
        actors = [b for b in namespace.get("__orig_bases__", ()) if isinstance(b, ActorClass)]
        base = actors[0].__name__ if actors else "?"
        raise ActorClassInheritanceException(
            f"Attempted to define subclass '{name}' of actor class '{base}'. Inheriting from "
            "actor classes is not currently supported. You can instead inherit from a "
            "non-actor base class and make the derived class an actor class (with "
            "@minray.remote)."
        )


_SUBCLASS_GUARD = type.__new__(_RefuseSubclass, "ActorClassBase", (), {})


class ActorClass:
    """A class made remote: ``Cls.remote(*args)`` creates an actor and returns its handle."""

    def __init__(self, cls: type, actor_options: dict):
        self._cls = cls
        self._options = {**opts.ACTOR_DEFAULTS, **opts.validate_actor_options(actor_options)}
        self._info = _ClassInfo(cls)
        self._blob: bytes | None = None
        self._class_id = b""
        self._init_signature = _init_signature(cls)
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__module__ = cls.__module__
        self.__doc__ = cls.__doc__

    def __getattr__(self, name: str):
        """Class and static attributes of the user's class (and its bases), as in Ray:
        ``Counter.START`` or ``Counter.helper()``, in the driver or in the actor's methods."""
        cls = self.__dict__.get("_cls")
        if cls is None or (name.startswith("__") and name.endswith("__")):
            # dunders are protocol look-ups (pickle, copy, inspect): never the user's class
            raise AttributeError(f"'ActorClass' object has no attribute '{name}'")
        try:
            return getattr(cls, name)
        except AttributeError:
            raise AttributeError(
                f"'ActorClass({cls.__name__})' object has no attribute '{name}': neither "
                f"the actor class nor {cls.__qualname__} (or its bases) defines it."
            ) from None

    def __mro_entries__(self, bases: tuple) -> tuple:
        # ``class B(ActorCls)``: the stand-in's metaclass raises ActorClassInheritanceException
        return (_SUBCLASS_GUARD,)

    def __call__(self, *args, **kwargs):
        raise TypeError(
            "Actors cannot be instantiated directly. Instead of "
            f"'{self.__name__}()', use '{self.__name__}.remote()'."
        )

    def remote(self, *args, **kwargs) -> ActorHandle:
        """Create the actor; returns its handle at once (``__init__`` runs on a worker)."""
        return self._remote(args, kwargs, self._options)

    def options(self, **actor_options) -> _BoundActorOptions:
        """Override options for one creation: ``Cls.options(name="x").remote()``."""
        merged = {**self._options, **opts.validate_actor_options(actor_options)}
        if merged.get("get_if_exists") and not merged.get("name"):
            raise ValueError("The actor name must be specified to use `get_if_exists`.")
        return _BoundActorOptions(self, merged)

    def _export(self) -> tuple[bytes, bytes]:
        if self._blob is None:
            self._class_id, self._blob = serialization.export(
                self._cls, f"the actor class {self.__qualname__}", "the class"
            )
        return self._class_id, self._blob

    def _remote(self, args: tuple, kwargs: dict, options: dict) -> ActorHandle:
        if self._init_signature is not None:
            try:
                self._init_signature.bind(None, *args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{self.__name__}.remote(): {e}") from None
        worker = api._auto_init()
        class_id, blob = self._export()
        if worker.local_runner is not None:
            worker.local_runner.known(class_id, self._cls)
        info = self._info
        actor_id = ids.new_actor_id()
        name = options["name"] or ""
        namespace = options["namespace"] or worker.current_namespace()
        max_concurrency = options["max_concurrency"] or (
            DEFAULT_MAX_CONCURRENCY_ASYNC if info.is_async else 1
        )
        groups = dict(options["concurrency_groups"] or {})
        check_method_groups(info.class_name, info.method_groups, groups)
        resources, held = opts.actor_resources(options)
        placement = opts.placement_of(options)
        if placement is None and opts.may_inherit_placement(options):
            placement = opts.inherited_placement()  # the caller captures its child tasks
            if placement is not None:
                resources = opts.in_inherited_bundle(resources, placement)
                held = opts.in_inherited_bundle(held, placement)
        spec, keep = build_actor_creation(
            worker,
            actor_id=actor_id,
            class_name=info.class_name,
            class_id=class_id,
            class_blob=blob,
            args=args,
            kwargs=kwargs,
            resources=resources,
            actor_resources=held,
            actor_info={
                "actor_id": actor_id,
                "class_name": info.class_name,
                "name": name,
                "namespace": namespace,
                "is_async": info.is_async,
                "max_concurrency": max_concurrency,
                "max_restarts": options["max_restarts"],
                "detached": options["lifetime"] == "detached",
                "placement": placement,
                "concurrency_groups": groups,
                "method_groups": info.method_groups,
            },
            env_vars=opts.env_vars_for(opts.own_env_vars(options), api._state.env_vars),
            strategy=opts.lease_strategy(options),
            runtime_env=runtime_envs.for_task(worker, options.get("runtime_env")),
        )
        retries = options["max_task_retries"]
        limit = options["max_pending_calls"]
        calls = _CallRules(tuple(groups), options["allow_out_of_order_execution"])
        unowned = ActorHandle(actor_id, info, retries, None, limit, calls)
        try:
            reply = worker.call_node(
                RegisterActor(
                    actor_id,
                    name,
                    namespace,
                    info.class_name,
                    options["lifetime"] == "detached",
                    options["max_restarts"],
                    bool(options["get_if_exists"]),
                    serialization.dumps(unowned),
                )
            )
        except RemoteError as e:
            if e.error == "ActorAlreadyExistsError":
                raise ActorAlreadyExistsError(str(e)) from None
            raise RaySystemError(f"the node refused to register the actor: {e}") from None
        if not reply.created:  # get_if_exists found a live actor with this name
            return ActorHandle(reply.actor_id, info, retries, None, limit, calls)
        lifetime_id = ids.object_id_for(spec.task_id, 1)
        lifetime = ObjectRef(lifetime_id, worker.address)
        submit_actor_creation(worker, spec, lifetime_id)
        del keep
        return ActorHandle(actor_id, info, retries, lifetime, limit, calls)


class _CallRules:
    """What a handle knows of how its actor takes calls: the names of its concurrency
    groups, and whether calls may run out of order (allow_out_of_order_execution)."""

    __slots__ = ("groups", "out_of_order")

    def __init__(self, groups: tuple = (), out_of_order: bool = False):
        self.groups = groups
        self.out_of_order = out_of_order

    def __reduce__(self):
        return _CallRules, (self.groups, self.out_of_order)


_NO_RULES = _CallRules()


class _BoundActorOptions:
    """What ``Cls.options(...)`` returns: call ``.remote(...)`` on it."""

    def __init__(self, actor_class: ActorClass, options: dict):
        self._actor_class = actor_class
        self._options = options

    def remote(self, *args, **kwargs) -> ActorHandle:
        return self._actor_class._remote(args, kwargs, self._options)


class ActorHandle:
    """A reference to an actor: call ``handle.method.remote(...)``. Picklable."""

    def __init__(
        self,
        actor_id: bytes,
        info: _ClassInfo,
        max_task_retries: int,
        lifetime_ref: ObjectRef | None,
        max_pending_calls: int = -1,
        calls: _CallRules = _NO_RULES,
    ):
        self._actor_id = actor_id
        self._info = info
        self._max_task_retries = max_task_retries
        self._lifetime_ref = lifetime_ref
        self._max_pending_calls = max_pending_calls
        self._calls = calls

    def __getattr__(self, name: str) -> ActorMethod:
        info = self.__dict__.get("_info")
        if info is None or name not in info.methods:
            raise AttributeError(f"'ActorHandle' object has no attribute '{name}'")
        # not cached on the handle: that would be a cycle, and keep the actor alive until gc
        return ActorMethod(self, name, info.methods[name])

    def __reduce__(self):
        return _rebuild_handle, (
            self._actor_id,
            self._info,
            self._max_task_retries,
            self._lifetime_ref,
            self._max_pending_calls,
            self._calls,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id

    def __hash__(self) -> int:
        return hash(self._actor_id)

    def __repr__(self) -> str:
        return f"Actor({self._info.class_name}, {self._actor_id.hex()})"

    __str__ = __repr__


def _rebuild_handle(
    actor_id, info, max_task_retries, lifetime_ref, max_pending_calls=-1, calls=_NO_RULES
):
    return ActorHandle(actor_id, info, max_task_retries, lifetime_ref, max_pending_calls, calls)


class ActorMethod:
    """One method of an actor: ``.remote(...)`` calls it; ``.options(num_returns=...)``."""

    def __init__(self, handle: ActorHandle, name: str, method_options: dict):
        self._handle = handle
        self._name = name
        default = "streaming" if name in handle._info.generators else 1  # as in Ray 2.x
        self._num_returns = method_options.get("num_returns", default)
        self._backpressure = method_options.get(_BACKPRESSURE)
        self._max_task_retries = method_options.get("max_task_retries")
        self._call_name = method_options.get("name") or f"{handle._info.class_name}.{name}"

    def __call__(self, *args, **kwargs):
        raise TypeError(
            "Actor methods cannot be called directly. Instead of running "
            f"'object.{self._name}()', try 'object.{self._name}.remote()'."
        )

    def remote(self, *args, **kwargs):
        """Call the method on the actor; returns an ObjectRef (a list for num_returns > 1)."""
        return self._remote(args, kwargs, self._num_returns, "", self._backpressure)

    def options(self, **method_options) -> _BoundMethodOptions:
        for key in method_options:
            if key not in _VALID_METHOD_OPTIONS:
                raise ValueError(
                    f"Invalid option keyword {key} for actor methods. Valid ones are "
                    f"{list(_VALID_METHOD_OPTIONS)}."
                )
        num_returns = method_options.get("num_returns", self._num_returns)
        opts._check_num_returns(num_returns)
        group = method_options.get("concurrency_group") or ""
        if group:
            check_group_name(group)
            if group not in self._handle._calls.groups:
                info = self._handle._info
                raise ValueError(
                    f"{self._call_name}.options(): "
                    + unknown_group_message(info.class_name, group, self._handle._calls.groups)
                )
        backpressure = method_options.get(_BACKPRESSURE, self._backpressure)
        opts._check_backpressure(backpressure)
        return _BoundMethodOptions(self, num_returns, group, backpressure)

    def _remote(
        self,
        args: tuple,
        kwargs: dict,
        num_returns,
        concurrency_group: str = "",
        backpressure: int | None = None,
    ):
        handle = self._handle
        info = handle._info
        signature = info.signatures.get(self._name)
        if signature is not None and not info.binds_surely(self._name, args, kwargs):
            try:
                signature.bind(None, *args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{self._call_name}.remote(): {e}") from None
        retries = self._max_task_retries
        if retries is None:
            retries = handle._max_task_retries
        worker = api._auto_init()
        limit = handle._max_pending_calls
        if limit > 0 and worker.actors.pending(handle._actor_id) >= limit:
            raise PendingCallsLimitExceeded(
                f"The actor {handle._actor_id.hex()} has {limit} calls from this process "
                f"without a result, its max_pending_calls. Wait for some of them "
                "(minray.get / minray.wait) before making more calls, or raise the limit."
            )
        generator = opts.generator_call({"num_returns": num_returns, _BACKPRESSURE: backpressure})
        refs = submit_actor_task(
            worker,
            actor_id=handle._actor_id,
            method=self._name,
            name=self._call_name,
            args=args,
            kwargs=kwargs,
            num_returns=1 if generator is not None else num_returns,
            max_retries=retries,
            lifetime_ref=handle._lifetime_ref,
            concurrency_group=concurrency_group,
            out_of_order=handle._calls.out_of_order,
            generator=generator,
        )
        if generator is not None:
            return generator_result(worker, refs[0])
        if num_returns == 1:
            return refs[0]
        if num_returns == 0:
            return None
        return refs


class _BoundMethodOptions:
    def __init__(
        self, method: ActorMethod, num_returns, concurrency_group: str, backpressure: int | None
    ):
        self._method = method
        self._num_returns = num_returns
        self._concurrency_group = concurrency_group
        self._backpressure = backpressure

    def remote(self, *args, **kwargs):
        return self._method._remote(
            args, kwargs, self._num_returns, self._concurrency_group, self._backpressure
        )


def _init_signature(cls: type) -> inspect.Signature | None:
    init = cls.__dict__.get("__init__") or getattr(cls, "__init__", None)
    if init is None or init is object.__init__:
        return None
    try:
        return inspect.signature(init)
    except (TypeError, ValueError):
        return None


def list_named_actors(all_namespaces: bool = False) -> list:
    """Names of live named actors: of this job's namespace, or (all_namespaces) every one."""
    from .protocol.messages import ListNamedActors

    worker = api._auto_init()
    reply = worker.call_node(ListNamedActors(worker.current_namespace(), bool(all_namespaces)))
    if all_namespaces:
        return [{"name": name, "namespace": ns} for name, ns in reply.actors]
    return [name for name, _ in reply.actors]


def handle_from_blob(blob: bytes) -> ActorHandle:
    """A handle rebuilt from what the node stored at registration (for get_actor)."""
    import pickle

    return pickle.loads(blob)


__all__ = [
    "ActorClass",
    "ActorClassInheritanceException",
    "ActorHandle",
    "ActorMethod",
    "exit_actor",
    "list_named_actors",
    "method",
]
