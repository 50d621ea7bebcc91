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


def test_util_uses_only_the_public_api():
    import ast
    import pathlib

    private = ("minray.api", "minray.runtime", "minray.node", "minray.protocol")
    root = pathlib.Path(minray.__file__).parent / "util"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(private), f"{path.name} imports {name}"
                if name.startswith("minray"):
                    assert not any(p.startswith("_") for p in name.split(".")), (path, name)


def test_ray_util_names_are_there():
    from minray import util

    assert {"ActorPool", "iter", "list_named_actors", "progress", "queue"} <= set(dir(util))
    assert util.queue.Queue and util.iter.from_range and util.progress.as_completed
    assert callable(util.placement_group) and callable(util.remove_placement_group)
    from minray.cluster_utils import Cluster
    from minray.util.placement_group import placement_group_table
    from minray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    assert Cluster and placement_group_table and PlacementGroupSchedulingStrategy
