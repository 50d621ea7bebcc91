"""The public namespace: what ``import minray`` offers, as Ray Core code expects it."""

import minray


def test_all_lists_exactly_the_public_names():
    public = {name for name in dir(minray) if not name.startswith("_")}
    modules = {
        "api",
        "config",
        "exceptions",
        "ids",
        "object_ref",
        "object_store",
        "options",
        "protocol",
        "remote_function",
        "runtime",
        "runtime_context",
        "serialization",
        "node",
        "cli",
    }
    assert set(minray.__all__) == public - modules | {"exceptions"}


def test_every_name_in_all_exists():
    for name in minray.__all__:
        assert hasattr(minray, name), name


def test_exception_names_follow_ray():
    from minray import exceptions

    for name in (
        "RayError",
        "RayTaskError",
        "GetTimeoutError",
        "WorkerCrashedError",
        "ObjectLostError",
        "OwnerDiedError",
        "ObjectStoreFullError",
        "TaskCancelledError",
        "RaySystemError",
        "RayActorError",
        "ActorDiedError",
    ):
        assert issubclass(getattr(exceptions, name), exceptions.RayError)
    assert issubclass(exceptions.GetTimeoutError, TimeoutError)
