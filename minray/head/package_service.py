"""The head's answers about runtime_env packages (head/packages.py).

A mixin of :class:`~minray.head.service.HeadService`; nodes forward these from
their drivers and workers (node/membership.py), and the head's own node calls
them in-process.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..config import CONFIG
from ..protocol.messages import ErrorReply, GetPackage, Ok, Package, UploadPackage
from .packages import PackageStore

if TYPE_CHECKING:
    from .service import HeadService


class PackageService:
    """``handle_UploadPackage`` and ``handle_GetPackage``, mixed into HeadService."""

    packages: PackageStore | None = None

    def keep_packages_in(self: HeadService, session_dir: str) -> None:
        """Where the packages go: the head node's session directory."""
        folder = os.path.join(session_dir, "runtime_resources", "packages")
        self.packages = PackageStore(folder, CONFIG.runtime_env_store_bytes)

    def handle_UploadPackage(self: HeadService, conn, msg: UploadPackage):
        if self.packages is None:
            return ErrorReply("ValueError", "this head keeps no runtime_env packages")
        try:
            self.packages.put(msg.name, msg.data)
        except (ValueError, OSError) as e:
            return ErrorReply("ValueError", str(e))
        return Ok()

    def handle_GetPackage(self: HeadService, conn, msg: GetPackage):
        if self.packages is None:
            return Package(msg.name, False, None)
        try:
            if msg.check_only:
                return Package(msg.name, self.packages.has(msg.name), None)
            data = self.packages.get(msg.name)
        except ValueError as e:
            return ErrorReply("ValueError", str(e))
        return Package(msg.name, data is not None, data)
