"""What this machine allows: the floors minray's figures can be read against.

    python benchmarks/floor.py

Prints, as JSON lines like benchmarks/core.py rows:

* memcpy GB/s: numpy copying a 1 GiB array into a preallocated one (the ceiling
  for ``put``, which must copy the value once into shared memory), on one core and
  with one thread per CPU; and the copies the two "put gigabytes" rows of ``ray
  microbenchmark`` make, without a runtime (their ceilings);
* a raw uvloop Unix-socket ping-pong round trip between two processes (the
  floor for any request/reply between a caller and a worker);
* the stdlib ``multiprocessing.Pool``: ``apply_async().get()`` round trip, and
  10,000 no-ops sent one ``apply_async`` each and as one ``map_async`` with
  ``chunksize=1`` (the floor for a pool of Python processes);
* a raw loopback TCP stream of 1 GiB between two processes, ``sendall`` from
  memory into ``recv_into`` a preallocated buffer (the floor for copying an object
  between two nodes of this machine);
* the disk's raw sequential write speed: 1 GiB written to a new file in the temp
  directory (where spill files go by default) in 16 MiB writes, then ``fsync``
  (the floor spilling is read against: benchmarks/spill.py prints the share).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import tempfile
import threading
import time

import numpy as np
import uvloop


def memcpy_gb_per_s(threads: int = 1) -> float:
    """numpy copying 1 GiB into an array already faulted in, on ``threads`` threads."""
    src = np.ones(2**27)  # 1 GiB of float64
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in first
    return _best_copy_gb_per_s(dst, src, threads)


def single_put_copy_gb_per_s() -> float:
    """What "single client put gigabytes" asks of the machine, without a runtime: the
    row's 800 MB array of zeros (never written, as np.zeros leaves it) copied into a
    buffer already faulted in, one thread per CPU. The ceiling for that row."""
    src = np.zeros(100 * 2**20, dtype=np.int64)
    return _best_copy_gb_per_s(np.ones_like(src), src, os.cpu_count() or 1)


def _best_copy_gb_per_s(dst: np.ndarray, src: np.ndarray, threads: int) -> float:
    """GB/s of the fastest of five copies of ``src`` into ``dst``."""
    best = min(_copy_in_threads(dst, src, threads) for _ in range(5))
    return src.nbytes / best / 1e9


def _copy_in_threads(dst: np.ndarray, src: np.ndarray, threads: int) -> float:
    """Seconds to copy ``src`` into ``dst``, a slice per thread (numpy releases the GIL);
    one thread: this one."""
    if threads == 1:
        return _timed(lambda: np.copyto(dst, src))
    step = -(-len(src) // threads)
    workers = [
        threading.Thread(target=np.copyto, args=(dst[i : i + step], src[i : i + step]))
        for i in range(0, len(src), step)
    ]
    t = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - t


def _put_copies(rounds: int, threads: int, report) -> None:
    dst = np.ones(10 * 2**20, dtype=np.int64)
    t = time.perf_counter()
    for _ in range(rounds):
        _copy_in_threads(dst, np.zeros(10 * 2**20, dtype=np.int64), threads)
    report.send(rounds * dst.nbytes / (time.perf_counter() - t) / 1e9)


def multi_put_copy_gb_per_s(rounds: int = 40) -> float:
    """What "multi client put gigabytes" asks of the machine, without a runtime: one
    process per CPU, each copying new 80 MB arrays of zeros into a buffer of its own
    (one thread per CPU, as minray's put does), all at once; their sum."""
    cpus = os.cpu_count() or 1
    context = multiprocessing.get_context("fork")
    pipes = [context.Pipe(duplex=False) for _ in range(cpus)]
    copiers = [context.Process(target=_put_copies, args=(rounds, cpus, w)) for _, w in pipes]
    for copier in copiers:
        copier.start()
    rates = [r.recv() for r, _ in pipes]
    for copier in copiers:
        copier.join(60)
    return sum(rates)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _echo_server(path: str, ready) -> None:
    async def serve() -> None:
        async def echo(reader, writer):
            while data := await reader.read(64):
                writer.write(data)
            writer.close()

        server = await asyncio.start_unix_server(echo, path)
        ready.set()
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


def uvloop_ping_pong_us(n: int = 20_000) -> tuple[float, float]:
    """p50 and p99 of a 16-byte round trip over a Unix socket, in microseconds."""
    path = os.path.join(
        tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None), "echo.sock"
    )
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_echo_server, args=(path, ready), daemon=True)
    server.start()
    ready.wait(10)

    async def client() -> list[float]:
        reader, writer = await asyncio.open_unix_connection(path)
        samples = []
        for i in range(n + 1000):
            t = time.perf_counter()
            writer.write(b"0123456789abcdef")
            await reader.readexactly(16)
            if i >= 1000:
                samples.append(time.perf_counter() - t)
        writer.close()
        return samples

    try:
        samples = sorted(uvloop.run(client()))
    finally:
        server.kill()
        server.join()
        os.unlink(path)
        os.rmdir(os.path.dirname(path))
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def _noop(*_item):  # (map_async passes each item)
    return None


