"""Spill files: one per object, the segment's bytes as they are (layout.py's format).

A node spills into a directory of its own, ``<base>/minray-spill-<node id>``,
where ``<base>`` is ``object_spilling_directory`` (Ray's
``object_spilling_config``) or the node's session directory; the node removes
it at shutdown. A file is named by the object id. It is written as
``<name>.tmp`` (space reserved first with ``posix_fallocate``, so a full disk
fails before a byte is written), its size checked, then renamed: a file with
the final name is always complete. Reading checks the size again. The copies
run in the kernel (``sendfile`` from the segment to the file and back), on the
node's spill threads, never on its event loop.
"""

from __future__ import annotations

import errno
import os
import sys

from ..exceptions import OutOfDiskError
from . import shm

#: sendfile copies between any files on Linux (elsewhere only to sockets)
_SENDFILE_ANY = sys.platform.startswith("linux")
#: errors that mean the disk (or the user's quota on it) is full
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def check_directory(path: str, what: str = "the object spilling directory") -> str:
    """Create ``path`` if needed and prove it writable; returns it absolute.

    Raises ValueError naming the path and what to do, so a bad setting fails when
    minray starts, not when the store first fills.
    """
    path = os.path.abspath(os.path.expanduser(path))
    probe = os.path.join(path, f".minray-probe-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        os.makedirs(path, 0o700, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(
            f"{what} {path!r} cannot be used: {e.strerror or e}. Give a directory this user "
            "can create and write, e.g. _system_config={'object_spilling_config': json.dumps("
            "{'type': 'filesystem', 'params': {'directory_path': '/tmp/spill'}})} or "
            "MINRAY_OBJECT_SPILLING_DIRECTORY."
        ) from None
    return path


def node_directory(base: str, node_id: bytes) -> str:
    """This node's own spill directory under ``base`` (created, mode 0700)."""
    path = os.path.join(check_directory(base), f"minray-spill-{node_id.hex()[:16]}")
    os.makedirs(path, 0o700, exist_ok=True)
    return path


def file_path(directory: str, object_id: bytes) -> str:
    return os.path.join(directory, object_id.hex())


def write(segment: str, size: int, path: str) -> None:
    """Copy the first ``size`` bytes of ``segment`` to a new file at ``path``.

    Raises OutOfDiskError when the disk is full, OSError otherwise; either way
    no file is left behind and the segment is untouched.
    """
    tmp = path + ".tmp"
    src = shm.open_fd(segment)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _reserve_space(fd, size)
            _copy(src, fd, size, segment)
            if os.fstat(fd).st_size != size:
                raise OSError(errno.EIO, f"spill file {tmp} is not {size} bytes long")
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        remove(tmp)
        if e.errno in DISK_FULL:
            raise OutOfDiskError(_disk_full_message(path, size)) from None
        raise
    except BaseException:
        remove(tmp)
        raise
    finally:
        os.close(src)


def read_into(path: str, size: int, segment: str, new: bool) -> None:
    """Copy the spill file at ``path`` (``size`` bytes) into ``segment`` (created
    here if ``new``, else a reused one at least that large)."""
    src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstat(src).st_size != size:
            raise OSError(errno.EIO, f"spill file {path} is not {size} bytes long")
        fd = shm.create_fd(segment, size) if new else shm.open_fd_writable(segment)
        try:
            _copy(src, fd, size, path)
        finally:
            os.close(fd)
    finally:
        os.close(src)


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _copy(src: int, dst: int, size: int, what: str) -> None:
    """Copy ``size`` bytes from the start of ``src`` to ``dst`` (in the kernel on Linux)."""
    offset = 0
    while offset < size:
        if _SENDFILE_ANY:
            sent = os.sendfile(dst, src, offset, size - offset)
        else:
            sent = os.write(dst, os.pread(src, min(size - offset, 1 << 24), offset))
        if sent == 0:
            raise OSError(errno.EIO, f"{what} ended at byte {offset} of {size}")
        offset += sent


def _reserve_space(fd: int, size: int) -> None:
    if not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno in DISK_FULL:
            raise
        # the file system cannot preallocate (EOPNOTSUPP, EINVAL): write will find out


def _disk_full_message(path: str, size: int) -> str:
    try:
        stat = os.statvfs(os.path.dirname(path))
        free = f"{stat.f_bavail * stat.f_frsize:,} bytes free"
    except OSError:
        free = "free space unknown"
    return (
        f"The object store is full and spilling an object of {size:,} bytes to "
        f"{os.path.dirname(path)} failed: the disk is full ({free}). Free disk space, "
        "point object_spilling_config (directory_path) at a larger disk, or drop "
        "references to objects you no longer need."
    )
