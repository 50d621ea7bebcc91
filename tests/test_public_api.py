"""The public namespace: what ``import minray`` offers, as Ray Core code expects it."""

import types

import minray


def test_all_lists_exactly_the_public_names():
    public = {
        name
        for name in dir(minray)
        if not name.startswith("_") and not isinstance(getattr(minray, name), types.ModuleType)
    }
    assert set(minray.__all__) == public | {"exceptions", "actor", "util"}


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
