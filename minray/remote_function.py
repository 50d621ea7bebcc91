"""``@minray.remote`` on a function: RemoteFunction, ``.options()`` and ``.remote()``."""

from __future__ import annotations

import inspect
from typing import Any

from . import api, serialization
from . import options as opts
from .object_ref_generator import generator_result
from .runtime.task_builder import submit_task
from .runtime_env import resolver as runtime_envs


class RemoteFunction:
    """A function that runs as a task: call ``f.remote(...)`` to get an ObjectRef."""

    def __init__(self, function, task_options: dict):
        if inspect.iscoroutinefunction(function):
            raise ValueError(
                f"'async def' functions cannot be minray tasks ({function.__qualname__}). Make it "
                "a regular function that calls asyncio.run(...), or use an async actor method."
            )
        if inspect.isasyncgenfunction(function):
            raise ValueError(
                f"'async def' generators cannot be minray tasks ({function.__qualname__}). "
                "Make it a regular generator function, or use an async actor method."
            )
        self._is_generator = inspect.isgeneratorfunction(function)
        if self._is_generator and task_options.get("num_returns") is None:
            task_options = {**task_options, "num_returns": "streaming"}  # Ray 2.x's default
        task_options = opts.validate_task_options(task_options)
        self._function = function
        self._options = {**opts.TASK_DEFAULTS, **task_options}
        self._resources = opts.task_resources(self._options)
        self._strategy = opts.lease_strategy(self._options)
        opts.check_num_returns_zero(function, self._options["num_returns"])
        self._signature = inspect.signature(function)
        self._arity = opts.positional_arity(self._signature)  # calls that skip bind()
        self._blob: bytes | None = None
        self._plan: _CallPlan | None = None  #: for calls without .options()
        self._function_id = b""
        self.__name__ = getattr(function, "__name__", "remote_function")
        self.__qualname__ = getattr(function, "__qualname__", self.__name__)
        self.__doc__ = function.__doc__
        self.__module__ = getattr(function, "__module__", None)

    def __getstate__(self) -> dict:
        """Pickled (captured by another task): without the plan, made again on first use."""
        return {**self.__dict__, "_plan": None}

    def __call__(self, *args, **kwargs):
        name = f"{self.__module__}.{self.__qualname__}"
        raise TypeError(
            f"Remote functions cannot be called directly. Instead of running '{name}()', "
            f"try '{name}.remote()'."
        )

    def remote(self, *args, **kwargs):
        """Run the function as a task; returns an ObjectRef (a list for num_returns > 1)."""
        return self._remote(args, kwargs, self)

    def options(self, **task_options) -> _BoundOptions:
        """Override options for some calls: ``f.options(num_cpus=2).remote(x)``."""
        task_options = opts.validate_task_options(self._generator_default(task_options))
        merged = {**self._options, **task_options}
        opts.check_num_returns_zero(self._function, merged["num_returns"])
        return _BoundOptions(self, merged)

    def _generator_default(self, task_options: dict) -> dict:
        """``options(num_returns=None)`` on a generator function: streaming, its default."""
        if self._is_generator and "num_returns" in task_options:
            if task_options["num_returns"] is None:
                return {**task_options, "num_returns": "streaming"}
        return task_options

    def _export(self) -> tuple[bytes, bytes]:
        if self._blob is None:
            self._function_id, self._blob = serialization.export(
                self._function, f"the function {self.__qualname__}", "the function"
            )
        return self._function_id, self._blob

    def _remote(self, args: tuple, kwargs: dict, bound: RemoteFunction | _BoundOptions):
        """Submit a call with ``bound``'s options (this function's, or those of .options())."""
        if kwargs or len(args) != self._arity:
            try:
                self._signature.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{self.__qualname__}.remote(): {e}") from None
        worker = api._auto_init()
        plan = bound._plan
        if plan is None:
            plan = bound._plan = _CallPlan(self, bound._options)
        if worker.local_runner is not None:
            worker.local_runner.known(plan.function_id, self._function)
        resources, placement = bound._resources, plan.placement
        if plan.may_inherit_placement:
            inherited = opts.inherited_placement()  # the caller captures its child tasks
            if inherited is not None:
                placement = inherited
                resources = opts.in_inherited_bundle(resources, inherited)
        generator, num_returns = plan.generator, plan.num_returns
        refs = submit_task(
            worker,
            name=plan.name,
            function_id=plan.function_id,
            function_blob=plan.function_blob,
            args=args,
            kwargs=kwargs,
            num_returns=num_returns,
            resources=resources,
            max_retries=plan.max_retries,
            retry_exceptions=plan.retry_exceptions,
            env_vars=opts.env_vars_for(plan.env_vars, api._state.env_vars),
            strategy=bound._strategy,
            placement=placement,
            generator=generator,
            runtime_env=runtime_envs.for_task(worker, plan.runtime_env),
        )
        if generator is not None:
            return generator_result(worker, refs[0])
        if num_returns == 1:
            return refs[0]
        if num_returns == 0:
            return None
        return refs


class _BoundOptions:
    """What ``f.options(...)`` returns: call ``.remote(...)`` on it."""

    def __init__(self, function: RemoteFunction, options: dict):
        self._function = function
        self._options = options
        self._resources = opts.task_resources(options)
        self._strategy = opts.lease_strategy(options)
        self._plan: _CallPlan | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_plan": None}  # (as RemoteFunction's)

    def remote(self, *args, **kwargs):
        return self._function._remote(args, kwargs, self)


class _CallPlan:
    """What every call with one set of options sends alike, worked out on the first call
    (``.remote()`` is on the hot path of every task)."""

    __slots__ = (
        "name", "function_id", "function_blob", "num_returns", "generator", "placement",
        "may_inherit_placement", "max_retries", "retry_exceptions", "env_vars", "runtime_env",
    )  # fmt: skip

    def __init__(self, function: RemoteFunction, options: dict):
        self.name = options["name"] or function.__name__
        self.function_id, self.function_blob = function._export()
        self.generator = opts.generator_call(options)
        self.num_returns = 1 if self.generator is not None else options["num_returns"]
        self.placement = opts.placement_of(options)
        #: runs in its caller's placement group when the caller captures child tasks
        self.may_inherit_placement = self.placement is None and opts.may_inherit_placement(options)
        self.max_retries = options["max_retries"]
        self.retry_exceptions = options["retry_exceptions"]
        self.env_vars = opts.own_env_vars(options)  #: its own (what it inherits: per call)
        #: its packages are resolved per call, over those of the task running then
        self.runtime_env = options["runtime_env"]


def make_remote(target: Any, options: dict):
    if inspect.isclass(target):
        from .actor import ActorClass

        return ActorClass(target, options)
    if not inspect.isfunction(target):  # as in Ray: no builtins, partials, callable objects
        shown = repr(target)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise TypeError(
            "The @minray.remote decorator must be applied to either a function or a class. "
            f"It was applied to {shown} ({type(target).__name__}); wrap it in a function "
            "defined with def (or a class) and decorate that."
        )
    return RemoteFunction(target, options)
