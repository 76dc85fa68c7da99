"""Two OS processes over loopback: a peer in a child process echoes Raft payloads and serves blocks.

The child is ``python -c`` running a P2PService; it prints its listen address on
stdout, and exits 0 on SIGTERM (the p2p service's clean shutdown).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from hcnode import crypto
from tests.integration.p2pkit import cluster, wait_until

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import signal, sys, trio
    from hcnode import crypto, codec
    from hcnode.config import P2PParams
    from hcnode.node.p2p import P2PService

    key = crypto.PrivateKey(bytes.fromhex(sys.argv[1]))
    validators = [key.public, bytes.fromhex(sys.argv[2])]
    blocks = {h: codec.encode(["block", h]) for h in range(100)}

    async def main():
        service = P2PService(key=key, chain_id="hcnode-test", validators=validators,
                             params=P2PParams(listen=("/ip4/127.0.0.1/tcp/0",)), get_block_bytes=blocks.get)
        async with trio.open_nursery() as n:
            await n.start(service.run)
            print(service.listen_addrs()[0], flush=True)
            async def echo():
                async for peer, payload in service.raft_inbound:
                    service.send(peer, b"echo:" + payload)
            n.start_soon(echo)
            with trio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    n.cancel_scope.cancel()
                    return

    trio.run(main)
""")


async def test_two_processes_exchange_raft_messages_and_sync_blocks() -> None:
    child_key, our_key = crypto.PrivateKey.generate(), crypto.PrivateKey.generate()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-W", "error::ResourceWarning", "-c", CHILD, child_key.secret.hex(),
                              our_key.public.hex()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = await trio.to_thread.run_sync(child.stdout.readline)  # type: ignore[union-attr]
        addr = line.decode().strip()
        assert addr.startswith("/ip4/127.0.0.1/tcp/"), (addr, child.stderr.read() if child.stderr else b"")
        async with cluster() as c:
            us = await c.start(our_key, [child_key.public, our_key.public], bootstrap=(addr,))
            await wait_until(lambda: child_key.public in us.connected_keys(), what="connected to the child")
            for i in range(100):
                us.send(child_key.public, b"%d" % i)
            with trio.fail_after(10):
                got = [await us.raft_inbound.receive() for _ in range(100)]
            assert got == [(child_key.public, b"echo:%d" % i) for i in range(100)]
            blocks = await us.fetch_blocks(child_key.public, 10, 5)
            assert len(blocks) == 5 and all(isinstance(b, bytes) for b in blocks)
        child.send_signal(signal.SIGTERM)
        _, stderr = await trio.to_thread.run_sync(lambda: child.communicate(timeout=20))
        assert child.returncode == 0, stderr.decode()[-2000:]
        assert b"ResourceWarning" not in stderr
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


async def test_a_stopped_gossip_subscriber_does_not_hold_up_publishing_to_the_others(
        caplog: pytest.LogCaptureFixture) -> None:
    """A peer that stops reading (here SIGSTOP: a hung or swapped-out observer, which any key may be) fills
    its outbound gossip queue; publishing must skip it, not wait for it, or every relay slows down."""
    child_key, our_key, other_key = crypto.PrivateKey.generate(), crypto.PrivateKey.generate(), \
        crypto.PrivateKey.generate()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    caplog.set_level(logging.WARNING, logger="hcnode.p2p")
    child = subprocess.Popen([sys.executable, "-c", CHILD, child_key.secret.hex(), our_key.public.hex()],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = await trio.to_thread.run_sync(child.stdout.readline)  # type: ignore[union-attr]
        addr = line.decode().strip()
        assert addr.startswith("/ip4/127.0.0.1/tcp/"), (addr, child.stderr.read() if child.stderr else b"")
        validators = [our_key.public, other_key.public]
        async with cluster() as c:
            us = await c.start(our_key, validators, bootstrap=(addr,))
            other = await c.start(other_key, validators, bootstrap=tuple(us.listen_addrs()))
            assert us._pubsub is not None
            router = us._pubsub.router
            # In our mesh, not just subscribed: a publish before the next heartbeat's graft may miss a peer.
            await wait_until(lambda: len(router.mesh.get(us.topic, ())) == 2,  # type: ignore[attr-defined]
                             what="the child and the other peer in our gossip mesh")
            child.send_signal(signal.SIGSTOP)
            sent = [[b"%d-%d-" % (i, j) + bytes(2000) for j in range(50)] for i in range(60)]  # ~100 KB each
            started = trio.current_time()
            published = 0
            with trio.move_on_after(20):  # waiting for the stopped peer would take 10 s (request timeout) a batch
                for batch in sent:
                    await us.publish_txs(batch)
                    published += 1
            took = trio.current_time() - started
            assert published == len(sent), f"{published} of {len(sent)} batches published in {took:.1f} s"
            got = []
            with trio.move_on_after(10):
                while len(got) < len(sent):
                    got.append((await other.tx_batches.receive())[1])
            assert sorted(got) == sorted(sent)
            assert took < 5, f"publishing 60 batches took {took:.1f} s with one subscriber stopped"
            assert f"observer {child_key.public.hex()[:16]}" in caplog.text and "stopped reading gossip" in caplog.text
            child.send_signal(signal.SIGCONT)  # so that our shutdown closes its connection cleanly
        child.send_signal(signal.SIGTERM)
        _, stderr = await trio.to_thread.run_sync(lambda: child.communicate(timeout=20))
        assert child.returncode == 0, stderr.decode()[-2000:]
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGCONT)
            child.kill()
            child.wait()
