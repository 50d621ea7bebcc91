"""POSIX shared-memory segments, one per large object.

We call ``shm_open`` directly instead of using ``multiprocessing.shared_memory``:
Python's resource tracker would otherwise unlink or warn about segments at
process exit, but here the node's object manager owns every segment's lifetime.
Names stay under 31 characters (the macOS limit).
"""

from __future__ import annotations

import _posixshmem
import hashlib
import mmap
import os

PREFIX = "/minray_"


def segment_name(session_tag: str, object_id: bytes) -> str:
    return PREFIX + session_tag[:6] + hashlib.blake2b(object_id, digest_size=8).hexdigest()


def create(name: str, size: int) -> mmap.mmap:
    """Create a segment of ``size`` bytes and map it writable."""
    fd = _posixshmem.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, size)  # allocate pages in bulk: ~2x faster than faulting
        else:
            os.ftruncate(fd, size)
        # no MAP_POPULATE: the copy threads of write_segment fault pages in in parallel
        return mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
    except BaseException:
        _posixshmem.shm_unlink(name)
        raise
    finally:
        os.close(fd)


def create_fd(name: str, size: int) -> int:
    """Create a segment of ``size`` bytes (allocated) and return a writable descriptor of it,
    for writers that do not map it (``splice``); close it."""
    fd = _posixshmem.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, size)
        else:
            os.ftruncate(fd, size)
    except BaseException:
        os.close(fd)
        _posixshmem.shm_unlink(name)
        raise
    return fd


def open_fd_writable(name: str) -> int:
    """A writable descriptor of an existing segment (one being reused); close it."""
    return _posixshmem.shm_open(name, os.O_RDWR, mode=0o600)


def open_writable(name: str) -> mmap.mmap:
    """Map an existing segment (one being reused for a new object) writable."""
    fd = _posixshmem.shm_open(name, os.O_RDWR, mode=0o600)
    try:
        return mmap.mmap(fd, os.fstat(fd).st_size, flags=mmap.MAP_SHARED)
    finally:
        os.close(fd)


def open_readonly(name: str) -> mmap.mmap:
    """Map an existing segment read-only (buffers exported from it are read-only)."""
    return reopen_readonly(name, None, None)[0]


def reopen_readonly(name: str, kept: mmap.mmap | None, kept_key: tuple | None) -> tuple:
    """``(mapping, key)`` of an existing segment, read-only: ``kept`` (a mapping of it made
    before, whose page tables are still filled in) if the segment is still that file
    (``key``: its inode and size), else a new mapping."""
    fd = _posixshmem.shm_open(name, os.O_RDONLY, mode=0o600)
    try:
        st = os.fstat(fd)
        key = (st.st_ino, st.st_size)
        if kept is not None and kept_key == key:
            return kept, key
        return mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ), key
    finally:
        os.close(fd)


def open_fd(name: str) -> int:
    """A read-only descriptor of an existing segment (for ``os.sendfile``); close it."""
    return _posixshmem.shm_open(name, os.O_RDONLY, mode=0o600)


def exists(name: str) -> bool:
    """Whether a segment of this name is there (its file under /dev/shm)."""
    return os.path.exists("/dev/shm" + name)


def unlink(name: str) -> bool:
    """Remove a segment's name; mappings stay valid until unmapped. False if already gone."""
    try:
        _posixshmem.shm_unlink(name)
        return True
    except FileNotFoundError:
        return False
