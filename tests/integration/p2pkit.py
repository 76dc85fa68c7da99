"""Helpers for the p2p tests: services on loopback in one trio run, and bounded polling.

Every wait here is a poll with a deadline (``wait_until``), never a bare sleep,
so a slow machine makes a test slower, not flaky, and a broken one fails in seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import trio

from hcnode import crypto
from hcnode.config import P2PParams
from hcnode.node.p2p import P2PService

CHAIN_ID = "hcnode-test"
LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    with trio.move_on_after(timeout_s):
        while not predicate():
            await trio.sleep(0.01)
        return
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def make_params(**overrides: object) -> P2PParams:
    return replace(P2PParams(listen=LOOPBACK), **overrides)


class Cluster:
    """Services started in one nursery; each can be stopped alone (its own cancel scope)."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.scopes: dict[bytes, trio.CancelScope] = {}

    async def start(self, key: crypto.PrivateKey, validators: list[bytes], *,
                    blocks: dict[int, bytes] | None = None,
                    wait_for_block: Callable[[int], Awaitable[object]] | None = None,
                    **params: object) -> P2PService:
        service = P2PService(key=key, chain_id=CHAIN_ID, validators=validators, params=make_params(**params),
                             get_block_bytes=(blocks if blocks is not None else {}).get,
                             wait_for_block=wait_for_block,
                             head_height=lambda: max(blocks or {}, default=-1))
        scope = trio.CancelScope()
        self.scopes[key.public] = scope

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await service.run(task_status=task_status)

        await self.nursery.start(run)
        return service

    async def start_pair(self, *, blocks: dict[int, bytes] | None = None,
                         wait_for_block: Callable[[int], Awaitable[object]] | None = None,
                         **params: object) -> tuple[P2PService, P2PService]:
        """Two validators: ``a`` (serving ``blocks``) and ``b``, which dials it; ``params`` go to both.
        Returns once b is connected to a."""
        a_key, b_key = keys(2)
        validators = [a_key.public, b_key.public]
        a = await self.start(a_key, validators, blocks=blocks, wait_for_block=wait_for_block, **params)
        b = await self.start(b_key, validators, bootstrap=tuple(a.listen_addrs()), **params)
        await wait_until(lambda: a.public in b.connected_keys(), what="b connected to a")
        return a, b

    def stop(self, service: P2PService) -> None:
        self.scopes[service.public].cancel()


@asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    async with trio.open_nursery() as nursery:
        yield Cluster(nursery)
        nursery.cancel_scope.cancel()


def keys(n: int) -> list[crypto.PrivateKey]:
    return [crypto.PrivateKey.generate() for _ in range(n)]
