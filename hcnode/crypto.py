"""secp256k1 keys and domain-separated signatures: the one signing routine.

Owns: key generation, signing, verification, the signature domain.
Must not know: transactions, blocks or what a purpose means to the chain.

Every signature covers SHA-256(canonical CBOR of ["hcnode-sig/1", chain_id,
purpose, message]), so a signature made for one chain or one purpose (a
transaction, a block header, a key rotation) never verifies for another.
Signatures are 64-byte compact ECDSA (r || s) with low s; libsecp256k1 rejects
high-s forms, which makes signatures non-malleable.
Public keys are 33-byte compressed points.
"""

from __future__ import annotations

import functools
import hashlib
import os

import coincurve
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT
from coincurve.ecdsa import der_to_cdata, serialize_compact

from hcnode import codec

__all__ = ["CryptoError", "PrivateKey", "signing_digest", "verify", "public_key_ok"]

SIGNATURE_DOMAIN = "hcnode-sig/1"
PUBLIC_KEY_BYTES = 33
SIGNATURE_BYTES = 64


class CryptoError(ValueError):
    """A key or signature that is not well formed."""


@functools.lru_cache(maxsize=256)
def _domain_prefix(chain_id: str, purpose: str) -> bytes:
    """The canonical encoding of the domain array up to (not including) the message."""
    return b"\x84" + codec.encode(SIGNATURE_DOMAIN) + codec.encode(chain_id) + codec.encode(purpose)


def signing_digest(chain_id: str, purpose: str, message: bytes) -> bytes:
    """SHA-256 of encode([SIGNATURE_DOMAIN, chain_id, purpose, message]), hashed in pieces.

    Streaming the prefix and the message into the hash gives the same digest as
    encoding the array, without copying the message into a new encoding.
    """
    digest = hashlib.sha256(_domain_prefix(chain_id, purpose))
    digest.update(codec.head(codec.MAJOR_BYTES, len(message)))
    digest.update(message)
    return digest.digest()


class PrivateKey:
    """A secp256k1 secret key; ``public`` is its 33-byte compressed public key."""

    __slots__ = ("_key", "public")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise CryptoError("a secret key is 32 bytes")
        try:
            self._key = coincurve.PrivateKey(secret)
        except ValueError as exc:
            raise CryptoError(f"invalid secret key: {exc}") from None
        self.public: bytes = self._key.public_key.format(compressed=True)

    @classmethod
    def generate(cls) -> PrivateKey:
        while True:
            try:
                return cls(os.urandom(32))
            except CryptoError:  # astronomically rare: secret out of the curve order
                continue

    @property
    def secret(self) -> bytes:
        return self._key.secret

    def sign(self, chain_id: str, purpose: str, message: bytes) -> bytes:
        der = self._key.sign(signing_digest(chain_id, purpose, message), hasher=None)
        return serialize_compact(der_to_cdata(der))


_public_key_cache: dict[bytes, coincurve.PublicKey] = {}


def _public_key(public: bytes) -> coincurve.PublicKey:
    key = _public_key_cache.get(public)
    if key is None:
        try:
            key = coincurve.PublicKey(public)
        except (ValueError, TypeError) as exc:
            raise CryptoError(f"invalid public key: {exc}") from None
        if len(_public_key_cache) > 100_000:  # bounded: parsed keys are only a speed-up
            _public_key_cache.clear()
        _public_key_cache[public] = key
    return key


def public_key_ok(public: object) -> bool:
    if type(public) is not bytes or len(public) != PUBLIC_KEY_BYTES or public[0] not in (2, 3):
        return False
    try:
        _public_key(public)
    except CryptoError:
        return False
    return True


def verify(public: bytes, signature: bytes, chain_id: str, purpose: str, message: bytes) -> bool:
    """True only for a valid low-s signature by ``public`` over this chain, purpose and message."""
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        return False
    if not public_key_ok(public):
        return False
    # Straight to libsecp256k1 (as coincurve's own verify does, minus a DER round trip): verification
    # is the node's CPU limit, and this is a quarter of its cost. The library rejects high-s forms.
    parsed = ffi.new("secp256k1_ecdsa_signature *")
    if not lib.secp256k1_ecdsa_signature_parse_compact(GLOBAL_CONTEXT.ctx, parsed, signature):
        return False
    digest = signing_digest(chain_id, purpose, message)
    return bool(lib.secp256k1_ecdsa_verify(GLOBAL_CONTEXT.ctx, parsed, digest, _public_key(public).public_key))
