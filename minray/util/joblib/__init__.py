"""Ray's ``ray.util.joblib``: run joblib (and scikit-learn) parallel loops on minray.

::

    import joblib
    from minray.util.joblib import register_ray

    register_ray()
    with joblib.parallel_backend("ray"):   # "minray" names the same backend
        search.fit(X, y)

joblib is imported only when ``register_ray()`` is called, so this module
imports without it.
"""

from __future__ import annotations

BACKEND_NAMES = ("ray", "minray")


def register_ray() -> None:
    """Register the minray joblib backend under the names "ray" and "minray"."""
    try:
        from joblib.parallel import register_parallel_backend
    except ImportError as e:
        raise ImportError(
            "To use the ray backend you must install joblib: pip install joblib"
        ) from e
    from .ray_backend import RayBackend

    for name in BACKEND_NAMES:
        register_parallel_backend(name, RayBackend)


__all__ = ["register_ray"]
