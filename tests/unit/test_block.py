"""Blocks: proposer signatures, strict decoding, and block 0 from the genesis document."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcnode import codec
from hcnode.apps import default_apps
from hcnode.chain import Block, BlockHeader, Genesis, GenesisOrg, Rejected, decode_block, genesis_block, sign_block
from hcnode.chain import merkle
from hcnode.chain.state import ZERO_ROOT, next_state_root
from tests.unit.chainkit import CHAIN_ID, LocalChain, key

PROPOSER = key(1)
TXS = (b"tx-one", b"tx-two", b"tx-three")
MAX = 1 << 20


def header(**changes: Any) -> BlockHeader:
    base = BlockHeader(
        chain_id=CHAIN_ID, height=5, prev_hash=b"\x11" * 32, time_ms=1_767_225_605_000,
        tx_root=merkle.root(TXS), receipt_root=b"\x22" * 32, state_root=b"\x33" * 32, proposer=PROPOSER.public,
    )
    return dataclasses.replace(base, **changes)


def signed(**changes: Any) -> Block:
    return sign_block(PROPOSER, header(**changes), TXS)


def bad_block(value: Any) -> str:
    with pytest.raises(Rejected) as info:
        decode_block(codec.encode(value), max_bytes=MAX)
    assert info.value.code == "bad_block"
    return info.value.message


# --- signing and hashing ------------------------------------------------------------------------


def test_signed_block_verifies_and_commits_to_its_transactions() -> None:
    block = signed()
    assert block.signature_ok()
    assert block.tx_root_ok()
    assert block.hash == hashlib.sha256(codec.encode(block.header.to_list())).digest()
    assert block.header.encode() == codec.encode(block.header.to_list())


@pytest.mark.parametrize("field, value", [
    ("height", 6), ("prev_hash", b"\x12" * 32), ("time_ms", 1_767_225_605_001), ("tx_root", b"\x00" * 32),
    ("receipt_root", b"\x23" * 32), ("state_root", b"\x34" * 32), ("proposer", key(2).public),
    ("chain_id", "other-chain"),
])
def test_tampered_header_fails_the_proposer_signature(field: str, value: Any) -> None:
    block = signed()
    tampered = Block(dataclasses.replace(block.header, **{field: value}), block.signature, block.txs)
    assert not tampered.signature_ok()
    assert tampered.hash != block.hash


def test_signature_by_someone_other_than_the_named_proposer_fails() -> None:
    impostor = sign_block(key(2), header(), TXS)
    assert not impostor.signature_ok()


def test_block_signature_does_not_verify_as_a_transaction_signature() -> None:
    from hcnode import crypto

    block = signed()
    assert not crypto.verify(PROPOSER.public, block.signature, CHAIN_ID, "tx", block.header.encode())


def test_tx_list_that_differs_from_the_header_fails_tx_root() -> None:
    block = signed()
    for txs in (TXS[:2], TXS[::-1], TXS + (b"extra",), (b"tx-one", b"tx-two", b"tx-threE"), ()):
        assert not Block(block.header, block.signature, txs).tx_root_ok()
    assert block.signature_ok()  # the header alone still verifies: tx_root_ok is a separate check


def test_block_without_proposer_or_signature_does_not_verify() -> None:
    block = signed()
    assert not Block(block.header, b"", block.txs).signature_ok()
    assert not Block(dataclasses.replace(block.header, proposer=b""), block.signature, block.txs).signature_ok()


# --- decoding -----------------------------------------------------------------------------------


def test_decode_round_trips_a_block() -> None:
    block = signed()
    raw = block.encode()
    again = decode_block(raw, max_bytes=MAX)
    assert again == block
    assert again.encode() == raw
    assert again.signature_ok() and again.tx_root_ok()


def test_decode_round_trips_an_empty_block_and_genesis() -> None:
    empty = sign_block(PROPOSER, header(tx_root=merkle.root([])), [])
    assert decode_block(empty.encode(), max_bytes=MAX) == empty
    block0 = LocalChain().block0
    assert decode_block(block0.encode(), max_bytes=MAX) == block0


def _valid_value() -> list[Any]:
    return codec.decode(signed().encode())


def _with(path: tuple[int, ...], value: Any) -> list[Any]:
    v = _valid_value()
    target = v
    for i in path[:-1]:
        target = target[i]
    target[path[-1]] = value
    return v


@pytest.mark.parametrize("value, words", [
    ({}, "[header, signature, txs]"),
    ([], "[header, signature, txs]"),
    (_valid_value()[:2], "[header, signature, txs]"),
    (_valid_value() + [[]], "[header, signature, txs]"),
    (_with((0,), {}), "8 fields"),
    (_with((0,), _valid_value()[0][:7]), "8 fields"),
    (_with((0,), _valid_value()[0] + [b""]), "8 fields"),
    (_with((0, 0), b"hcnode-test"), "chain_id, height or time"),
    (_with((0, 1), -1), "chain_id, height or time"),
    (_with((0, 1), True), "chain_id, height or time"),
    (_with((0, 1), "5"), "chain_id, height or time"),
    (_with((0, 3), "now"), "chain_id, height or time"),
    (_with((0, 2), b"\x11" * 31), "prev_hash must be 32 bytes"),
    (_with((0, 4), b"\x11" * 33), "tx_root must be 32 bytes"),
    (_with((0, 5), "x" * 32), "receipt_root must be 32 bytes"),
    (_with((0, 6), None), "state_root must be 32 bytes"),
    (_with((0, 7), "proposer"), "proposer and signature must be bytes"),
    (_with((1,), None), "proposer and signature must be bytes"),
    (_with((2,), b"txs"), "txs must be a list of byte strings"),
    (_with((2,), [b"ok", "not bytes"]), "txs must be a list of byte strings"),
    (_with((2,), {"a": b""}), "txs must be a list of byte strings"),
], ids=["map", "empty", "2 parts", "4 parts", "header map", "7 fields", "9 fields", "chain bytes", "height -1",
        "height bool", "height text", "time text", "prev 31", "tx_root 33", "receipt text", "state null",
        "proposer text", "signature null", "txs bytes", "tx text", "txs map"])
def test_decode_rejects_malformed_blocks_naming_the_part(value: Any, words: str) -> None:
    assert words in bad_block(value)


def test_decode_rejects_bad_encoding_and_oversize() -> None:
    raw = signed().encode()
    with pytest.raises(Rejected, match="bad_block: block encoding: .*trailing"):
        decode_block(raw + b"\x00", max_bytes=MAX)
    with pytest.raises(Rejected, match="bad_block: block encoding: .*truncated"):
        decode_block(raw[:-1], max_bytes=MAX)
    with pytest.raises(Rejected, match="limit is"):
        decode_block(raw, max_bytes=len(raw) - 1)
    assert decode_block(raw, max_bytes=len(raw)) == signed()


def test_decode_rejects_nesting_deeper_than_a_block_has() -> None:
    assert "txs must be a list of byte strings" in bad_block(_with((2,), [[[b"deep"]]]))
    assert "nesting too deep" in bad_block(_with((2,), [[[[b"deep"]]]]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_blocks_are_rejected_or_decode_to_exactly_their_bytes(data: st.DataObject) -> None:
    raw = bytearray(signed().encode())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        block = decode_block(bytes(raw), max_bytes=MAX)
    except Rejected as exc:
        assert exc.code == "bad_block"
        return
    assert block.encode() == bytes(raw)
    if bytes(raw) != signed().encode():
        assert not (block.signature_ok() and block.tx_root_ok())


# --- genesis ------------------------------------------------------------------------------------


def _genesis(**changes: Any) -> Genesis:
    base = Genesis(chain_id=CHAIN_ID, time_ms=1_767_225_600_000, admins=(key(100).public, key(101).public),
                   admin_threshold=2, validators=(key(1).public,),
                   orgs=(GenesisOrg("hosp", "Hospital", "hospital", (key(200).public,)),))
    return dataclasses.replace(base, **changes)


def test_genesis_block_carries_the_document_and_the_founding_state_root() -> None:
    genesis = _genesis()
    block, writes = genesis_block(genesis, default_apps())
    document = codec.encode(genesis.to_value())
    assert block.txs == (document,)
    assert block.header.height == 0 and block.header.prev_hash == bytes(32)
    assert block.header.time_ms == genesis.time_ms and block.header.chain_id == CHAIN_ID
    assert block.header.tx_root == merkle.root([document])
    assert block.header.receipt_root == merkle.root([])
    assert block.header.state_root == next_state_root(ZERO_ROOT, writes)
    assert block.header.proposer == b"" and block.signature == b""
    assert codec.decode(writes[b"registry/admins"]) == {"keys": [key(100).public, key(101).public], "threshold": 2}
    assert codec.decode(writes[b"registry/validator/" + key(1).public]) == {"key": key(1).public, "since": 0}
    assert codec.decode(writes[b"registry/member/hosp/admin-1"])["roles"] == ["admin"]


def test_genesis_is_deterministic_and_its_hash_commits_to_every_field() -> None:
    apps = default_apps()
    first = genesis_block(_genesis(), apps)[0]
    assert genesis_block(_genesis(), apps)[0] == first
    variants = [
        _genesis(chain_id="other"), _genesis(time_ms=1), _genesis(admins=(key(100).public,)),
        _genesis(admin_threshold=1), _genesis(validators=(key(2).public,)), _genesis(orgs=()),
        _genesis(orgs=(GenesisOrg("hosp", "Hospital", "clinic", (key(200).public,)),)),
    ]
    hashes = {genesis_block(g, apps)[0].hash for g in variants}
    assert first.hash not in hashes and len(hashes) == len(variants)
