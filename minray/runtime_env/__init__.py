"""runtime_env: what a job, task or actor runs with besides its code (Ray's names).

``env_vars``, ``working_dir`` (a local directory: zipped, uploaded once to the
head, unpacked once per node, the workers' current directory and first on their
import path), ``py_modules`` (local packages or .py files, put on the import path)
and ``excludes`` (patterns left out of both). ``pip`` and ``conda`` are refused
with what to do instead. ``validate.py`` checks, ``packaging.py`` zips,
``resolver.py`` uploads (the caller's side), ``setup.py`` unpacks and enters (the
worker's side).
"""

from __future__ import annotations

from typing import Any

from .validate import check


class RuntimeEnv(dict):
    """Ray's ``RuntimeEnv``: a dict of the runtime_env fields, checked when made."""

    def __init__(
        self,
        *,
        py_modules: list | None = None,
        working_dir: str | None = None,
        env_vars: dict | None = None,
        excludes: list | None = None,
        **kwargs: Any,
    ):
        fields = {"py_modules": py_modules, "working_dir": working_dir,
                  "env_vars": env_vars, "excludes": excludes, **kwargs}  # fmt: skip
        super().__init__({k: v for k, v in fields.items() if v is not None})
        check(dict(self))


__all__ = ["RuntimeEnv"]
