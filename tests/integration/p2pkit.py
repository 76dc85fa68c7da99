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
                             wait_for_block=wait_for_block)
        scope = trio.CancelScope()
        self.scopes[key.public] = scope

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await service.run(task_status=task_status)

        await self.nursery.start(run)
        return service

    def stop(self, service: P2PService) -> None:
        self.scopes[service.public].cancel()


@asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    async with trio.open_nursery() as nursery:
        yield Cluster(nursery)
        nursery.cancel_scope.cancel()


def keys(n: int) -> list[crypto.PrivateKey]:
    return [crypto.PrivateKey.generate() for _ in range(n)]
