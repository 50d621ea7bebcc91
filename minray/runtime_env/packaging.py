"""Zip a ``working_dir`` or a ``py_module`` into a content-addressed package (pure I/O
on local files; no cluster).

The zip is deterministic (files in sorted order, fixed times and modes), so the
same files give the same name, ``_ray_pkg_<sha256 prefix>.zip`` (Ray's), and are
uploaded once. ``excludes`` are gitignore-like patterns: ``*.csv`` matches a file
name anywhere, ``data/`` a directory anywhere, ``sub/x.txt`` a path from the top.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import zipfile

PREFIX = "gcs://"  #: Ray's scheme for packages kept by the cluster
_STAMP = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same bytes every time


class PackageTooLarge(ValueError):
    """The files to package are over the size limit."""


def is_package_uri(value: str) -> bool:
    return value.startswith(PREFIX)


def package_name(uri: str) -> str:
    return uri[len(PREFIX) :]


def excluded(relpath: str, is_dir: bool, patterns: list[str]) -> bool:
    """Whether ``relpath`` (posix, from the top) matches one of the patterns."""
    name = relpath.rsplit("/", 1)[-1]
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern:
            continue
        dir_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if dir_only and not is_dir:
            continue
        if "/" in pattern:
            if fnmatch.fnmatchcase(relpath, pattern.lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def _files(top: str, excludes: list[str]) -> list[tuple[str, str]]:
    """``[(relpath, path), ...]`` of the files under ``top`` that are not excluded."""
    found = []
    for folder, dirs, files in os.walk(top):
        rel = os.path.relpath(folder, top)
        rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        dirs[:] = sorted(d for d in dirs if not excluded(rel + d, True, excludes))
        for name in sorted(files):
            if not excluded(rel + name, False, excludes):
                path = os.path.join(folder, name)
                if os.path.isfile(path):  # (not a dangling link or a socket)
                    found.append((rel + name, path))
    return found


def package(
    path: str, excludes: list[str], limit: int, what: str, under: str = ""
) -> tuple[str, bytes]:
    """Zip the directory (or single .py file) ``path``: returns ``(uri, zip bytes)``.
    ``under``: a folder name the files go in (a py_module keeps its package's name).
    Raises ValueError naming ``what`` when the path is not usable or too large."""
    if os.path.isfile(path) and path.endswith(".py"):
        files = [(os.path.basename(path), path)]
    elif os.path.isdir(path):
        files = _files(path, excludes)
    else:
        raise ValueError(
            f"{what} {path!r} is not a directory{' or a .py file' if under else ''} on this "
            "machine (it must be a local path: the cluster gets a copy)"
        )
    total = sum(os.path.getsize(p) for _, p in files)
    if total > limit:
        largest = sorted(files, key=lambda f: -os.path.getsize(f[1]))[:3]
        raise PackageTooLarge(
            f"{what} {path!r} holds {_size(total)} of files, over the limit of {_size(limit)} "
            "(runtime_env_max_bytes, environment variable MINRAY_RUNTIME_ENV_MAX_BYTES). "
            "The largest: "
            + ", ".join(f"{rel} ({_size(os.path.getsize(p))})" for rel, p in largest)
            + ". Leave out data with runtime_env['excludes'] (e.g. ['*.csv', '.git']) and "
            "pass large data as objects (minray.put) or on a shared filesystem."
        )
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for rel, file in files:
            arcname = f"{under}/{rel}" if under else rel
            with open(file, "rb") as f:
                data = f.read()
            digest.update(arcname.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
            info = zipfile.ZipInfo(arcname, _STAMP)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return f"{PREFIX}_ray_pkg_{digest.hexdigest()[:32]}.zip", buffer.getvalue()


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 2**20 else f"{n / 2**20:.1f} MiB"
