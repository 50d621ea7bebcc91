"""Entry point of a worker process, called in the child the zygote forked."""

from __future__ import annotations

import io
import os
import random
import sys
from typing import TYPE_CHECKING

from .. import ids

if TYPE_CHECKING:
    from ..node.daemon import NodeSettings

DRIVER_JOB_ID = b"\x01\x00\x00\x00"


def _redirect_output(settings: NodeSettings, worker_id: bytes) -> None:
    """Send fd 1 and 2 to this worker's log files (the node streams them to the driver)."""
    for fd, suffix in ((1, "out"), (2, "err")):
        log = os.open(
            settings.worker_log(worker_id, suffix), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        os.dup2(log, fd)
        os.close(log)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)


def run_worker(settings: NodeSettings, token: bytes, worker_id: bytes) -> None:
    from .. import api
    from .core_worker import CoreWorker
    from .task_executor import TaskExecutor

    _redirect_output(settings, worker_id)
    ids.reseed_after_fork()
    random.seed()
    worker = CoreWorker(
        mode="worker",
        node_address=settings.address,
        session_dir=settings.session_dir,
        token=token,
        job_id=DRIVER_JOB_ID,
        worker_id=worker_id,
    )
    worker.executor = TaskExecutor(worker)
    worker.start()
    api.attach_worker(worker)
    worker.executor.run_forever()
