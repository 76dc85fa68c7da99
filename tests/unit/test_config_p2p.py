"""The ``[p2p]`` config table: optional, strict, and checked against the block size."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcnode.config import ConfigError, P2PParams, parse_config

BASE = """
chain_id = "c"
data_dir = "d"
[dev]
keys = true
[genesis]
time = 2026-01-01T00:00:00Z
admin_threshold = 1
admins = ["dev:admin"]
validators = ["dev:node"]
"""
PEER = "/ip4/127.0.0.1/tcp/4001/p2p/16Uiu2HAmLTd6TtU5QihWeM76cTW3R5HfENQBYqd7Xe6sAYUXN3MF"


def parse(extra: str):  # type: ignore[no-untyped-def]
    return parse_config(BASE + extra, Path("/tmp/x/node.toml"))


def test_without_a_p2p_table_the_node_has_no_networking() -> None:
    assert parse("").p2p is None


def test_the_p2p_table_is_read() -> None:
    p2p = parse(f'[p2p]\nlisten = ["/ip4/0.0.0.0/tcp/4001"]\nbootstrap = ["{PEER}"]\nmdns = true\n'
                "max_frame_bytes = 20000000\n").p2p
    assert p2p == P2PParams(listen=("/ip4/0.0.0.0/tcp/4001",), bootstrap=(PEER,), mdns=True,
                            max_frame_bytes=20_000_000)
    assert parse("[p2p]\n").p2p == P2PParams()


@pytest.mark.parametrize("table, problem", [
    ("lisen = []", "p2p.lisen: unknown key"),
    ('listen = ["/ip4/1.2.3/tcp/1"]', "p2p.listen\\[0\\]: .* is not a multiaddr"),
    ('listen = ["/ip4/1.2.3.4/udp/1"]', "no /tcp/PORT"),
    ("listen = []", "at least one"),
    ('bootstrap = ["/ip4/127.0.0.1/tcp/4001"]', "needs the peer's id"),
    (f'bootstrap = ["{PEER}", "{PEER}"]', "listed twice"),
    ("mdns = 1", "p2p.mdns: expected a boolean"),
    ("max_frame_bytes = 1000", "at least block.max_bytes"),
    ("gossip_max_batch_bytes = 2000000", "at most 983040"),
    ("sync_max_blocks = 0", "greater than 0"),
])
def test_bad_p2p_settings_are_named(table: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse(f"[p2p]\n{table}\n")
