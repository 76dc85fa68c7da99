"""Stateless transaction checks in a worker process, so they use the second core.

Owns: the pool of verifier processes and the hand-off of verdicts. Must not
know mempools or blocks.

Why a process: signature verification is most of a transaction's cost
(coincurve: ~40 us), and a thread cannot take it off the main core, because
the Python around each verification needs the GIL and the two threads then
convoy on it (measured: slower than one thread). A worker process checks a
whole batch and returns only verdicts; the main process rebuilds each accepted
``Tx`` from the same bytes without repeating the checks (``trusted_tx``).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import trio

from hcnode.chain import Rejected, Tx, decode_tx
from hcnode.chain.tx import trusted_tx

__all__ = ["Verifier"]

_worker_state: dict[str, object] = {}


def _init_worker(chain_id: str, max_tx_bytes: int, parent: int) -> None:
    from hcnode.apps import default_apps
    from hcnode.node.runtime import tune_gc

    _worker_state.update(chain_id=chain_id, max_tx_bytes=max_tx_bytes, apps=default_apps())
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    tune_gc()


def _exit_with_parent(parent: int) -> None:
    """A node killed with SIGKILL cannot stop its workers; they notice and leave on their own."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _check_batch(raws: list[bytes]) -> list[tuple[str, str] | None]:
    apps = _worker_state["apps"]
    verdicts: list[tuple[str, str] | None] = []
    for raw in raws:
        try:
            decode_tx(raw, chain_id=_worker_state["chain_id"], max_bytes=_worker_state["max_tx_bytes"],  # type: ignore[arg-type]
                      payload_spec=apps.payload_spec)  # type: ignore[attr-defined]
            verdicts.append(None)
        except Rejected as exc:
            verdicts.append((exc.code, exc.message))
    return verdicts


class Verifier:
    def __init__(self, chain_id: str, max_tx_bytes: int, workers: int) -> None:
        self.workers = workers
        self.limiter = trio.CapacityLimiter(max(1, workers))
        self.pool = (
            ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_init_worker, initargs=(chain_id, max_tx_bytes, os.getpid()))
            if workers > 0 else None
        )

    async def start(self) -> None:
        """Start the worker processes now, so the first batch does not wait for them."""
        if self.pool is not None:
            pool = self.pool
            await trio.to_thread.run_sync(lambda: [f.result() for f in
                                                   [pool.submit(_check_batch, []) for _ in range(self.workers)]])

    async def check(self, raws: list[bytes]) -> list[Tx | Rejected]:
        assert self.pool is not None
        async with self.limiter:
            # The pool's own thread wakes this task when the verdicts are in: no worker thread waits.
            token = trio.lowlevel.current_trio_token()
            done = trio.Event()
            future = self.pool.submit(_check_batch, raws)

            def wake(_: object) -> None:
                try:
                    token.run_sync_soon(done.set)
                except trio.RunFinishedError:
                    pass

            future.add_done_callback(wake)
            await done.wait()
            verdicts = future.result()
        return [trusted_tx(raw) if verdict is None else Rejected(*verdict) for raw, verdict in zip(raws, verdicts)]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
