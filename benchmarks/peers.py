"""Peer systems for the consensus benchmark: a 3-member etcd cluster and a 3-node PySyncObj cluster.

    .ci/install-peers /tmp/venv          # once: etcd-server, etcd-client (apt), pysyncobj, grpcio (pip)
    python benchmarks/peers.py [--ops 20000] [--runs 3] [--value-bytes 200] [--peers etcd,pysyncobj]

Each measurement starts a fresh 3-member cluster on loopback (distinct ports, data in a fresh
directory under --tmpdir, removed afterwards), writes `ops` values of `value_bytes` random bytes
under distinct keys, and reports:
  * ops_per_s: committed writes per second = ops / (last commit acknowledged - first write sent),
    measured at saturation (a closed loop with `clients` writes in flight);
  * p50_ms / p99_ms: per-write latency at that saturation, from send to commit acknowledgement
    (at saturation this mostly measures the queue: about clients / ops_per_s);
  * at_half_load: the same cluster paced at 50 % of the measured rate (open loop, each write has a
    scheduled send time and its latency counts from that time, so a stalled generator is not
    hidden), ops // 2 writes: the latency figure to compare. send_lag_p99_ms says how late the
    generator itself sent (a large one means the generator, not the cluster, lost the pace).

etcd (Debian's etcd-server, `/usr/bin/etcd`): fsync ON, etcd's default -- each member fsyncs
every raft batch to its WAL before acknowledging it; --unsafe-no-fsync is never passed and ETCD_*
variables are dropped from the environment. The WAL fsync count and mean fsync time per member
are read from /metrics after the run and reported (the run fails if a member did none), and the
filesystem of the data directory is reported (tmpfs would make fsync free). Debian ships no
`benchmark` tool (only etcd and etcdctl), so the load comes from this module: 2 separate processes
(one Python process tops out near 5k RPCs/s), each issuing half of the Put RPCs from one thread as
grpcio futures (at most half of `clients` in flight; /etcdserverpb.KV/Put, the protobuf
PutRequest encoded by hand, no stubs), round-robin over HTTP/2 connections to all three members
(followers forward to the leader), as etcd's own tool does with --endpoints naming every member.
(grpc.aio was tried first: its event loop fell up to 100-200 ms behind a paced schedule.) etcd
batches the writes in flight into one fsync, so the rate depends on `clients`; the report gives
puts per fsync.

PySyncObj (pysyncobj on PyPI): 3 processes, each a SyncObj holding a replicated dict with a
@replicated put(key, value); every process submits a third of the writes with callbacks
(sync=False), at most clients/3 in flight per process, and the latency is from submit to the
callback on the submitting node (committed by a majority and applied there). Its journalFile and
fullDumpFile are set, so the log is persisted, but through an mmap'd file and plain writes: PySyncObj
never calls fsync/msync while running. A write is "committed" when it is in the page cache of a
majority, not on disk; the report says fsync=False. With its default appendEntriesUseBatch=True
the leader ships new entries only every appendEntriesPeriod (0.1 s) and a follower learns of a
commit only with a later shipment, so writes wait ~200 ms (measured) whatever the load, and
saturating it takes thousands of writes in flight; append_entries_batch=False
(--pysyncobj-unbatched) sends at once: lower latency, lower throughput.

Everything runs on this machine: the members and the load generators share its cores (on 2 cores
the generators take CPU from the cluster they measure; the PySyncObj leader, which also submits its
third, is CPU-bound). The peers run one after the other, never together. The load generators are
subprocesses (their own interpreters), so the caller may be async and keeps its GIL.

Functions the consensus benchmark imports: measure_etcd, measure_pysyncobj, median_of_runs,
PeerUnavailable. Every process started here is in its own session and its process group is killed
on exit, failure included; the data directories are removed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

REPOSITORY = Path(__file__).resolve().parents[1]
INSTALL_HINT = f"run {REPOSITORY / '.ci' / 'install-peers'} <virtualenv>"
ETCD_SERVER_PACKAGE = "etcd-server"
ETCD_CLIENT_PACKAGE = "etcd-client"
ETCD_PUT_METHOD = "/etcdserverpb.KV/Put"
# Chosen on a 2-core machine: one Python generator process tops out near 5k Put RPCs/s, two
# reach the cluster's own ceiling; more RPCs in flight than this only add queueing latency.
DEFAULT_ETCD_CLIENTS = 256
DEFAULT_ETCD_LOAD_PROCESSES = 2
# PySyncObj's default batching holds a write ~200 ms (see the docstring), so saturating ~10k/s
# needs thousands of writes in flight.
DEFAULT_PYSYNCOBJ_CLIENTS = 6000
CLUSTER_SIZE = 3
STARTUP_TIMEOUT_S = 60.0
PHASE_TIMEOUT_S = 300.0
WARMUP_WRITES = 100
PACED_BACKLOG_S = 5.0


class PeerUnavailable(RuntimeError):
    """A peer system cannot run here: its binary or Python package is missing."""


# ---------------------------------------------------------------------------------------------
# Shared helpers: ports, percentiles, processes that always die, the line protocol to workers.


def free_loopback_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, int(round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def filesystem_type(path: str) -> str:
    """Type of the filesystem holding path (tmpfs would make every fsync free), from /proc/mounts."""
    real_path = os.path.realpath(path)
    best_mount, best_type = "", "unknown"
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            mount_point = fields[1].replace("\\040", " ")
            inside = real_path == mount_point or real_path.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best_mount):
                best_mount, best_type = mount_point, fields[2]
    return best_type


def combine_phase_results(worker_results: list[dict]) -> dict:
    """Merge the per-worker results of one load phase into throughput and latency percentiles."""
    latencies_ms = sorted(ms for result in worker_results for ms in result["latencies_ms"])
    first_send = min(result["first_send_wall"] for result in worker_results)
    last_commit = max(result["last_commit_wall"] for result in worker_results)
    errors = sum(result["errors"] for result in worker_results)
    combined = {
        "ops": len(latencies_ms),
        "errors": errors,
        "seconds": round(last_commit - first_send, 3),
        "ops_per_s": round(len(latencies_ms) / (last_commit - first_send), 1),
        "p50_ms": round(percentile(latencies_ms, 0.50), 2),
        "p99_ms": round(percentile(latencies_ms, 0.99), 2),
    }
    # Paced phases: how late the generator sent against the schedule (already inside the latencies;
    # a large value means the generator, not the cluster, could not keep the pace).
    send_lags_ms = sorted(ms for result in worker_results for ms in result.get("send_lags_ms", []))
    if send_lags_ms:
        combined["send_lag_p99_ms"] = round(percentile(send_lags_ms, 0.99), 2)
    return combined


class ProcessGroup:
    """Children each in their own session; stop() kills every process group, even on failure."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []
        self.log_paths: dict[int, str] = {}
        self.names: dict[int, str] = {}

    def start(self, name: str, command: list[str], *, protocol: bool = False, env=None) -> subprocess.Popen:
        log_path = os.path.join(self.log_dir, f"{name}.log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE if protocol else subprocess.DEVNULL,
                stdout=subprocess.PIPE if protocol else log,
                stderr=log,
                start_new_session=True,
                env=env,
            )
        self.processes.append(process)
        self.log_paths[process.pid] = log_path
        self.names[process.pid] = name
        return process

    def log_tail(self, process: subprocess.Popen, lines: int = 15) -> str:
        try:
            text = Path(self.log_paths[process.pid]).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Children of the child (e.g. PySyncObj's forked dump writer) share the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5.0)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


@contextlib.contextmanager
def scratch_cluster(tmpdir: str | None, prefix: str) -> Iterator[tuple[str, ProcessGroup]]:
    workdir = tempfile.mkdtemp(prefix=prefix, dir=tmpdir)
    group = ProcessGroup(workdir)
    try:
        yield workdir, group
    finally:
        group.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def read_worker_line(group: ProcessGroup, process: subprocess.Popen, timeout: float) -> str:
    """One protocol line from a worker, or an error carrying the tail of its log."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"{group.names[process.pid]} silent for {timeout:.0f} s:\n{group.log_tail(process)}")
        readable, _, _ = select.select([process.stdout], [], [], min(remaining, 1.0))
        if readable:
            line = process.stdout.readline()
            if line:
                return line.decode().rstrip("\n")
        if process.poll() is not None:
            raise RuntimeError(
                f"{group.names[process.pid]} exited with {process.returncode}:\n{group.log_tail(process)}"
            )


def send_worker_line(process: subprocess.Popen, line: str) -> None:
    process.stdin.write(line.encode() + b"\n")
    process.stdin.flush()


def run_load_phase(group: ProcessGroup, workers: list[subprocess.Popen], specs: list[dict]) -> dict:
    """Tell every worker to run its share of one phase at once; merge what they report."""
    for worker, spec in zip(workers, specs):
        send_worker_line(worker, "run " + json.dumps(spec))
    results = []
    for worker in workers:
        line = read_worker_line(group, worker, PHASE_TIMEOUT_S)
        if not line.startswith("done "):
            raise RuntimeError(f"unexpected worker reply {line[:200]!r}")
        results.append(json.loads(line[5:]))
    return combine_phase_results(results)


def split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def phase_specs(name: str, ops: int, rate: float | None, clients: int, workers: int) -> list[dict]:
    """Each worker's share of a phase. Paced (open loop): the in-flight cap is only a safety net
    (PACED_BACKLOG_S of writes), so a slow commit delays no later send."""
    shares = split_evenly(ops, workers)
    windows = split_evenly(clients, workers)
    specs = []
    for share, window in zip(shares, windows):
        worker_rate = None if rate is None else rate * share / ops
        if worker_rate is not None:
            window = max(window, int(worker_rate * PACED_BACKLOG_S))
        specs.append({"phase": name, "ops": share, "in_flight": max(1, window), "rate": worker_rate})
    return specs


def worker_protocol_streams():
    """Keep the real stdout for protocol lines; anything else printed goes to stderr (the log)."""
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return sys.stdin, protocol_out


def load_phases(protocol_in, protocol_out, run_phase) -> None:
    """Worker side: answer "ready", then "run <json>" -> "done <json>" until "exit" or EOF."""
    protocol_out.write("ready\n")
    for line in protocol_in:
        line = line.strip()
        if line == "exit" or not line:
            break
        if line.startswith("run "):
            result = run_phase(json.loads(line[4:]))
            protocol_out.write("done " + json.dumps(result) + "\n")


def drive_load(ops: int, rate: float | None, in_flight: int, submit) -> dict:
    """Issue ops asynchronous writes from this thread and time each until its commit callback.

    submit(index, completed) starts write number index and arranges for completed(failed: bool)
    to be called once it is committed (or has failed), from any thread. rate None: closed loop,
    in_flight writes outstanding, latency from the send. rate given: open loop, write i is due at
    start + i / rate and its latency counts from then (in_flight is only a safety cap).
    """
    window = threading.BoundedSemaphore(in_flight)
    lock = threading.Lock()
    all_committed = threading.Event()
    latencies_ms: list[float] = []
    send_lags_ms: list[float] = []
    outcome = {"errors": 0, "last_commit_wall": 0.0}

    def completed(sent: float, failed: bool) -> None:
        latency_ms = (time.perf_counter() - sent) * 1000
        with lock:
            latencies_ms.append(latency_ms)
            outcome["errors"] += bool(failed)
            if len(latencies_ms) == ops:
                outcome["last_commit_wall"] = time.time()
                all_committed.set()
        window.release()

    start = time.perf_counter()
    first_send_wall = time.time()
    for index in range(ops):
        if rate:
            sent = start + index / rate
            delay = sent - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            window.acquire()
            send_lags_ms.append((time.perf_counter() - sent) * 1000)
        else:
            window.acquire()
            sent = time.perf_counter()
        submit(index, lambda failed, sent=sent: completed(sent, failed))
    if ops and not all_committed.wait(PHASE_TIMEOUT_S):
        raise RuntimeError(f"only {len(latencies_ms)} of {ops} writes committed in {PHASE_TIMEOUT_S:.0f} s")
    return {
        "latencies_ms": latencies_ms,
        "first_send_wall": first_send_wall,
        "last_commit_wall": outcome["last_commit_wall"],
        "errors": outcome["errors"],
        "send_lags_ms": send_lags_ms,
    }


# ---------------------------------------------------------------------------------------------
# etcd


def find_etcd_binary() -> str:
    binary = shutil.which("etcd") or ("/usr/bin/etcd" if os.access("/usr/bin/etcd", os.X_OK) else None)
    if binary is None:
        raise PeerUnavailable(
            f"etcd server binary not found: install the Debian package {ETCD_SERVER_PACKAGE} "
            f"(client tools: {ETCD_CLIENT_PACKAGE}), e.g. {INSTALL_HINT}"
        )
    if importlib.util.find_spec("grpc") is None:
        raise PeerUnavailable(f"the etcd load generator needs grpcio in this interpreter: pip install grpcio, or {INSTALL_HINT}")
    return binary


def etcd_binary_version(binary: str) -> str:
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"etcd Version:\s*(\S+)", output)
    return match.group(1) if match else output.strip().splitlines()[0]


def http_get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def wait_etcd_healthy(client_urls: list[str], group: ProcessGroup, members: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    pending = list(client_urls)
    while pending:
        for member in members:
            if member.poll() is not None:
                raise RuntimeError(f"{group.names[member.pid]} exited with {member.returncode}:\n{group.log_tail(member)}")
        url = pending[0]
        try:
            if json.loads(http_get(url + "/health")).get("health") == "true":
                pending.pop(0)
                continue
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"etcd member {url} not healthy after {STARTUP_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


def etcd_wal_fsync_totals(client_url: str) -> tuple[int, float]:
    """(WAL fsyncs so far, seconds spent in them) from a member's Prometheus metrics."""
    metrics = http_get(client_url + "/metrics", timeout=5.0).decode()
    count = re.search(r"^etcd_disk_wal_fsync_duration_seconds_count (\S+)", metrics, re.MULTILINE)
    total = re.search(r"^etcd_disk_wal_fsync_duration_seconds_sum (\S+)", metrics, re.MULTILINE)
    if not (count and total):
        raise RuntimeError(f"{client_url}/metrics has no WAL fsync figures")
    return int(float(count.group(1))), float(total.group(1))


def start_etcd_cluster(binary: str, workdir: str, group: ProcessGroup) -> list[str]:
    ports = free_loopback_ports(2 * CLUSTER_SIZE)
    client_urls = [f"http://127.0.0.1:{ports[i]}" for i in range(CLUSTER_SIZE)]
    peer_urls = [f"http://127.0.0.1:{ports[CLUSTER_SIZE + i]}" for i in range(CLUSTER_SIZE)]
    initial_cluster = ",".join(f"member{i}={peer_urls[i]}" for i in range(CLUSTER_SIZE))
    # No ETCD_* variable may sneak in a setting (ETCD_UNSAFE_NO_FSYNC in particular).
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ETCD_")}
    members = []
    for i in range(CLUSTER_SIZE):
        command = [
            binary,
            f"--name=member{i}",
            f"--data-dir={os.path.join(workdir, f'member{i}.etcd')}",
            f"--listen-client-urls={client_urls[i]}",
            f"--advertise-client-urls={client_urls[i]}",
            f"--listen-peer-urls={peer_urls[i]}",
            f"--initial-advertise-peer-urls={peer_urls[i]}",
            f"--initial-cluster={initial_cluster}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token=hcnode-bench-{os.getpid()}-{ports[0]}",
            "--logger=zap",
            "--log-level=warn",
        ]
        assert not any("unsafe" in argument for argument in command)
        members.append(group.start(f"etcd-member{i}", command, env=environment))
    wait_etcd_healthy(client_urls, group, members)
    return client_urls


def measure_etcd(
    ops: int,
    value_bytes: int = 200,
    clients: int = DEFAULT_ETCD_CLIENTS,
    tmpdir: str | None = None,
    *,
    target_rate: float | None = None,
    half_load: bool = False,
    load_processes: int = DEFAULT_ETCD_LOAD_PROCESSES,
) -> dict:
    """Committed puts/s and put latency of a fresh 3-member etcd cluster on loopback (fsync on).

    target_rate: pace the main phase at this many puts/s (open loop) instead of saturating.
    half_load: after the saturated phase, run ops // 2 puts paced at half the measured rate.
    Returns ops_per_s, p50_ms, p99_ms, version, fsync, wal_fsyncs (per member), ... and at_half_load.
    """
    binary = find_etcd_binary()
    version = etcd_binary_version(binary)
    with scratch_cluster(tmpdir, "etcd-peer-") as (workdir, group):
        client_urls = start_etcd_cluster(binary, workdir, group)
        server_version = json.loads(http_get(client_urls[0] + "/version")).get("etcdserver", version)
        endpoints = [url.removeprefix("http://") for url in client_urls]
        generators = []
        for index in range(load_processes):
            spec = {"endpoints": endpoints, "value_bytes": value_bytes, "generator": index}
            generators.append(
                group.start(
                    f"etcd-load{index}",
                    [sys.executable, os.path.abspath(__file__), "_etcd-load", json.dumps(spec)],
                    protocol=True,
                )
            )
        for generator in generators:
            if read_worker_line(group, generator, STARTUP_TIMEOUT_S) != "ready":
                raise RuntimeError("etcd load generator did not start")
        fsyncs_before = [etcd_wal_fsync_totals(url) for url in client_urls]

        def phase(name: str, phase_ops: int, rate: float | None) -> dict:
            return run_load_phase(group, generators, phase_specs(name, phase_ops, rate, clients, load_processes))

        main = phase("main", ops, target_rate)
        fsyncs_after_main = [etcd_wal_fsync_totals(url) for url in client_urls]
        wal_fsyncs = [after[0] - before[0] for after, before in zip(fsyncs_after_main, fsyncs_before)]
        fsync_seconds = sum(after[1] - before[1] for after, before in zip(fsyncs_after_main, fsyncs_before))
        result = {
            "peer": "etcd",
            "version": server_version,
            "binary": binary,
            "fsync": True,
            "storage": filesystem_type(workdir),
            "value_bytes": value_bytes,
            "clients": clients,
            "paced_at": target_rate,
            **main,
            "load_processes": load_processes,
            "wal_fsyncs": wal_fsyncs,
            "puts_per_wal_fsync": round(main["ops"] / max(1, max(wal_fsyncs)), 1),
            "wal_fsync_mean_ms": round(1000 * fsync_seconds / max(1, sum(wal_fsyncs)), 3),
        }
        if min(wal_fsyncs) <= 0:
            raise RuntimeError(f"etcd members reported no WAL fsyncs during the run: {wal_fsyncs}")
        if half_load:
            rate = main["ops_per_s"] / 2
            result["at_half_load"] = {"target_rate": round(rate, 1), **phase("half", max(1, ops // 2), rate)}
        for generator in generators:
            with contextlib.suppress(OSError):
                send_worker_line(generator, "exit")
        return result


def encode_varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def etcd_put_request(key: bytes, value: bytes) -> bytes:
    """etcdserverpb.PutRequest{key = 1, value = 2} in protobuf wire format."""
    return b"\x0a" + encode_varint(len(key)) + key + b"\x12" + encode_varint(len(value)) + value


def etcd_load_generator_main(spec: dict) -> None:
    """Worker process: Put RPCs as grpc futures from one thread, round-robin over the members."""
    import grpc

    protocol_in, protocol_out = worker_protocol_streams()
    channels = [grpc.insecure_channel(endpoint) for endpoint in spec["endpoints"]]
    puts = [channel.unary_unary(ETCD_PUT_METHOD) for channel in channels]  # bytes in, bytes out
    value = os.urandom(spec["value_bytes"])
    key_prefix = b"bench/g%d/" % spec["generator"]
    keys = iter(range(10**12))

    def next_request() -> bytes:
        return etcd_put_request(key_prefix + b"%010d" % next(keys), value)

    for _ in range(WARMUP_WRITES // len(puts) + 1):
        for put in puts:
            put(next_request(), timeout=30)

    def put_failed(done) -> bool:
        return done.cancelled() or done.exception() is not None or not done.result()

    def submit(index: int, completed) -> None:
        future = puts[index % len(puts)].future(next_request(), timeout=60)
        future.add_done_callback(lambda done: completed(put_failed(done)))

    try:
        load_phases(
            protocol_in,
            protocol_out,
            lambda phase: drive_load(phase["ops"], phase["rate"], phase["in_flight"], submit),
        )
    finally:
        for channel in channels:
            channel.close()


# ---------------------------------------------------------------------------------------------
# PySyncObj


def pysyncobj_version() -> str:
    if importlib.util.find_spec("pysyncobj") is None:
        raise PeerUnavailable(f"PySyncObj is not installed in {sys.executable}: pip install pysyncobj, or {INSTALL_HINT}")
    return importlib.metadata.version("pysyncobj")


def measure_pysyncobj(
    ops: int,
    value_bytes: int = 200,
    tmpdir: str | None = None,
    *,
    clients: int = DEFAULT_PYSYNCOBJ_CLIENTS,
    target_rate: float | None = None,
    half_load: bool = False,
    append_entries_batch: bool = True,
    persist: bool = True,
) -> dict:
    """Committed ops/s and op latency of 3 PySyncObj processes on loopback, each submitting a third.

    clients: writes in flight over the whole cluster (a third per node).
    target_rate / half_load: as in measure_etcd.
    Returns ops_per_s, p50_ms, p99_ms, version, fsync (False: PySyncObj never fsyncs), ...
    """
    version = pysyncobj_version()
    with scratch_cluster(tmpdir, "pysyncobj-peer-") as (workdir, group):
        ports = free_loopback_ports(CLUSTER_SIZE)
        addresses = [f"127.0.0.1:{port}" for port in ports]
        nodes = []
        for index in range(CLUSTER_SIZE):
            spec = {
                "self": addresses[index],
                "partners": [address for address in addresses if address != addresses[index]],
                "node": index,
                "value_bytes": value_bytes,
                "journal_file": os.path.join(workdir, f"node{index}.journal") if persist else None,
                "full_dump_file": os.path.join(workdir, f"node{index}.dump") if persist else None,
                "append_entries_batch": append_entries_batch,
            }
            nodes.append(
                group.start(
                    f"pysyncobj-node{index}",
                    [sys.executable, os.path.abspath(__file__), "_pysyncobj-node", json.dumps(spec)],
                    protocol=True,
                )
            )
        for node in nodes:
            if read_worker_line(group, node, STARTUP_TIMEOUT_S) != "ready":
                raise RuntimeError("PySyncObj node did not start")

        def phase(name: str, phase_ops: int, rate: float | None) -> dict:
            return run_load_phase(group, nodes, phase_specs(name, phase_ops, rate, clients, CLUSTER_SIZE))

        main = phase("main", ops, target_rate)
        result = {
            "peer": "pysyncobj",
            "version": version,
            "fsync": False,
            "persistence": (
                "journalFile (mmap, never msync'd/fsync'd while running) + fullDumpFile"
                if persist
                else "memory only"
            ),
            "append_entries_batch": append_entries_batch,
            "storage": filesystem_type(workdir),
            "value_bytes": value_bytes,
            "clients": clients,
            "paced_at": target_rate,
            **main,
        }
        if half_load:
            rate = main["ops_per_s"] / 2
            result["at_half_load"] = {"target_rate": round(rate, 1), **phase("half", max(1, ops // 2), rate)}
        for node in nodes:
            with contextlib.suppress(OSError):
                send_worker_line(node, "exit")
        # Let the nodes leave together; stragglers are killed by scratch_cluster.
        for node in nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=5.0)
        return result


def pysyncobj_node_main(spec: dict) -> None:
    """Worker process: one SyncObj member that also submits its share of the writes."""
    from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

    protocol_in, protocol_out = worker_protocol_streams()

    class ReplicatedStore(SyncObj):
        def __init__(self, self_address: str, partners: list[str], conf: SyncObjConf):
            super().__init__(self_address, partners, conf)
            self.values: dict[str, bytes] = {}

        @replicated
        def put(self, key: str, value: bytes) -> int:
            self.values[key] = value
            return len(self.values)

    conf = SyncObjConf(
        journalFile=spec["journal_file"],
        fullDumpFile=spec["full_dump_file"],
        appendEntriesUseBatch=spec["append_entries_batch"],
    )
    store = ReplicatedStore(spec["self"], spec["partners"], conf)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not (store.isReady() and store._getLeader() is not None):
        if time.monotonic() > deadline:
            raise RuntimeError("no leader elected")
        time.sleep(0.05)
    value = os.urandom(spec["value_bytes"])
    key_prefix = f"n{spec['node']}/"
    counter = iter(range(10**12))
    for _ in range(WARMUP_WRITES // CLUSTER_SIZE):
        store.put(f"{key_prefix}{next(counter)}", value, sync=True, timeout=30)

    def submit(_index: int, completed) -> None:
        store.put(
            f"{key_prefix}{next(counter)}",
            value,
            callback=lambda _result, error: completed(error != FAIL_REASON.SUCCESS),
        )

    def run_phase(phase: dict) -> dict:
        return drive_load(phase["ops"], phase["rate"], phase["in_flight"], submit)

    try:
        load_phases(protocol_in, protocol_out, run_phase)
    finally:
        store.destroy()


# ---------------------------------------------------------------------------------------------
# Command line


def median_of_runs(runs: list[dict]) -> dict:
    """Median of each figure over repeated measurements of the same peer."""
    summary = {
        "peer": runs[0]["peer"],
        "version": runs[0]["version"],
        "fsync": runs[0]["fsync"],
        "runs": len(runs),
        "errors": sum(run["errors"] for run in runs),
    }
    for key in ("ops_per_s", "p50_ms", "p99_ms"):
        summary[key] = round(statistics.median(run[key] for run in runs), 2)
    half = [run["at_half_load"] for run in runs if "at_half_load" in run]
    if half:
        summary["at_half_load"] = {
            key: round(statistics.median(entry[key] for entry in half), 2)
            for key in ("target_rate", "ops_per_s", "p50_ms", "p99_ms", "send_lag_p99_ms")
        }
    return summary


def describe(result: dict) -> str:
    text = f"{result['ops_per_s']:>9,.0f} ops/s  p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms"
    half = result.get("at_half_load")
    if half:
        text += (
            f"  | at half load ({half['target_rate']:,.0f}/s): p50 {half['p50_ms']:.2f} ms  p99 {half['p99_ms']:.2f} ms"
            f" (send lag p99 {half.get('send_lag_p99_ms', float('nan')):.1f} ms)"
        )
    if result.get("errors"):
        text += f"  ({result['errors']} failed writes)"
    return text


def exit_on_sigterm(signum, _frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that kill the clusters


def main() -> int:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=20000, help="writes per measurement (default 20000)")
    parser.add_argument("--runs", type=int, default=3, help="fresh clusters per peer; medians reported (default 3)")
    parser.add_argument("--value-bytes", type=int, default=200)
    parser.add_argument("--etcd-clients", type=int, default=DEFAULT_ETCD_CLIENTS, help="Put RPCs in flight")
    parser.add_argument("--etcd-load-processes", type=int, default=DEFAULT_ETCD_LOAD_PROCESSES)
    parser.add_argument("--pysyncobj-clients", type=int, default=DEFAULT_PYSYNCOBJ_CLIENTS, help="writes in flight")
    parser.add_argument(
        "--pysyncobj-unbatched",
        action="store_true",
        help="appendEntriesUseBatch=False: lower latency, lower throughput (default: PySyncObj's default, batched)",
    )
    parser.add_argument("--peers", default="etcd,pysyncobj", help="comma-separated: etcd, pysyncobj")
    parser.add_argument("--no-half-load", action="store_true", help="skip the paced 50 %% phase")
    parser.add_argument("--tmpdir", default=None, help="where the clusters keep their data (default: system temp)")
    parser.add_argument("--json", action="store_true", help="also print every result as JSON")
    arguments = parser.parse_args()

    measures = {
        "etcd": lambda: measure_etcd(
            arguments.ops,
            arguments.value_bytes,
            arguments.etcd_clients,
            arguments.tmpdir,
            half_load=not arguments.no_half_load,
            load_processes=arguments.etcd_load_processes,
        ),
        "pysyncobj": lambda: measure_pysyncobj(
            arguments.ops,
            arguments.value_bytes,
            arguments.tmpdir,
            clients=arguments.pysyncobj_clients,
            half_load=not arguments.no_half_load,
            append_entries_batch=not arguments.pysyncobj_unbatched,
        ),
    }
    print(f"{arguments.ops} writes of {arguments.value_bytes} B per run, {arguments.runs} runs, 3 members on loopback")
    status = 0
    for name in arguments.peers.split(","):
        try:
            runs = []
            for number in range(1, arguments.runs + 1):
                result = measures[name]()
                runs.append(result)
                print(f"  {name} run {number}: {describe(result)}", flush=True)
                if arguments.json:
                    print("  " + json.dumps(result))
        except PeerUnavailable as unavailable:
            print(f"{name}: unavailable: {unavailable}")
            status = 1
            continue
        first = runs[0]
        if name == "etcd":
            detail = (
                f"etcd {first['version']} ({first['binary']}), fsync ON, WAL on {first['storage']}; "
                f"{first['clients']} Put RPCs in flight from {first['load_processes']} generator processes (grpc futures) "
                f"over all 3 members; run 1: WAL fsyncs per member {first['wal_fsyncs']}, "
                f"~{first['puts_per_wal_fsync']:.0f} puts per fsync, fsync mean {first['wal_fsync_mean_ms']:.2f} ms"
            )
        else:
            detail = (
                f"PySyncObj {first['version']}, fsync OFF ({first['persistence']}), "
                f"appendEntriesUseBatch={first['append_entries_batch']}; "
                f"{first['clients']} writes in flight, submitted on all 3 nodes"
            )
        print(f"{name}: {detail}")
        print(f"{name} median of {len(runs)}: {describe(median_of_runs(runs))}", flush=True)
    return status


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_etcd-load":
        etcd_load_generator_main(json.loads(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "_pysyncobj-node":
        pysyncobj_node_main(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
