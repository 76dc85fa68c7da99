"""The CDDL in ``protocols/p2p.md`` describes what the code really sends.

The ```` ```cddl ```` blocks of p2p.md, together with ``chain.cddl`` (for ``block``,
``tx`` and ``public-key``), must parse with both CDDL implementations, and the
bytes the code produces (Raft messages of every type, sync requests and answers,
gossip batches) must validate against them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hcnode import codec, crypto
from hcnode.consensus import Entry, EntryType, Message, MessageType
from hcnode.node.consensus_driver import encode_message
from hcnode.node.p2p import encode_tx_batch
from tests.unit.chainkit import LocalChain, key

PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"


def schema() -> str:
    blocks = re.findall(r"```cddl\n(.*?)```", (PROTOCOLS / "p2p.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 3
    return "\n".join(blocks) + "\n" + (PROTOCOLS / "chain.cddl").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def validator():  # type: ignore[no-untyped-def]
    import cddl_verifier

    return cddl_verifier.Validator(schema())


@pytest.fixture(scope="module")
def chain() -> LocalChain:
    c = LocalChain()
    c.block(c.tx(key(7), "registry.patient_register", {}))
    return c


def valid(validator, data: bytes, rule: str) -> bool:  # type: ignore[no-untyped-def]
    result = validator.validate(data, root_type=rule)
    return bool(result.valid)


def test_the_p2p_cddl_parses_with_pycddl() -> None:
    import pycddl

    pycddl.Schema("root = raft-frame / sync-request / sync-response / sync-response-v1 / tx-batch\n" + schema())


@pytest.mark.parametrize("kind", list(MessageType), ids=lambda t: t.value)
def test_every_raft_message_type_matches_raft_message(kind: MessageType, validator, chain) -> None:  # type: ignore[no-untyped-def]
    a, b = key(1).public, key(2).public
    entries = (Entry(term=3, index=5, type=EntryType.EMPTY), Entry(term=3, index=6, data=chain.blocks[0].encode()))
    message = Message(kind, a, b, term=3, log_term=2, index=4, commit=4, reject=True, reject_hint=1,
                      entries=entries if kind is MessageType.APP else ())
    data = encode_message(message)
    assert valid(validator, data, "raft-message")
    assert valid(validator, codec.encode(data), "raft-frame")


def test_a_raft_message_of_an_unknown_type_or_eleven_fields_does_not_match(validator) -> None:  # type: ignore[no-untyped-def]
    a, b = key(1).public, key(2).public
    good = codec.decode(encode_message(Message(MessageType.HEARTBEAT, a, b, term=1)))
    assert not valid(validator, codec.encode(["install_snapshot"] + good[1:]), "raft-message")
    assert not valid(validator, codec.encode(good + [0]), "raft-message")


def test_sync_requests_and_answers_match(validator, chain) -> None:  # type: ignore[no-untyped-def]
    assert valid(validator, codec.encode({"start": 1, "count": 64}), "sync-request")
    assert not valid(validator, codec.encode({"start": 1, "count": 0}), "sync-request")
    assert not valid(validator, codec.encode({"start": -1, "count": 1}), "sync-request")
    blocks = [b.encode() for b in chain.blocks]
    head = len(blocks) - 1
    assert valid(validator, codec.encode({"blocks": blocks, "head": head}), "sync-response")
    assert valid(validator, codec.encode({"blocks": [], "head": -1}), "sync-response")
    assert not valid(validator, codec.encode({"blocks": blocks}), "sync-response")  # /2 answers carry the head
    assert not valid(validator, codec.encode({"blocks": [], "head": -2}), "sync-response")
    assert valid(validator, codec.encode({"blocks": blocks}), "sync-response-v1")
    assert not valid(validator, codec.encode({"blocks": blocks, "head": head}), "sync-response-v1")
    for rule in ("sync-response", "sync-response-v1"):
        assert valid(validator, codec.encode({"error": "internal error reading blocks"}), rule)


def test_a_gossip_batch_matches_tx_batch(validator, chain) -> None:  # type: ignore[no-untyped-def]
    txs = [chain.tx(crypto.PrivateKey.generate(), "registry.patient_register", {}) for _ in range(3)]
    assert valid(validator, encode_tx_batch(txs, 2000, 768 * 1024), "tx-batch")
    assert not valid(validator, codec.encode([]), "tx-batch")
