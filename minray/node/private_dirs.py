"""Directories only their user may use: the session root and ``~/.minray``.

On a shared machine (a lab, a login node) anyone can create a path in the temp
directory before you do, or swap a directory for a symbolic link to one they
control. So each user's sessions live under a root of their own,
``<temp dir>/minray-<uid>`` (``MINRAY_SESSION_ROOT`` chooses another), made mode
0700; and minray refuses a session root or ``~/.minray`` that is a symbolic
link, belongs to someone else, or that others may write to, saying why and what
to do. (The root's name is not a Python identifier either, so a script run from
the temp directory never imports it as the ``minray`` package.)
"""

from __future__ import annotations

import os
import pwd
import stat

from ..config import CONFIG


class UnsafeDirectory(PermissionError):
    """A directory minray would keep its sessions or token in is not safely the user's."""


def private_dir(path: str, what: str) -> str:
    """``path``, made (mode 0700) if missing, once it is safe to use; else UnsafeDirectory."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    check_private_dir(path, what)
    return path


def check_private_dir(path: str, what: str) -> None:
    """Raise UnsafeDirectory if ``path`` is a link, not a directory, someone else's, or
    writable by others (a missing path is fine: nothing can be read from it)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    fix = (
        "Remove it, or set MINRAY_SESSION_ROOT to a directory of your own."
        if what == "the session root"
        else "Remove it; minray makes it again, mode 0700."
    )
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeDirectory(
            f"minray will not use {what} {path}: it is a symbolic link (to "
            f"{os.readlink(path)}), which another user could have put there to read or "
            f"replace your files. {fix}"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectory(f"minray will not use {what} {path}: it is not a directory. {fix}")
    if info.st_uid != os.getuid():
        raise UnsafeDirectory(
            f"minray will not use {what} {path}: it belongs to {_user(info.st_uid)}, not to "
            f"you ({_user(os.getuid())}), so its owner could read your token and sessions "
            f"or plant files there. {fix}"
        )
    if info.st_mode & 0o022:
        raise UnsafeDirectory(
            f"minray will not use {what} {path}: other users can write to it (mode "
            f"{stat.S_IMODE(info.st_mode):o}). Make it private with `chmod 700 {path}`."
        )


def session_root() -> str:
    """The user's session root, made if missing and checked."""
    return private_dir(CONFIG.session_root, "the session root")


def user_dir() -> str:
    """``~/.minray`` (where the cluster token is kept), made if missing and checked."""
    return private_dir(os.path.join(os.path.expanduser("~"), ".minray"), "the directory")


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
