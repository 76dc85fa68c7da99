"""The protocol test vectors (protocols/vectors/*.json) against the implementation.

Every vector file is loaded and each byte string, hash, signature and root in
it is recomputed from its inputs with hcnode's own code; where it is cheap, a
small independent reference (a canonical CBOR encoder, RFC 6962 Merkle
recursion, RFC 6979 ECDSA on secp256k1 in pure Python) recomputes it as well,
so the files pin the protocol and not merely this implementation's output.
The committed files must equal the generator's output byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from hcnode import codec, crypto
from hcnode.apps import default_apps
from hcnode.apps import registry
from hcnode.apps.registry import rotation_proof
from hcnode.chain import merkle
from hcnode.chain.block import BLOCK_PURPOSE, BlockHeader, decode_block, sign_block
from hcnode.chain.errors import Rejected
from hcnode.chain.execute import apply_block
from hcnode.chain.genesis import Genesis, GenesisOrg, genesis_block
from hcnode.chain.state import ZERO_ROOT, MemoryState
from hcnode.chain.tx import TX_PURPOSE, build_tx, decode_tx

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ROOT / "protocols"
VECTORS = PROTOCOLS / "vectors"
EXPECTED_FILES = {
    "keys.json", "codec.json", "decode_rejections.json", "signatures.json", "transactions.json",
    "genesis.json", "blocks.json", "merkle.json",
}


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def key(n: int) -> crypto.PrivateKey:
    return crypto.PrivateKey(n.to_bytes(32, "big"))


def unhex(text: str) -> bytes:
    return bytes.fromhex(text)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- independent references -----------------------------------------------------------------------


def ref_encode(value: Any) -> bytes:
    """A minimal RFC 8949 core deterministic encoder, written apart from cbor2."""

    def head(major: int, arg: int) -> bytes:
        if arg < 24:
            return bytes([major << 5 | arg])
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if arg < 1 << (8 * size):
                return bytes([major << 5 | info]) + arg.to_bytes(size, "big")
        raise ValueError("argument beyond 64 bits")

    if value is False:
        return b"\xf4"
    if value is True:
        return b"\xf5"
    if value is None:
        return b"\xf6"
    if type(value) is int:
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if type(value) is bytes:
        return head(2, len(value)) + value
    if type(value) is str:
        data = value.encode("utf-8")
        return head(3, len(data)) + data
    if type(value) is list:
        return head(4, len(value)) + b"".join(ref_encode(v) for v in value)
    if type(value) is dict:
        pairs = sorted((ref_encode(k), ref_encode(v)) for k, v in value.items())
        return head(5, len(value)) + b"".join(k + v for k, v in pairs)
    raise TypeError(type(value).__name__)


def ref_diag(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if type(value) is bytes:
        return "h'" + value.hex() + "'"
    if type(value) is str:
        return json.dumps(value, ensure_ascii=False)
    if type(value) is list:
        return "[" + ", ".join(ref_diag(v) for v in value) + "]"
    items = sorted(value.items(), key=lambda kv: ref_encode(kv[0]))
    return "{" + ", ".join(f"{ref_diag(k)}: {ref_diag(v)}" for k, v in items) + "}"


def ref_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 Merkle Tree Hash, recursively."""
    n = len(leaves)
    if n == 0:
        return sha(b"")
    if n == 1:
        return sha(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return sha(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1 audit path, recursively."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if index < k:
        return ref_path(index, leaves[:k]) + [ref_mth(leaves[k:])]
    return ref_path(index - k, leaves[k:]) + [ref_mth(leaves[:k])]


# secp256k1 in pure Python (affine coordinates): enough to check keys and RFC 6979 signatures.
P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)


def _add(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        slope = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (slope * slope - a[0] - b[0]) % P
    return x, (slope * (a[0] - x) - a[1]) % P


def _mul(k: int, point: tuple[int, int]) -> tuple[int, int] | None:
    out = None
    addend: tuple[int, int] | None = point
    while k:
        if k & 1:
            out = _add(out, addend)
        addend = _add(addend, addend)
        k >>= 1
    return out


def ref_public(secret: int) -> bytes:
    point = _mul(secret, G)
    assert point is not None
    return bytes([2 + (point[1] & 1)]) + point[0].to_bytes(32, "big")


def ref_point(public: bytes) -> tuple[int, int]:
    x = int.from_bytes(public[1:], "big")
    y = pow((x * x * x + 7) % P, (P + 1) // 4, P)
    assert (y * y - x * x * x - 7) % P == 0, "not on the curve"
    if (y & 1) != (public[0] & 1):
        y = P - y
    return x, y


def ref_sign(secret: int, digest: bytes) -> bytes:
    """ECDSA with the RFC 6979 (HMAC-SHA256) nonce, s normalised to low s."""
    x = secret.to_bytes(32, "big")
    h1 = (int.from_bytes(digest, "big") % N).to_bytes(32, "big")
    v, k_ = b"\x01" * 32, b"\x00" * 32
    k_ = hmac.new(k_, v + b"\x00" + x + h1, hashlib.sha256).digest()
    v = hmac.new(k_, v, hashlib.sha256).digest()
    k_ = hmac.new(k_, v + b"\x01" + x + h1, hashlib.sha256).digest()
    v = hmac.new(k_, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(k_, v, hashlib.sha256).digest()
        k = int.from_bytes(v, "big")
        if 1 <= k < N:
            point = _mul(k, G)
            assert point is not None
            r = point[0] % N
            s = pow(k, -1, N) * (int.from_bytes(digest, "big") + r * secret) % N
            if r and s:
                s = min(s, N - s)
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        k_ = hmac.new(k_, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k_, v, hashlib.sha256).digest()


def ref_verify(public: bytes, signature: bytes, digest: bytes) -> bool:
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (1 <= r < N and 1 <= s <= N // 2):
        return False
    w = pow(s, -1, N)
    z = int.from_bytes(digest, "big")
    point = _add(_mul(z * w % N, G), _mul(r * w % N, ref_point(public)))
    return point is not None and point[0] % N == r


# --- the files as a whole ---------------------------------------------------------------------------


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("hcnode_vector_generator", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_vector_file_is_checked() -> None:
    assert {p.name for p in VECTORS.glob("*.json")} == EXPECTED_FILES


def test_generator_output_equals_committed_files() -> None:
    outputs = _generator().build()
    assert set(outputs) == EXPECTED_FILES
    for name, text in outputs.items():
        assert (VECTORS / name).read_text(encoding="utf-8") == text, f"{name} is stale: run generate.py"


# --- keys and codec ------------------------------------------------------------------------------------


def test_keys() -> None:
    for entry in load("keys.json")["keys"]:
        n = entry["n"]
        assert unhex(entry["secret"]) == n.to_bytes(32, "big")
        assert key(n).public.hex() == entry["public"]
        assert ref_public(n).hex() == entry["public"]


CODEC = load("codec.json")


@pytest.mark.parametrize("vector", CODEC["valid"], ids=lambda v: v["name"])
def test_codec_valid(vector: dict[str, Any]) -> None:
    data = unhex(vector["hex"])
    value = codec.decode(data)
    assert ref_diag(value) == vector["diag"]
    assert codec.encode(value) == data
    assert ref_encode(value) == data
    assert codec.hash_value(value).hex() == vector["sha256"]


REJECTIONS = load("decode_rejections.json")


@pytest.mark.parametrize("vector", REJECTIONS["vectors"], ids=lambda v: v["name"])
def test_decode_rejects(vector: dict[str, Any]) -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(unhex(vector["hex"]))


@pytest.mark.parametrize("vector", REJECTIONS["large"], ids=lambda v: v["name"])
def test_decode_rejects_large(vector: dict[str, Any]) -> None:
    data = unhex(vector["hex_prefix"]) + unhex(vector["fill"]) * vector["fill_count"]
    with pytest.raises(codec.CodecError):
        codec.decode(data)


def test_decode_rejection_reasons_cover_the_brief() -> None:
    reasons = {v["reason"] for v in REJECTIONS["vectors"] + REJECTIONS["large"]}
    assert {"float", "tag", "duplicate_key", "non_canonical_int", "unsorted_keys", "indefinite_length",
            "trailing_bytes", "truncated", "too_deep"} <= reasons


# --- signatures ---------------------------------------------------------------------------------------------

SIGNATURES = load("signatures.json")


@pytest.mark.parametrize("vector", SIGNATURES["vectors"], ids=lambda v: v["name"])
def test_signature_domain(vector: dict[str, Any]) -> None:
    chain_id, purpose, message = vector["chain_id"], vector["purpose"], unhex(vector["message"])
    domain = ["hcnode-sig/1", chain_id, purpose, message]
    assert codec.encode(domain).hex() == vector["domain"]["hex"]
    assert ref_encode(domain).hex() == vector["domain"]["hex"]
    digest = unhex(vector["digest"])
    assert sha(unhex(vector["domain"]["hex"])) == digest
    assert crypto.signing_digest(chain_id, purpose, message) == digest
    signer = key(vector["signer"])
    assert signer.public.hex() == vector["public"]
    signature = unhex(vector["signature"])
    assert signer.sign(chain_id, purpose, message) == signature
    assert crypto.verify(signer.public, signature, chain_id, purpose, message)
    assert int.from_bytes(signature[32:], "big") <= N // 2


@pytest.mark.parametrize("vector", SIGNATURES["invalid"], ids=lambda v: v["why"])
def test_signature_must_not_verify(vector: dict[str, Any]) -> None:
    assert not crypto.verify(unhex(vector["public"]), unhex(vector["signature"]), vector["chain_id"],
                             vector["purpose"], unhex(vector["message"]))


def test_rotation_proof() -> None:
    rotation = SIGNATURES["rotation"]
    old, new = key(rotation["old_key"]), key(rotation["new_key"])
    assert old.public.hex() == rotation["old_public"] and new.public.hex() == rotation["new_public"]
    message = codec.encode([old.public, new.public])
    assert message.hex() == rotation["message"]["hex"]
    assert codec.encode(["hcnode-sig/1", rotation["chain_id"], "key-rotate", message]).hex() == rotation["domain"]["hex"]
    assert sha(unhex(rotation["domain"]["hex"])).hex() == rotation["digest"]
    proof = rotation_proof(new, rotation["chain_id"], old.public)
    assert proof.hex() == rotation["proof"]
    assert crypto.verify(new.public, proof, rotation["chain_id"], "key-rotate", message)
    assert not crypto.verify(old.public, proof, rotation["chain_id"], "key-rotate", message)


def _all_signed_digests() -> list[tuple[int, str, str]]:
    """(signer, digest, signature) for every signature in the files."""
    out = [(v["signer"], v["digest"], v["signature"]) for v in SIGNATURES["vectors"]]
    out += [(v["signer"], v["digest"], v["signature"]) for v in load("transactions.json")["valid"]]
    out += [(b["proposer"], b["signing_digest"], b["signature"]) for b in load("blocks.json")["blocks"]]
    rotation = SIGNATURES["rotation"]
    out.append((rotation["new_key"], rotation["digest"], rotation["proof"]))
    return out


def test_signatures_are_rfc6979_low_s() -> None:
    """Every signature in the files is what a plain RFC 6979 ECDSA signer (then low s) produces."""
    for n, digest, signature in _all_signed_digests():
        assert ref_sign(n, unhex(digest)).hex() == signature
        assert ref_verify(ref_public(n), unhex(signature), unhex(digest))


# --- transactions -----------------------------------------------------------------------------------------

TRANSACTIONS = load("transactions.json")
APPS = default_apps()


@pytest.mark.parametrize("vector", TRANSACTIONS["valid"], ids=lambda v: v["name"])
def test_transaction(vector: dict[str, Any]) -> None:
    chain_id = TRANSACTIONS["chain_id"]
    signer = key(vector["signer"])
    assert signer.public.hex() == vector["sender"]
    payload = codec.decode(unhex(vector["payload"]["hex"]))
    assert ref_diag(payload) == vector["payload"]["diag"]
    signed = codec.encode([1, chain_id, vector["type"], signer.public, vector["nonce"], payload])
    assert signed.hex() == vector["signed"]["hex"]
    assert crypto.signing_digest(chain_id, TX_PURPOSE, signed).hex() == vector["digest"]
    raw = build_tx(signer, chain_id, vector["type"], vector["nonce"], payload)
    assert raw.hex() == vector["tx"]["hex"]
    assert raw == ref_encode([1, chain_id, vector["type"], signer.public, vector["nonce"], payload,
                              unhex(vector["signature"])])
    assert b"\x86" + raw[1:-66] == signed  # the signed part is the envelope's first six fields
    assert sha(raw).hex() == vector["hash"]
    tx = decode_tx(raw, chain_id=chain_id, max_bytes=TRANSACTIONS["max_bytes"], payload_spec=APPS.payload_spec)
    assert (tx.type, tx.sender, tx.nonce, tx.payload) == (vector["type"], signer.public, vector["nonce"], payload)
    assert tx.signature.hex() == vector["signature"] and tx.hash.hex() == vector["hash"]
    assert crypto.verify(signer.public, tx.signature, chain_id, TX_PURPOSE, signed)


@pytest.mark.parametrize("vector", TRANSACTIONS["rejected"], ids=lambda v: v["name"])
def test_transaction_rejected(vector: dict[str, Any]) -> None:
    with pytest.raises(Rejected) as caught:
        decode_tx(unhex(vector["hex"]), chain_id=TRANSACTIONS["chain_id"], max_bytes=vector["max_bytes"],
                  payload_spec=APPS.payload_spec)
    assert caught.value.code == vector["code"], caught.value.message


def test_every_tx_type_has_a_vector() -> None:
    assert {v["type"] for v in TRANSACTIONS["valid"]} == set(APPS.tx_types)


# --- genesis and blocks -------------------------------------------------------------------------------------

GENESIS = load("genesis.json")
BLOCKS = load("blocks.json")


def _genesis() -> Genesis:
    inputs = GENESIS["inputs"]
    return Genesis(
        chain_id=inputs["chain_id"],
        time_ms=inputs["time_ms"],
        admins=tuple(key(n).public for n in inputs["admins"]),
        admin_threshold=inputs["admin_threshold"],
        validators=tuple(key(n).public for n in inputs["validators"]),
        orgs=tuple(GenesisOrg(o["id"], o["name"], o["kind"], tuple(key(n).public for n in o["admins"]))
                   for o in inputs["orgs"]),
    )


def _writes(vector_writes: list[dict[str, Any]]) -> dict[bytes, bytes | None]:
    return {unhex(w["key"]): None if w["value"] is None else unhex(w["value"]) for w in vector_writes}


def _header(fields: dict[str, Any]) -> BlockHeader:
    return BlockHeader(fields["chain_id"], fields["height"], unhex(fields["prev_hash"]), fields["time_ms"],
                       unhex(fields["tx_root"]), unhex(fields["receipt_root"]), unhex(fields["state_root"]),
                       unhex(fields["proposer"]))


def test_genesis_block() -> None:
    genesis = _genesis()
    block, writes = genesis_block(genesis, APPS)
    document = block.txs[0]
    assert document.hex() == GENESIS["document"]["hex"]
    assert ref_encode(genesis.to_value()) == document
    assert ref_diag(codec.decode(document)) == GENESIS["document"]["diag"]
    assert dict(sorted(writes.items())) == _writes(GENESIS["writes"])
    state_input = ["hcnode-state/1", ZERO_ROOT, [[k, writes[k]] for k in sorted(writes)]]
    assert codec.encode(state_input).hex() == GENESIS["state_input"]["hex"]
    header = block.header
    assert header == _header(GENESIS["header"])
    assert header.state_root == sha(unhex(GENESIS["state_input"]["hex"]))
    assert header.tx_root == ref_mth([document]) and header.receipt_root == sha(b"")
    assert header.prev_hash == bytes(32) and header.proposer == b"" and block.signature == b""
    assert header.encode().hex() == GENESIS["header_encoded"]["hex"]
    assert header.hash.hex() == GENESIS["hash"] == sha(header.encode()).hex()
    assert block.encode().hex() == GENESIS["block"]["hex"]
    assert decode_block(unhex(GENESIS["block"]["hex"]), max_bytes=1 << 20) == block


def test_blocks_replay_from_genesis() -> None:
    genesis = _genesis()
    block0, writes = genesis_block(genesis, APPS)
    assert BLOCKS["genesis_hash"] == block0.hash.hex()
    state = MemoryState()
    state.commit(writes)
    root, prev_hash, previous = block0.header.state_root, block0.hash, block0.header
    chain_id = BLOCKS["chain_id"]
    for vector in BLOCKS["blocks"]:
        raws = []
        for tx in vector["txs"]:
            payload = codec.decode(unhex(tx["payload"]["hex"]))
            raw = build_tx(key(tx["signer"]), chain_id, tx["type"], tx["nonce"], payload)
            assert raw.hex() == tx["tx"]["hex"] and sha(raw).hex() == tx["hash"]
            raws.append(raw)
        assert vector["prev_state_root"] == root.hex()
        block = decode_block(unhex(vector["block"]["hex"]), max_bytes=1 << 20)
        assert list(block.txs) == raws
        header = block.header
        assert header == _header(vector["header"])
        assert header.prev_hash == prev_hash and header.height == vector["height"]
        assert header.encode().hex() == vector["header_encoded"]["hex"]
        assert header.hash.hex() == vector["hash"] == sha(header.encode()).hex()
        proposer = key(vector["proposer"])
        assert header.proposer == proposer.public
        assert crypto.signing_digest(chain_id, BLOCK_PURPOSE, header.encode()).hex() == vector["signing_digest"]
        assert block.signature.hex() == vector["signature"]
        assert block.signature_ok() and block.tx_root_ok()
        assert sign_block(proposer, header, raws).encode().hex() == vector["block"]["hex"]
        # apply_block re-executes and raises unless tx, receipt and state roots all match the header.
        result = apply_block(state, APPS, block, previous,
                             lambda key, h=header.height: registry.is_validator(state, key, h))
        previous = header
        assert [r.hex() for r in result.encoded_receipts] == [r["hex"] for r in vector["receipts"]]
        assert [ref_diag(r) for r in result.receipts] == [r["diag"] for r in vector["receipts"]]
        assert dict(sorted(result.writes.items())) == _writes(vector["writes"])
        state_input = ["hcnode-state/1", root, [[k, result.writes[k]] for k in sorted(result.writes)]]
        assert codec.encode(state_input).hex() == vector["state_input"]["hex"]
        assert header.state_root == sha(codec.encode(state_input))
        assert header.tx_root == ref_mth(raws)
        assert header.receipt_root == ref_mth([unhex(r["hex"]) for r in vector["receipts"]])
        for index, raw in enumerate(raws):
            assert merkle.verify_proof(raw, index, len(raws), ref_path(index, raws), header.tx_root)
        state.commit(result.writes)
        root, prev_hash = header.state_root, header.hash


def test_block_receipts_show_both_outcomes() -> None:
    statuses = {codec.decode(unhex(r["hex"]))["status"] for b in BLOCKS["blocks"] for r in b["receipts"]}
    assert statuses == {"ok", "rejected"}
    assert len(BLOCKS["blocks"][0]["txs"]) == 2


# --- Merkle ------------------------------------------------------------------------------------------------

MERKLE = load("merkle.json")


@pytest.mark.parametrize("tree", MERKLE["trees"], ids=lambda t: f"size {t['size']}")
def test_merkle_tree(tree: dict[str, Any]) -> None:
    leaves = [unhex(x) for x in tree["leaves"]]
    assert len(leaves) == tree["size"]
    assert [merkle.leaf_hash(x).hex() for x in leaves] == tree["leaf_hashes"]
    root = unhex(tree["root"])
    assert merkle.root(leaves) == root == ref_mth(leaves)
    for proof in tree["proofs"]:
        index = proof["index"]
        path = [unhex(p) for p in proof["path"]]
        assert merkle.proof(leaves, index) == path == ref_path(index, leaves)
        assert merkle.verify_proof(leaves[index], index, len(leaves), path, root)
        obj = {"leaf": leaves[index], "index": index, "size": len(leaves), "path": path, "root": root}
        assert codec.encode(obj).hex() == proof["proof"]["hex"]


def test_merkle_empty_root() -> None:
    assert merkle.root([]).hex() == MERKLE["empty_root"] == sha(b"").hex()


@pytest.mark.parametrize("vector", MERKLE["invalid"], ids=lambda v: v["why"])
def test_merkle_invalid_proof(vector: dict[str, Any]) -> None:
    assert not merkle.verify_proof(unhex(vector["leaf"]), vector["index"], vector["size"],
                                   [unhex(p) for p in vector["path"]], unhex(vector["root"]))


# --- CDDL (when a CDDL validator is installed) ----------------------------------------------------------------


def _cddl_items() -> list[tuple[str, str, str]]:
    """(where, rule, hex) for every CBOR item in the files that names its CDDL rule."""
    found: list[tuple[str, str, str]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "cddl" in node:  # an item ("hex") or a state write ("value")
                found.append((where, node["cddl"], node["hex"] if "hex" in node else node["value"]))
            for name, child in node.items():
                walk(child, f"{where}.{name}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{where}[{i}]")

    for name in sorted(EXPECTED_FILES):
        walk(load(name), name)
    return found


def test_cddl_names_every_registry_payload() -> None:
    text = (PROTOCOLS / "chain.cddl").read_text(encoding="utf-8")
    for tx_type in APPS.tx_types:
        assert f"\n{tx_type}-payload = " in text, tx_type


def test_vectors_validate_against_cddl() -> None:
    import cddl_verifier

    validator = cddl_verifier.Validator(PROTOCOLS / "chain.cddl")
    items = _cddl_items()
    assert len(items) > 100
    for where, rule, hex_data in items:
        result = validator.validate(unhex(hex_data), root_type=rule)
        assert result.valid, f"{where} does not match {rule}: {[d.message for d in result.diagnostics]}"
    for vector in TRANSACTIONS["rejected"]:
        result = validator.validate(unhex(vector["hex"]), root_type="tx")
        assert result.valid == vector["cddl_valid"], (vector["name"], [d.message for d in result.diagnostics])


def test_cddl_parses_with_pycddl() -> None:
    """A second, independent CDDL implementation (Rust cddl-rs) must at least parse the file."""
    import pycddl

    text = (PROTOCOLS / "chain.cddl").read_text(encoding="utf-8")
    pycddl.Schema("root = any-block\n" + text)