def pool_figures(n: int = 10_000) -> tuple[float, float, float]:
    """stdlib Pool: apply_async().get() round trip (ms, p50), and no-ops per second sent
    one ``apply_async`` each and with one ``map_async(chunksize=1)``, each no-op its own
    task (its default chunk size would send a few hundred no-ops as one)."""
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for _ in range(200):
            pool.apply_async(_noop).get()
        samples = sorted(_timed(lambda: pool.apply_async(_noop).get()) for _ in range(2000))
        t = time.perf_counter()
        results = [pool.apply_async(_noop) for _ in range(n)]
        for r in results:
            r.get()
        rate = n / (time.perf_counter() - t)
        t = time.perf_counter()
        pool.map_async(_noop, range(n), chunksize=1).get()
        mapped = n / (time.perf_counter() - t)
    return statistics.median(samples) * 1000, rate, mapped


def _stream_sender(port: int, size: int, chunk: int) -> None:
    data = memoryview(np.ones(chunk, dtype=np.uint8))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(size // chunk):
            sock.sendall(data)


def loopback_tcp_gb_per_s(size: int = 1 << 30, chunk: int = 8 << 20, repeat: int = 3) -> float:
    """Best of ``repeat`` 1 GiB streams over loopback TCP, another process sending."""
    into = memoryview(np.zeros(size, dtype=np.uint8))  # faulted in before the clock starts
    best = 0.0
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        for _ in range(repeat):
            sender = multiprocessing.get_context("fork").Process(
                target=_stream_sender, args=(port, size, chunk)
            )
            sender.start()
            conn, _ = server.accept()
            with conn:
                t = time.perf_counter()
                got = 0
                while got < size:
                    n = conn.recv_into(into[got : got + chunk])
                    if n == 0:
                        raise ConnectionError("the sender stopped early")
                    got += n
                best = max(best, size / (time.perf_counter() - t) / 1e9)
            sender.join(30)
    return best


def disk_write_gb_per_s(directory: str, size: int = 1 << 30, chunk: int = 16 << 20) -> float:
    """Sequential write of ``size`` bytes to a new file in ``directory``, fsync included."""
    data = memoryview(np.ones(chunk, dtype=np.uint8))
    fd, path = tempfile.mkstemp(dir=directory, prefix="floor-disk-")
    try:
        t = time.perf_counter()
        for _ in range(size // chunk):
            written = 0
            while written < chunk:
                written += os.write(fd, data[written:])
        os.fsync(fd)
        return size / (time.perf_counter() - t) / 1e9
    finally:
        os.close(fd)
        os.unlink(path)


def main() -> None:
    rows = {"memcpy_gb_per_s": memcpy_gb_per_s()}
    rows["memcpy_all_cores_gb_per_s"] = memcpy_gb_per_s(os.cpu_count() or 1)
    rows["single_put_copy_gb_per_s"] = single_put_copy_gb_per_s()
    rows["multi_put_copy_gb_per_s"] = multi_put_copy_gb_per_s()
    p50, p99 = uvloop_ping_pong_us()
    rows["uvloop_unix_ping_pong_p50_us"] = p50
    rows["uvloop_unix_ping_pong_p99_us"] = p99
    rtt, rate, mapped = pool_figures()
    rows["mp_pool_round_trip_ms"] = rtt
    rows["mp_pool_async_noops_per_s"] = rate
    rows["mp_pool_map_async_noops_per_s"] = mapped
    rows["loopback_tcp_stream_gb_per_s"] = loopback_tcp_gb_per_s()
    rows["disk_write_fsync_gb_per_s"] = disk_write_gb_per_s(tempfile.gettempdir())
    rows["cpus"] = float(os.cpu_count() or 1)
    for key, value in rows.items():
        print(json.dumps({key: round(value, 3)}))


if __name__ == "__main__":
    main()
