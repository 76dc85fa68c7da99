"""secp256k1 signing: domain separation by chain and purpose, low-s only, strict keys."""

from __future__ import annotations

import hashlib

import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcnode import codec, crypto
from hcnode.crypto import CryptoError, PrivateKey

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
FIELD_P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F


def key(n: int) -> PrivateKey:
    return PrivateKey(n.to_bytes(32, "big"))


ALICE, BOB = key(11), key(12)


def high_s(signature: bytes) -> bytes:
    r, s = signature[:32], int.from_bytes(signature[32:], "big")
    return r + (ORDER - s).to_bytes(32, "big")


def test_signature_verifies_for_its_key_chain_purpose_and_message() -> None:
    sig = ALICE.sign("chain-a", "tx", b"hello")
    assert len(sig) == 64
    assert crypto.verify(ALICE.public, sig, "chain-a", "tx", b"hello")


def test_signature_for_one_chain_does_not_verify_on_another() -> None:
    sig = ALICE.sign("chain-a", "tx", b"hello")
    assert not crypto.verify(ALICE.public, sig, "chain-b", "tx", b"hello")
    assert not crypto.verify(ALICE.public, sig, "chain-a ", "tx", b"hello")


def test_signature_for_one_purpose_does_not_verify_for_another() -> None:
    sig = ALICE.sign("chain-a", "tx", b"hello")
    for purpose in ("block", "key-rotate", "TX", ""):
        assert not crypto.verify(ALICE.public, sig, "chain-a", purpose, b"hello")


def test_domain_fields_cannot_be_shifted_into_each_other() -> None:
    # The domain is a CBOR array of separate strings, so moving characters between fields changes the digest.
    digests = {
        crypto.signing_digest("ab", "c", b"m"),
        crypto.signing_digest("a", "bc", b"m"),
        crypto.signing_digest("a", "b", b"cm"),
        crypto.signing_digest("abc", "", b"m"),
    }
    assert len(digests) == 4


def test_tampered_message_or_signature_fails() -> None:
    sig = ALICE.sign("c", "tx", b"payload")
    assert not crypto.verify(ALICE.public, sig, "c", "tx", b"payloae")
    assert not crypto.verify(ALICE.public, sig, "c", "tx", b"payload\x00")
    for i in (0, 31, 32, 63):
        bad = bytearray(sig)
        bad[i] ^= 0x01
        assert not crypto.verify(ALICE.public, bytes(bad), "c", "tx", b"payload")


def test_signature_by_another_key_fails() -> None:
    sig = BOB.sign("c", "tx", b"m")
    assert not crypto.verify(ALICE.public, sig, "c", "tx", b"m")


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300), st.text(max_size=20), st.text(max_size=20))
def test_signatures_are_low_s_and_high_s_twins_are_rejected(message: bytes, chain_id: str, purpose: str) -> None:
    sig = ALICE.sign(chain_id, purpose, message)
    assert int.from_bytes(sig[32:], "big") <= ORDER // 2
    assert crypto.verify(ALICE.public, sig, chain_id, purpose, message)
    twin = high_s(sig)
    assert twin != sig and high_s(twin) == sig  # the (r, n - s) twin of the same signature
    # the chain accepts only the low-s form, so a signature cannot be malleated.
    assert not crypto.verify(ALICE.public, twin, chain_id, purpose, message)


@pytest.mark.parametrize("sig", [
    b"", b"\x00" * 63, b"\x00" * 65, b"\x00" * 64, b"\xff" * 64,
    (0).to_bytes(32, "big") + (1).to_bytes(32, "big"),  # r = 0
    (1).to_bytes(32, "big") + (0).to_bytes(32, "big"),  # s = 0
    ORDER.to_bytes(32, "big") + (1).to_bytes(32, "big"),  # r = n
    (1).to_bytes(32, "big") + ORDER.to_bytes(32, "big"),  # s = n
], ids=["empty", "63", "65", "zeros", "ones", "r0", "s0", "r=n", "s=n"])
def test_malformed_signatures_are_rejected_without_raising(sig: bytes) -> None:
    assert crypto.verify(ALICE.public, sig, "c", "tx", b"m") is False


