"""Liveness and killing of the node's child processes, by pid (never by name)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time

import psutil


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is as good as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def kill(pid: int) -> None:
    """Kill a worker and whatever it started (each worker leads its own process group)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def wait_child(pid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        await asyncio.sleep(0.005)
    kill(pid)
    os.waitpid(pid, 0)


def children(pid: int) -> list[int]:
    """Pids of the process's children (empty if it is gone)."""
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


async def stop_workers(zygote_pid: int, known: set[int], timeout: float = 3.0) -> None:
    """Kill every worker and the zygote, then reap the zygote. The zygote is frozen
    first, so a fork it was still asked for cannot slip by unseen."""
    try:
        os.kill(zygote_pid, signal.SIGSTOP)
    except ProcessLookupError:
        pass
    pids = set(known) | set(children(zygote_pid))
    for pid in pids:
        kill(pid)
    kill(zygote_pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        await asyncio.sleep(0.01)
    await wait_child(zygote_pid, deadline)


def remove_segments(session_dir: str) -> None:
    """Unlink the shared memory of a node that was killed (a killed node cleans nothing)."""
    tag = os.path.basename(session_dir.rstrip("/"))[-6:]
    for name in os.listdir("/dev/shm"):
        if name.startswith(f"minray_{tag}"):
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except FileNotFoundError:
                pass


def remove_session(session_dir: str, keep_logs: bool) -> None:
    """Remove a stopped node's session directory (but its ``logs/`` when asked to)."""
    if not keep_logs:
        shutil.rmtree(session_dir, ignore_errors=True)
        return
    for name in os.listdir(session_dir) if os.path.isdir(session_dir) else []:
        if name != "logs":
            path = os.path.join(session_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
