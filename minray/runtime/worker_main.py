"""Entry point of a worker process, called in the child the zygote forked."""

from __future__ import annotations

import io
import logging
import os
import random
import sys
from typing import TYPE_CHECKING

from .. import ids
from ..proctitle import set_title

if TYPE_CHECKING:
    from ..node.node_settings import NodeSettings

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


def _reset_logging() -> None:
    """Drop the node's logging set-up inherited through the fork; user code starts clean."""
    for handler in list(logging.root.handlers):
        logging.root.removeHandler(handler)
    logging.root.setLevel(logging.WARNING)
    minray_logger = logging.getLogger("minray")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("(minray) %(levelname)s %(message)s"))
    minray_logger.addHandler(handler)
    minray_logger.propagate = False


def run_worker(settings: NodeSettings, token: bytes, worker_id: bytes) -> None:
    from .. import api
    from ..debugger import remote_pdb
    from .core_worker import CoreWorker
    from .task_executor import TaskExecutor

    os.setpgrp()  # the node stops this worker and anything it starts as one group
    set_title("IDLE")
    for path in reversed(settings.extra.get("code_paths", [])):
        if path not in sys.path:  # the driver's own modules import here too
            sys.path.insert(0, path)
    _redirect_output(settings, worker_id)
    _reset_logging()
    ids.reseed_after_fork()
    random.seed()
    worker = CoreWorker(
        mode="worker",
        node_address=settings.address,
        session_dir=settings.session_dir,
        token=token,
        job_id=DRIVER_JOB_ID,
        worker_id=worker_id,
        node_ip=settings.node_ip,
    )
    worker.executor = TaskExecutor(worker)
    worker.start()
    api.attach_worker(worker)
    remote_pdb.install(worker)  # breakpoint() in a task: `minray debug` attaches
    worker.executor.run_forever()
