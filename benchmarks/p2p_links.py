"""Throughput of one /hcnode/raft/1 link between two P2PServices in one process, over loopback.

Prints messages/s for small Raft-sized payloads and MB/s for 64 KiB payloads, one
way (a sends, b receives) and as ping-pong round trips, to compare with the raw
py-libp2p figures in /work/shared/PY-LIBP2P.md. Usage:
    PYTHONPATH=. python benchmarks/p2p_links.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import time

import trio

from hcnode import crypto
from hcnode.config import P2PParams
from hcnode.node.p2p import P2PService


async def one_way(a: P2PService, b: P2PService, size: int, seconds: float) -> tuple[float, float]:
    """a sends as fast as b drains (bounded by a's queue); returns (messages/s, MB/s) at b."""
    payload = b"x" * size
    received = 0
    done = trio.Event()

    async def drain() -> None:
        nonlocal received
        async for _, _ in b.raft_inbound:
            received += 1
            if done.is_set():
                return

    async with trio.open_nursery() as n:
        n.start_soon(drain)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            link = a._links.get(b.public)
            if link is None or len(link.frames) < a.params.send_queue_frames // 2:
                for _ in range(64):
                    a.send(b.public, payload)
            await trio.sleep(0)
        elapsed = time.perf_counter() - start
        count = received
        done.set()
        a.send(b.public, b"end")
    dropped = a._links[b.public].dropped
    assert dropped == 0, f"{dropped} frames dropped: the sender outran the queue"
    return count / elapsed, count * size / elapsed / 1e6


async def round_trips(a: P2PService, b: P2PService, size: int, seconds: float) -> float:
    payload = b"y" * size

    async def echo() -> None:
        async for peer, message in b.raft_inbound:
            b.send(peer, message)

    async with trio.open_nursery() as n:
        n.start_soon(echo)
        count = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            a.send(b.public, payload)
            await a.raft_inbound.receive()
            count += 1
        elapsed = time.perf_counter() - start
        n.cancel_scope.cancel()
    return count / elapsed


async def main(seconds: float) -> None:
    ka, kb = crypto.PrivateKey.generate(), crypto.PrivateKey.generate()
    validators = [ka.public, kb.public]
    params = P2PParams(listen=("/ip4/127.0.0.1/tcp/0",))
    async with trio.open_nursery() as n:
        a = await n.start(P2PService(key=ka, chain_id="bench", validators=validators, params=params).run)
        t0 = time.perf_counter()
        b = await n.start(P2PService(key=kb, chain_id="bench", validators=validators,
                                     params=P2PParams(listen=params.listen, bootstrap=tuple(a.listen_addrs()))).run)
        while ka.public not in b.connected_keys():
            await trio.sleep(0.001)
        print(f"connect (start b, bootstrap dial):      {(time.perf_counter() - t0) * 1000:8.0f} ms")
        a.send(kb.public, b"warm-up")
        await b.raft_inbound.receive()
        rtt = await round_trips(a, b, 200, seconds)
        print(f"round trips/s, 200 B, raft link:         {rtt:8.0f}")
        for size in (200, 4096):
            rate, mbs = await one_way(a, b, size, seconds)
            print(f"one way messages/s, {size:5d} B:            {rate:8.0f}   ({mbs:6.1f} MB/s)")
        rate, mbs = await one_way(a, b, 64 * 1024, seconds)
        print(f"one way MB/s, 64 KiB messages:           {mbs:8.1f}   ({rate:6.0f} msg/s)")
        n.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    trio.run(main, parser.parse_args().seconds)
