"""Process-wide settings for a node's processes (the node itself and its verifier workers)."""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc() -> None:
    """Make Python's cycle collector rare in a node process (call once, after imports).

    A loaded node allocates millions of short-lived objects (decoded transactions, overlays,
    receipts) while holding many long-lived ones (mempool, Raft log, caches). With the default
    threshold (700) the collector ran hundreds of times a second, each full pass walking every
    live object: 3.4% of a 3-node testnet's CPU (perf, `benchmarks/consensus.py`), 0.15% with
    this. Our objects are freed by reference counting; the collector only finds cycles, which
    the node rarely makes, so collecting every 50,000 allocations costs little memory.
    Objects alive now (modules, config) are frozen: no pass ever walks them again.
    """
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
