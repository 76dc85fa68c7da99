"""Transaction envelopes: every stateless check with its code, and one hash per transaction."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcnode import codec
from hcnode.apps import default_apps
from hcnode.chain import Rejected, build_tx, decode_tx
from hcnode.chain.tx import TX_PURPOSE, trusted_tx
from tests.unit.chainkit import CHAIN_ID, key

APPS = default_apps()
ALICE, BOB = key(11), key(12)
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX = 64 * 1024
MEMBER_ADD = {"org": "hosp", "name": "dr-who", "key": BOB.public, "roles": ["doctor", "nurse"]}


def decode(raw: bytes, *, chain_id: str = CHAIN_ID, max_bytes: int = MAX) -> Any:
    return decode_tx(raw, chain_id=chain_id, max_bytes=max_bytes, payload_spec=APPS.payload_spec)


def rejected(raw: bytes, code: str, **kwargs: Any) -> str:
    with pytest.raises(Rejected) as info:
        decode(raw, **kwargs)
    assert info.value.code == code, info.value
    return info.value.message


def envelope(*, version: Any = 1, chain: Any = CHAIN_ID, tx_type: Any = "registry.patient_register",
             sender: Any = None, nonce: Any = 0, payload: Any = None, signature: Any = None,
             signer: Any = ALICE, sign_chain: str | None = None, sign_purpose: str = TX_PURPOSE) -> bytes:
    """An envelope with any field set by hand; signed over the first six fields unless ``signature`` is given."""
    sender = signer.public if sender is None else sender
    payload = {} if payload is None else payload
    if signature is None:
        body = codec.encode([version, chain, tx_type, sender, nonce, payload])
        signature = signer.sign(sign_chain if sign_chain is not None else chain, sign_purpose, body)
    return codec.encode([version, chain, tx_type, sender, nonce, payload, signature])


# --- the good path ---------------------------------------------------------------------------


def test_built_transaction_decodes_to_its_fields() -> None:
    raw = build_tx(ALICE, CHAIN_ID, "registry.member_add", 7, MEMBER_ADD)
    tx = decode(raw)
    assert (tx.version, tx.chain_id, tx.type, tx.sender, tx.nonce, tx.payload) == (
        1, CHAIN_ID, "registry.member_add", ALICE.public, 7, MEMBER_ADD)
    assert tx.raw == raw
    assert tx.hash == hashlib.sha256(raw).digest()
    assert len(tx.signature) == 64


def test_build_tx_is_the_canonical_seven_field_envelope() -> None:
    raw = build_tx(ALICE, CHAIN_ID, "registry.member_add", 3, MEMBER_ADD)
    assert raw == envelope(tx_type="registry.member_add", nonce=3, payload=MEMBER_ADD)
    assert codec.decode(raw)[:6] == [1, CHAIN_ID, "registry.member_add", ALICE.public, 3, MEMBER_ADD]


def test_trusted_tx_rebuilds_the_same_transaction() -> None:
    raw = build_tx(ALICE, CHAIN_ID, "registry.member_add", 1, MEMBER_ADD)
    assert trusted_tx(raw) == decode(raw)


def test_transaction_is_immutable() -> None:
    tx = decode(build_tx(ALICE, CHAIN_ID, "registry.patient_register", 0, {}))
    with pytest.raises(AttributeError):
        tx.nonce = 1  # type: ignore[misc]


@pytest.mark.parametrize("nonce", [0, 1, 23, 24, 2**32, 2**63 - 1])
def test_nonce_range_is_accepted_up_to_2_pow_63_minus_1(nonce: int) -> None:
    assert decode(build_tx(ALICE, CHAIN_ID, "registry.patient_register", nonce, {})).nonce == nonce


# --- each stateless check, with its code ------------------------------------------------------


def test_too_large_is_checked_before_anything_else() -> None:
    raw = build_tx(ALICE, CHAIN_ID, "registry.member_add", 0, MEMBER_ADD)
    assert decode(raw, max_bytes=len(raw)).raw == raw
    message = rejected(raw, "too_large", max_bytes=len(raw) - 1)
    assert f"{len(raw)} bytes" in message and f"limit {len(raw) - 1}" in message
    assert rejected(b"\xff" * 100, "too_large", max_bytes=99)


@pytest.mark.parametrize("raw, words", [
    (b"", "empty"),
    (b"\xff\x00", "malformed"),
    (build_tx(ALICE, CHAIN_ID, "registry.patient_register", 0, {}) + b"\x00", "trailing"),
    (build_tx(ALICE, CHAIN_ID, "registry.patient_register", 0, {})[:-1], "truncated"),
    (bytes.fromhex("9f01ff"), "indefinite"),
    (bytes.fromhex("f93c00"), "floating-point"),
    (bytes.fromhex("a2616101616102"), "duplicate"),
], ids=["empty", "malformed", "trailing", "truncated", "indefinite", "float", "duplicate keys"])
def test_bad_encoding_carries_the_codec_reason(raw: bytes, words: str) -> None:
    assert words in rejected(raw, "bad_encoding")


def test_non_canonical_envelope_is_bad_encoding() -> None:
    raw = build_tx(ALICE, CHAIN_ID, "registry.patient_register", 5, {})
    # nonce 5 written as 0x1805 instead of 0x05: same value, another encoding
    i = raw.index(ALICE.public) + len(ALICE.public)
    assert raw[i] == 0x05
    stretched = raw[:i] + b"\x18\x05" + raw[i + 1:]
    assert "canonical" in rejected(stretched, "bad_encoding")


def test_float_inside_the_payload_is_bad_encoding() -> None:
    raw = envelope(payload={"x": 1}, signature=bytes(64)).replace(b"\x61\x78\x01", b"\x61\x78\xf9\x3c\x00")
    assert "floating-point" in rejected(raw, "bad_encoding")


def test_payload_nested_too_deep_is_bad_encoding() -> None:
    deep: Any = 0
    for _ in range(12):
        deep = [deep]
    assert "nesting" in rejected(envelope(payload={"x": deep}), "bad_encoding")


@pytest.mark.parametrize("value", [{}, [], 5, "tx", [1, CHAIN_ID, "t", b"", 0, {}],
                                   [1, CHAIN_ID, "t", b"", 0, {}, b"", b""]],
                         ids=["map", "empty list", "int", "text", "6 fields", "8 fields"])
def test_envelope_must_be_an_array_of_seven(value: Any) -> None:
    assert "array of 7" in rejected(codec.encode(value), "bad_envelope")


@pytest.mark.parametrize("fields, words", [
    ({"tx_type": 5}, "type must be text"),
    ({"tx_type": b"registry.patient_register"}, "type must be text"),
    ({"tx_type": "x" * 65}, "at most 64"),
    ({"nonce": -1}, "nonce"),
    ({"nonce": 2**63}, "nonce"),
    ({"nonce": "0"}, "nonce"),
    ({"nonce": True}, "nonce"),
    ({"sender": ALICE.public[1:]}, "sender"),
    ({"sender": b"\x04" + ALICE.public[1:]}, "sender"),
    ({"sender": bytes(33)}, "sender"),
    ({"sender": ALICE.public.hex()}, "sender"),
    ({"signature": bytes(63)}, "signature must be 64 bytes"),
    ({"signature": bytes(65)}, "signature must be 64 bytes"),
    ({"signature": "00" * 64}, "signature must be 64 bytes"),
], ids=["type int", "type bytes", "type long", "nonce -1", "nonce 2^63", "nonce text", "nonce bool",
        "sender 32", "sender 04", "sender zeros", "sender text", "sig 63", "sig 65", "sig text"])
def test_malformed_envelope_fields_are_bad_envelope(fields: dict[str, Any], words: str) -> None:
    if "signature" not in fields:
        fields = {**fields, "signature": bytes(64)}
    assert words in rejected(envelope(**fields), "bad_envelope")


@pytest.mark.parametrize("version", [0, 2, -1, True, "1", 1 << 40])
def test_unsupported_version_is_bad_version(version: Any) -> None:
    message = rejected(envelope(version=version), "bad_version")
    assert repr(version) in message


@pytest.mark.parametrize("chain", ["other-chain", "", CHAIN_ID.upper(), CHAIN_ID.encode(), 7])
def test_transaction_for_another_chain_is_wrong_chain(chain: Any) -> None:
    message = rejected(envelope(chain=chain, signature=bytes(64)), "wrong_chain")
    assert repr(chain) in message and repr(CHAIN_ID) in message


def test_wrong_chain_is_reported_even_when_the_signature_is_fine_for_that_chain() -> None:
    raw = build_tx(ALICE, "other-chain", "registry.patient_register", 0, {})
    assert decode(raw, chain_id="other-chain").chain_id == "other-chain"
    rejected(raw, "wrong_chain")


@pytest.mark.parametrize("tx_type", ["registry.nope", "", "nosuchapp.ship", "registry.patient_register "])
def test_unknown_transaction_type_is_rejected(tx_type: str) -> None:
    assert repr(tx_type) in rejected(envelope(tx_type=tx_type), "unknown_type")


@pytest.mark.parametrize("tx_type, payload, message", [
    ("registry.patient_register", {"name": "Jane Doe"}, "payload: unknown field 'name'"),
    ("registry.patient_register", [], "payload: expected a map, got list"),
    ("registry.member_add", {**MEMBER_ADD, "roles": ["doctor", 5]}, "payload.roles[1]: expected text, got integer"),
    ("registry.member_add", {**MEMBER_ADD, "roles": ["doctor", "doctor"]}, "payload.roles: items must be unique"),
    ("registry.member_add", {**MEMBER_ADD, "roles": []}, "payload.roles: 0 items, allowed 1..16"),
    ("registry.member_add", {**MEMBER_ADD, "key": b"\x02" * 32}, "payload.key: expected 33 bytes, got 32"),
    ("registry.member_add", {**MEMBER_ADD, "name": "Dr Who"}, "payload.name: 'Dr Who' does not match"),
    ("registry.member_add", {k: v for k, v in MEMBER_ADD.items() if k != "org"}, "payload: missing field 'org'"),
    ("registry.propose", {"action": {"kind": "org_nuke"}}, "payload.action.kind: expected one of"),
    ("registry.propose", {"action": {"kind": "org_add", "org": "x", "name": "X", "org_kind": "bakery",
                                     "admins": [ALICE.public]}},
     "payload.action.org_kind: 'bakery' is not one of"),
    ("registry.propose", {"action": {"kind": "org_add", "org": "x", "name": "X", "org_kind": "lab",
                                     "admins": [b"\x02"]}},
     "payload.action.admins[0]: expected 33 bytes, got 1"),
    ("registry.propose", {"action": {"kind": "validator_add", "key": ALICE.public}, "expires_in": 0},
     "payload.expires_in: 0 outside 1..1000000"),
])
def test_bad_payload_names_the_field_path(tx_type: str, payload: Any, message: str) -> None:
    assert message in rejected(envelope(tx_type=tx_type, payload=payload), "bad_payload")


def test_payload_is_checked_before_the_signature() -> None:
    raw = envelope(tx_type="registry.patient_register", payload={"name": "x"}, signature=bytes(64))
    rejected(raw, "bad_payload")


def test_payload_changed_after_signing_is_bad_signature() -> None:
    good = codec.decode(build_tx(ALICE, CHAIN_ID, "registry.member_add", 0, MEMBER_ADD))
    good[5] = {**MEMBER_ADD, "roles": ["admin"]}
    assert "does not verify" in rejected(codec.encode(good), "bad_signature")


@pytest.mark.parametrize("field, value", [(2, "registry.member_roles"), (4, 1), (3, BOB.public)],
                         ids=["type", "nonce", "sender"])
def test_any_signed_field_changed_is_bad_signature(field: int, value: Any) -> None:
    tx = codec.decode(build_tx(ALICE, CHAIN_ID, "registry.member_add", 0, MEMBER_ADD))
    tx[field] = value
    if field == 2:
        tx[5] = {"member": "hosp/dr-who", "roles": ["doctor"]}
    rejected(codec.encode(tx), "bad_signature")


def test_signature_for_one_chain_does_not_verify_on_another() -> None:
    raw = envelope(tx_type="registry.member_add", payload=MEMBER_ADD, sign_chain="other-chain")
    rejected(raw, "bad_signature")


def test_signature_for_another_purpose_is_bad_signature() -> None:
    for purpose in ("block", "key-rotate"):
        rejected(envelope(tx_type="registry.member_add", payload=MEMBER_ADD, sign_purpose=purpose), "bad_signature")


def test_signature_by_a_key_other_than_the_sender_is_bad_signature() -> None:
    rejected(envelope(tx_type="registry.member_add", payload=MEMBER_ADD, sender=BOB.public), "bad_signature")


def test_high_s_twin_of_a_valid_transaction_is_bad_signature() -> None:
    tx = codec.decode(build_tx(ALICE, CHAIN_ID, "registry.member_add", 0, MEMBER_ADD))
    sig = tx[6]
    tx[6] = sig[:32] + (ORDER - int.from_bytes(sig[32:], "big")).to_bytes(32, "big")
    rejected(codec.encode(tx), "bad_signature")


# --- a transaction has one hash -----------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_transaction_has_exactly_one_accepted_encoding(data: st.DataObject) -> None:
    raw = build_tx(ALICE, CHAIN_ID, "registry.member_add", 9, MEMBER_ADD)
    pos = data.draw(st.integers(0, len(raw) - 1))
    op = data.draw(st.sampled_from(["xor", "insert", "delete"]))
    mutated = bytearray(raw)
    if op == "xor":
        mutated[pos] ^= data.draw(st.integers(1, 255))
    elif op == "insert":
        mutated.insert(pos, data.draw(st.integers(0, 255)))
    else:
        del mutated[pos]
    with pytest.raises(Rejected):
        decode(bytes(mutated))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_rejected_with_a_code_never_another_exception(raw: bytes) -> None:
    with pytest.raises(Rejected) as info:
        decode(raw)
    assert info.value.code in {"too_large", "bad_encoding", "bad_envelope", "bad_version", "wrong_chain",
                               "unknown_type", "bad_payload", "bad_signature"}


def test_each_signing_gives_the_same_bytes_and_hash() -> None:
    a = build_tx(ALICE, CHAIN_ID, "registry.member_add", 0, MEMBER_ADD)
    b = build_tx(ALICE, CHAIN_ID, "registry.member_add", 0, dict(reversed(list(MEMBER_ADD.items()))))
    assert a == b and decode(a).hash == decode(b).hash
