"""runtime_env packages: the zipped ``working_dir`` and ``py_modules`` a driver uploads
once to the head, and that workers fetch (through their node) to unpack once per node.

Part of the protocol's one place for messages (re-exported by messages.py). The
zip files are opaque bytes to the nodes and the head.
"""

from __future__ import annotations

from typing import Any

from .message_base import Message, MsgType, message


@message
class UploadPackage(Message):
    """Driver -> node -> head: keep this package (``_ray_pkg_<hash>.zip``); answered by
    Ok, or ErrorReply("ValueError") when the head's package store is full."""

    type = MsgType.UPLOAD_PACKAGE
    name: str
    data: bytes


@message
class GetPackage(Message):
    """Worker or driver -> node -> head: a package's bytes (``check_only``: only whether
    the head has it); answered by Package."""

    type = MsgType.GET_PACKAGE
    name: str
    check_only: bool


@message
class Package(Message):
    type = MsgType.PACKAGE
    name: str
    found: bool
    data: Any  #: the zip file's bytes, or None (not found, or check_only)