@pytest.mark.parametrize("sig", [bytearray(64), memoryview(bytes(64)), "x" * 64, None, 5])
def test_signature_of_the_wrong_type_is_rejected(sig: object) -> None:
    assert crypto.verify(ALICE.public, sig, "c", "tx", b"m") is False  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=64, max_size=64))
def test_random_signatures_never_verify_and_never_raise(sig: bytes) -> None:
    assert crypto.verify(ALICE.public, sig, "c", "tx", b"m") is False


def _off_curve_x() -> bytes:
    for x in range(1, 100):
        y2 = (pow(x, 3, FIELD_P) + 7) % FIELD_P
        if pow(y2, (FIELD_P - 1) // 2, FIELD_P) != 1:  # no square root: no point with this x
            return b"\x02" + x.to_bytes(32, "big")
    raise AssertionError("unreachable")


BAD_PUBLIC_KEYS = {
    "uncompressed 65 bytes": coincurve.PrivateKey(bytes(31) + b"\x0b").public_key.format(compressed=False),
    "32 bytes": ALICE.public[1:],
    "34 bytes": ALICE.public + b"\x00",
    "prefix 04 with 33 bytes": b"\x04" + ALICE.public[1:],
    "prefix 05": b"\x05" + ALICE.public[1:],
    "x not on the curve": _off_curve_x(),
    "x = p (not a field element)": b"\x02" + FIELD_P.to_bytes(32, "big"),
    "zeros": bytes(33),
    "text": ALICE.public.hex(),
    "bytearray": bytearray(ALICE.public),
    "None": None,
}


@pytest.mark.parametrize("public", list(BAD_PUBLIC_KEYS.values()), ids=list(BAD_PUBLIC_KEYS))
def test_bad_public_keys_are_refused(public: object) -> None:
    assert crypto.public_key_ok(public) is False
    sig = ALICE.sign("c", "tx", b"m")
    assert crypto.verify(public, sig, "c", "tx", b"m") is False  # type: ignore[arg-type]


def test_good_public_keys_are_33_byte_compressed_points() -> None:
    for n in (1, 2, 11, ORDER - 1):
        public = key(n).public
        assert len(public) == 33 and public[0] in (2, 3)
        assert crypto.public_key_ok(public)


@pytest.mark.parametrize("secret", [bytes(32), ORDER.to_bytes(32, "big"), (ORDER + 1).to_bytes(32, "big"),
                                    b"\xff" * 32, bytes(31) + b"\x01" + b"\x00", b"\x01" * 31],
                         ids=["zero", "n", "n+1", "max", "33 bytes", "31 bytes"])
def test_invalid_secret_keys_raise_crypto_error(secret: bytes) -> None:
    with pytest.raises(CryptoError):
        PrivateKey(secret)


def test_secret_round_trips_and_generated_keys_are_distinct() -> None:
    assert PrivateKey(ALICE.secret).public == ALICE.public
    a, b = PrivateKey.generate(), PrivateKey.generate()
    assert a.secret != b.secret and crypto.public_key_ok(a.public)


@pytest.mark.parametrize("length", [0, 1, 23, 24, 255, 256, 65535, 65536, 70000])
def test_streamed_digest_equals_hash_of_the_encoded_domain_array(length: int) -> None:
    message = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    expected = hashlib.sha256(codec.encode([crypto.SIGNATURE_DOMAIN, "chain", "purpose", message])).digest()
    assert crypto.signing_digest("chain", "purpose", message) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80), st.binary(max_size=600))
def test_streamed_digest_matches_the_encoding_for_any_domain(chain_id: str, purpose: str, message: bytes) -> None:
    expected = hashlib.sha256(codec.encode(["hcnode-sig/1", chain_id, purpose, message])).digest()
    assert crypto.signing_digest(chain_id, purpose, message) == expected


def test_signing_is_deterministic() -> None:
    assert ALICE.sign("c", "tx", b"m") == ALICE.sign("c", "tx", b"m")  # RFC 6979 nonces
