"""Signed transaction envelopes and their stateless checks.

Owns: the envelope's wire form, its hash, building and signing one, and every
check that needs no state (decoding, size, version, chain id, known type,
payload schema, signature). Must not know state, nonces or roles: those are
stateful checks in ``chain.execute``.

Wire form (canonical CBOR array, see protocols/chain.cddl):
    [version, chain_id, type, sender, nonce, payload, signature]
The signature covers the canonical encoding of the first six fields under the
purpose "tx"; the transaction hash is SHA-256 of the whole encoding. Because
the encoding is canonical and signatures are low-s, a transaction has exactly
one valid encoding and so exactly one hash.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import cbor2

from hcnode import codec, crypto
from hcnode.chain.errors import Rejected
from hcnode.chain.schema import Spec

__all__ = ["TX_VERSION", "TX_PURPOSE", "Tx", "build_tx", "decode_tx", "trusted_tx"]

TX_VERSION: Final = 1
TX_PURPOSE: Final = "tx"
MAX_TYPE_LEN: Final = 64


class Tx(NamedTuple):
    """A decoded, checked transaction (immutable; a tuple because every node builds one per transaction)."""

    version: int
    chain_id: str
    type: str
    sender: bytes
    nonce: int
    payload: dict[str, Any]
    signature: bytes
    raw: bytes
    hash: bytes


def _signed_part(chain_id: str, tx_type: str, sender: bytes, nonce: int, payload: dict[str, Any]) -> bytes:
    return codec.encode([TX_VERSION, chain_id, tx_type, sender, nonce, payload])


def build_tx(key: crypto.PrivateKey, chain_id: str, tx_type: str, nonce: int, payload: dict[str, Any]) -> bytes:
    """Sign and encode a transaction; returns its wire bytes."""
    body = _signed_part(chain_id, tx_type, key.public, nonce, payload)
    signature = key.sign(chain_id, TX_PURPOSE, body)
    return codec.encode([TX_VERSION, chain_id, tx_type, key.public, nonce, payload, signature])


@functools.lru_cache(maxsize=8)
def _limits(max_bytes: int) -> codec.DecodeLimits:
    return codec.DecodeLimits(max_bytes=max_bytes, max_depth=12, max_items=max_bytes)


def decode_tx(
    raw: bytes,
    *,
    chain_id: str,
    max_bytes: int,
    payload_spec: Callable[[str], Spec | None],
) -> Tx:
    """All stateless checks, in order of cost; raises ``Rejected`` naming the first failure."""
    if len(raw) > max_bytes:
        raise Rejected("too_large", f"transaction is {len(raw)} bytes, limit {max_bytes}")
    try:
        value = codec.decode(raw, _limits(max_bytes))
    except codec.CodecError as exc:
        raise Rejected("bad_encoding", str(exc)) from None
    if type(value) is not list or len(value) != 7:
        raise Rejected("bad_envelope", "a transaction is an array of 7 fields")
    version, tx_chain, tx_type, sender, nonce, payload, signature = value
    if version != TX_VERSION or type(version) is not int:
        raise Rejected("bad_version", f"version {version!r} is not supported (expected {TX_VERSION})")
    if type(tx_chain) is not str or tx_chain != chain_id:
        raise Rejected("wrong_chain", f"transaction is for chain {tx_chain!r}, this is {chain_id!r}")
    if type(tx_type) is not str or len(tx_type) > MAX_TYPE_LEN:
        raise Rejected("bad_envelope", "type must be text of at most 64 characters")
    if type(nonce) is not int or nonce < 0 or nonce >= 2**63:
        raise Rejected("bad_envelope", "nonce must be an integer in 0..2^63-1")
    if not crypto.public_key_ok(sender):
        raise Rejected("bad_envelope", "sender must be a 33-byte compressed secp256k1 public key")
    if type(signature) is not bytes or len(signature) != crypto.SIGNATURE_BYTES:
        raise Rejected("bad_envelope", "signature must be 64 bytes")
    spec = payload_spec(tx_type)
    if spec is None:
        raise Rejected("unknown_type", f"unknown transaction type {tx_type!r}")
    spec.check(payload, "payload")
    # The canonical envelope is 0x87, the six signed fields, then the 64-byte signature
    # (0x58 0x40 + 64 bytes); so the signed part is 0x86 and the same middle bytes.
    body = b"\x86" + raw[1:-66]
    if not crypto.verify(sender, signature, chain_id, TX_PURPOSE, body):
        raise Rejected("bad_signature", "signature does not verify for this sender, chain and content")
    return Tx(version, tx_chain, tx_type, sender, nonce, payload, signature, raw, hashlib.sha256(raw).digest())


def trusted_tx(raw: bytes) -> Tx:
    """Rebuild a ``Tx`` from bytes that already passed ``decode_tx`` (in a verifier process).

    Skips every check; never call it on bytes that were not checked.
    """
    version, chain_id, tx_type, sender, nonce, payload, signature = cbor2.loads(raw)
    return Tx(version, chain_id, tx_type, sender, nonce, payload, signature, raw, hashlib.sha256(raw).digest())
