"""Write the hcnode protocol test vectors (protocols/vectors/*.json) from fixed inputs.

Run from the repository root:

    python protocols/vectors/generate.py           # rewrite the files
    python protocols/vectors/generate.py --check   # exit 1 if a file differs

Everything is derived from fixed inputs: key k<n> has the 32-byte big-endian
secret n, and libsecp256k1 signs with RFC 6979 deterministic nonces, so running
this again writes byte-identical files.

Conventions in the files: byte strings are lower-case hex; CBOR items are given
as "hex" (the exact canonical encoding) and "diag" (RFC 8949 section 8
diagnostic notation, keys in encoding order); "cddl" names the rule of
protocols/chain.cddl that the item matches.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hcnode import codec, crypto  # noqa: E402
from hcnode.apps import default_apps  # noqa: E402
from hcnode.apps.registry import ROTATE_PURPOSE, patient_id, rotation_proof  # noqa: E402
from hcnode.chain import merkle  # noqa: E402
from hcnode.chain.app import BlockInfo  # noqa: E402
from hcnode.chain.block import BLOCK_PURPOSE, BlockHeader, sign_block  # noqa: E402
from hcnode.chain.errors import Rejected  # noqa: E402
from hcnode.chain.execute import execute  # noqa: E402
from hcnode.chain.genesis import Genesis, GenesisOrg, genesis_block  # noqa: E402
from hcnode.chain.state import ZERO_ROOT, MemoryState  # noqa: E402
from hcnode.chain.tx import TX_PURPOSE, build_tx, decode_tx  # noqa: E402

HERE = Path(__file__).resolve().parent
CHAIN_ID = "hcnode-vectors"
MAX_TX_BYTES = 65536
GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# --- helpers ---------------------------------------------------------------------------------


def key(n: int) -> crypto.PrivateKey:
    return crypto.PrivateKey(n.to_bytes(32, "big"))


def h(data: bytes) -> str:
    return data.hex()


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def diag(value: Any) -> str:
    """RFC 8949 diagnostic notation; map keys in canonical (encoded-bytes) order."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if type(value) is bytes:
        return f"h'{value.hex()}'"
    if type(value) is str:
        return json.dumps(value, ensure_ascii=False)
    if type(value) is list:
        return "[" + ", ".join(diag(v) for v in value) + "]"
    if type(value) is dict:
        items = sorted(value.items(), key=lambda kv: codec.encode(kv[0]))
        return "{" + ", ".join(f"{diag(k)}: {diag(v)}" for k, v in items) + "}"
    raise TypeError(f"no diagnostic notation for {type(value).__name__}")


def item(value: Any, rule: str | None = None) -> dict[str, Any]:
    """A CBOR item as hex + diagnostic notation (+ the CDDL rule it matches)."""
    out: dict[str, Any] = {"hex": h(codec.encode(value)), "diag": diag(value)}
    if rule is not None:
        out["cddl"] = rule
    return out


def header_json(header: BlockHeader) -> dict[str, Any]:
    return {
        "chain_id": header.chain_id,
        "height": header.height,
        "prev_hash": h(header.prev_hash),
        "time_ms": header.time_ms,
        "tx_root": h(header.tx_root),
        "receipt_root": h(header.receipt_root),
        "state_root": h(header.state_root),
        "proposer": h(header.proposer),
    }


def writes_json(writes: dict[bytes, bytes | None]) -> list[dict[str, Any]]:
    out = []
    for k in sorted(writes):
        value = writes[k]
        entry: dict[str, Any] = {"key": h(k), "key_text": _printable_key(k), "value": None if value is None else h(value)}
        if value is not None and k.startswith(b"nonce/"):
            entry["next_nonce"] = int.from_bytes(value, "big")  # raw 8-byte big-endian, not CBOR
        elif value is not None:
            entry["value_diag"] = diag(codec.decode(value))
            entry["cddl"] = _state_rule(k)
        out.append(entry)
    return out


STATE_RULES = (
    (b"registry/admins", "registry-admins-value"),
    (b"registry/key/", "registry-key-value"),
    (b"registry/org/", "registry-org-value"),
    (b"registry/member/", "registry-member-value"),
    (b"registry/patient/", "registry-patient-value"),
    (b"registry/proposal/", "registry-proposal-value"),
    (b"registry/validator/", "registry-validator-value"),
)


def _state_rule(k: bytes) -> str:
    for prefix, rule in STATE_RULES:
        if k.startswith(prefix):
            return rule
    raise AssertionError(f"no CDDL rule for state key {k!r}")


def _printable_key(k: bytes) -> str:
    """State keys are ASCII prefixes plus raw 33-byte public keys; show the raw part as <hex>."""
    for prefix in (b"registry/key/", b"registry/validator/", b"nonce/"):
        if k.startswith(prefix) and len(k) == len(prefix) + 33:
            return prefix.decode() + "<" + k[len(prefix):].hex() + ">"
    return k.decode("ascii", "backslashreplace")


def state_input(previous: bytes, writes: dict[bytes, bytes | None]) -> list[Any]:
    return ["hcnode-state/1", previous, [[k, writes[k]] for k in sorted(writes)]]


def write_json(name: str, data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- keys ------------------------------------------------------------------------------------

KEY_COUNT = 8


def keys_file() -> dict[str, Any]:
    return {
        "description": "Fixed secp256k1 keys: k<n> has the 32-byte big-endian secret n. Public keys are "
                       "33-byte compressed points. Every other vector file refers to keys by n.",
        "keys": [{"n": n, "secret": h(key(n).secret), "public": h(key(n).public)} for n in range(1, KEY_COUNT + 1)],
    }


# --- codec -------------------------------------------------------------------------------------

VALID_VALUES: list[tuple[str, Any]] = [
    ("uint 0", 0),
    ("uint 23 (largest one-byte)", 23),
    ("uint 24 (smallest 0x18)", 24),
    ("uint 255", 255),
    ("uint 256", 256),
    ("uint 65535", 65535),
    ("uint 65536", 65536),
    ("uint 2^32-1", 2**32 - 1),
    ("uint 2^32", 2**32),
    ("uint 2^63-1 (largest nonce)", 2**63 - 1),
    ("uint 2^64-1 (largest allowed)", 2**64 - 1),
    ("nint -1", -1),
    ("nint -24", -24),
    ("nint -25", -25),
    ("nint -2^64 (smallest allowed)", -(2**64)),
    ("false", False),
    ("true", True),
    ("null", None),
    ("empty bytes", b""),
    ("bytes length 23", bytes(range(23))),
    ("bytes length 24", bytes(range(24))),
    ("bytes length 256", bytes(256)),
    ("empty text", ""),
    ("text", "hcnode"),
    ("non-ASCII text (UTF-8)", "Hôpital"),
    ("empty array", []),
    ("empty map", {}),
    ("array of mixed items", [1, -1, b"\x01", "a", None, True, [], {}]),
    ("map keys sorted by encoded bytes (shorter key first)", {"bb": 2, "a": 1, "c": 3, "aa": 4}),
    ("map keys: a 2-byte UTF-8 key sorts with 2-byte keys", {"z": 1, "é": 2, "ab": 3}),
    ("map key of 24 bytes follows map key of 23 bytes", {"x" * 24: 2, "y" * 23: 1}),
    ("nested maps and arrays", {"outer": [{"b": 1, "a": [2, 3]}], "n": None}),
    ("16 nested arrays (deepest allowed)", [[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]),
]


def codec_file() -> dict[str, Any]:
    valid = []
    for name, value in VALID_VALUES:
        encoded = codec.encode(value)
        assert codec.decode(encoded) == value
        valid.append({"name": name, "hex": h(encoded), "diag": diag(value), "sha256": h(sha(encoded))})
    return {
        "description": "Values and their one canonical encoding (RFC 8949 core deterministic, text map keys "
                       "only, no floats, no tags, integers in -2^64..2^64-1). Decoding hex must give diag, "
                       "and encoding it must give hex again. sha256 is SHA-256 of the encoding, the one way "
                       "hcnode hashes a structured value.",
        "valid": valid,
    }


# (name, reason, hex, description)
REJECTIONS: list[tuple[str, str, str, str]] = [
    ("half float", "float", "f93c00", "1.0 as a half-precision float"),
    ("single float", "float", "fa3f800000", "1.0 as a single-precision float"),
    ("double float", "float", "fb3ff0000000000000", "1.0 as a double-precision float"),
    ("NaN", "float", "f97e00", "half-precision NaN"),
    ("float inside a map", "float", "a16161f93c00", "{\"a\": 1.0}"),
    ("tag 0", "tag", "c074323031332d30332d32315432303a30343a30305a", "date/time string tag"),
    ("tag 1", "tag", "c11a514b67b0", "epoch date/time tag"),
    ("tag 2 (bignum 2^64)", "tag", "c249010000000000000000", "bignum: integers beyond 64 bits are not allowed"),
    ("tag 2 (bignum 1)", "tag", "c24101", "bignum holding a small value: still a tag"),
    ("tag 3 (negative bignum)", "tag", "c34101", "negative bignum"),
    ("tag 24", "tag", "d818420100", "embedded CBOR tag"),
    ("tag 42 inside an array", "tag", "81d82a4100", "an unknown tag nested in an array"),
    ("tag 258", "tag", "d9010283010203", "set tag"),
    ("tag 55799", "tag", "d9d9f780", "self-described CBOR tag"),
    ("tags 28/29 (shared reference)", "tag", "d81c81d81d00", "value sharing, here a list that contains itself"),
    ("duplicate map key", "duplicate_key", "a2616101616102", "{\"a\": 1, \"a\": 2}"),
    ("duplicate map key, same value", "duplicate_key", "a2616101616101", "{\"a\": 1, \"a\": 1}"),
    ("non-shortest int (1 byte)", "non_canonical_int", "1817", "23 encoded with a one-byte argument"),
    ("non-shortest int (2 bytes)", "non_canonical_int", "190017", "23 encoded with a two-byte argument"),
    ("non-shortest int (4 bytes)", "non_canonical_int", "1a000000ff", "255 encoded with a four-byte argument"),
    ("non-shortest int (8 bytes)", "non_canonical_int", "1b00000000ffffffff", "2^32-1 with an eight-byte argument"),
    ("non-shortest negative int", "non_canonical_int", "3800", "-1 encoded with a one-byte argument"),
    ("non-shortest byte string length", "non_canonical_length", "5801aa", "h'aa' with a one-byte length"),
    ("non-shortest text length", "non_canonical_length", "780161", "\"a\" with a one-byte length"),
    ("non-shortest array length", "non_canonical_length", "980101", "[1] with a one-byte length"),
    ("non-shortest map length", "non_canonical_length", "b801616101", "{\"a\": 1} with a one-byte length"),
    ("unsorted keys", "unsorted_keys", "a2616201616101", "{\"b\": 1, \"a\": 1}"),
    ("unsorted keys (longer key first)", "unsorted_keys", "a262616101616202",
     "{\"aa\": 1, \"b\": 2}: the shorter encoding sorts first"),
    ("unsorted keys (nested map)", "unsorted_keys", "81a2616201616101", "[{\"b\": 1, \"a\": 1}]"),
    ("integer map key", "non_text_key", "a10101", "{1: 1}"),
    ("byte string map key", "non_text_key", "a1410001", "{h'00': 1}"),
    ("array map key", "non_text_key", "a18001", "{[]: 1}"),
    ("indefinite byte string", "indefinite_length", "5f4101ff", "(_ h'01')"),
    ("indefinite text string", "indefinite_length", "7f6161ff", "(_ \"a\")"),
    ("indefinite array", "indefinite_length", "9f01ff", "[_ 1]"),
    ("indefinite map", "indefinite_length", "bf616101ff", "{_ \"a\": 1}"),
    ("trailing byte", "trailing_bytes", "0100", "1 followed by 0"),
    ("two items", "trailing_bytes", "8080", "a CBOR sequence of two arrays"),
    ("truncated array", "truncated", "8201", "an array of 2 with one item"),
    ("truncated integer", "truncated", "1a0000", "a 4-byte integer with 2 bytes"),
    ("truncated byte string", "truncated", "4401", "a 4-byte string with 1 byte"),
    ("truncated map", "truncated", "a16161", "a map with a key and no value"),
    ("empty input", "truncated", "", "no bytes at all"),
    ("17 nested arrays", "too_deep", "81" * 17 + "00", "deeper than the 16 levels allowed"),
    ("undefined", "simple_value", "f7", "undefined is not allowed"),
    ("simple value 0", "simple_value", "e0", "simple(0)"),
    ("simple value 255", "simple_value", "f8ff", "simple(255)"),
    ("two-byte simple value below 32", "malformed", "f818", "not well-formed (RFC 8949 section 3.3)"),
    ("invalid UTF-8", "malformed", "61ff", "text string holding byte 0xff"),
    ("lone break", "malformed", "ff", "a break code outside an indefinite item"),
    ("reserved additional information", "malformed", "1c", "additional information 28 is reserved"),
]

# Rejections too large to spell out: hex_prefix followed by fill_count copies of fill.
LARGE_REJECTIONS: list[tuple[str, str, str, str, int, str]] = [
    ("over 1 MiB", "too_large", "5a00100000", "00", 1 << 20,
     "a 1048576-byte byte string: the encoding is 1048581 bytes, over the 1 MiB limit"),
    ("over 100000 items", "too_many_items", "9a000186a0", "00", 100_000,
     "an array of 100000 zeros: 100001 items with the array itself, over the 100000-item limit"),
]


def decode_rejections_file() -> dict[str, Any]:
    vectors = []
    for name, reason, hex_data, description in REJECTIONS:
        _must_reject(bytes.fromhex(hex_data))
        vectors.append({"name": name, "reason": reason, "hex": hex_data, "description": description})
    large = []
    for name, reason, prefix, fill, count, description in LARGE_REJECTIONS:
        _must_reject(bytes.fromhex(prefix) + bytes.fromhex(fill) * count)
        large.append({"name": name, "reason": reason, "hex_prefix": prefix, "fill": fill, "fill_count": count,
                      "description": description})
    return {
        "description": "Bytes a decoder must reject (hcnode.codec.decode raises CodecError), with the reason. "
                       "Default limits: 1 MiB, nesting depth 16, 100000 items. For 'large' vectors the input is "
                       "hex_prefix followed by fill_count copies of fill.",
        "vectors": vectors,
        "large": large,
    }


def _must_reject(data: bytes) -> None:
    try:
        codec.decode(data)
    except codec.CodecError:
        return
    raise AssertionError(f"decode accepted {data[:32].hex()}")


# --- signatures --------------------------------------------------------------------------------


def _domain_vector(name: str, n: int, chain_id: str, purpose: str, message: bytes) -> dict[str, Any]:
    signer = key(n)
    domain = ["hcnode-sig/1", chain_id, purpose, message]
    encoded = codec.encode(domain)
    digest = sha(encoded)
    assert digest == crypto.signing_digest(chain_id, purpose, message)
    signature = signer.sign(chain_id, purpose, message)
    assert crypto.verify(signer.public, signature, chain_id, purpose, message)
    return {
        "name": name,
        "signer": n,
        "public": h(signer.public),
        "chain_id": chain_id,
        "purpose": purpose,
        "message": h(message),
        "domain": {"hex": h(encoded), "cddl": "sig-domain"},
        "digest": h(digest),
        "signature": h(signature),
    }


def signatures_file() -> dict[str, Any]:
    vectors = [
        _domain_vector("empty message", 1, CHAIN_ID, "tx", b""),
        _domain_vector("short message", 1, CHAIN_ID, "tx", b"hello"),
        _domain_vector("23-byte message (one-byte bstr header)", 2, CHAIN_ID, "block", bytes(range(23))),
        _domain_vector("24-byte message (0x58 bstr header)", 2, CHAIN_ID, "block", bytes(range(24))),
        _domain_vector("300-byte message (0x59 bstr header)", 3, CHAIN_ID, "key-rotate", bytes(300)),
        _domain_vector("another chain id", 1, "another-chain", "tx", b"hello"),
    ]
    base = vectors[1]
    signature = bytes.fromhex(base["signature"])
    r, s = signature[:32], int.from_bytes(signature[32:], "big")
    high_s = r + (SECP256K1_N - s).to_bytes(32, "big")
    public = key(1).public
    invalid = []
    for why, pub, sig, chain_id, purpose, message in [
        ("same signature, other purpose", public, signature, CHAIN_ID, "block", b"hello"),
        ("same signature, other chain", public, signature, "another-chain", "tx", b"hello"),
        ("same signature, other message", public, signature, CHAIN_ID, "tx", b"hellp"),
        ("same signature, other key", key(2).public, signature, CHAIN_ID, "tx", b"hello"),
        ("high-s form of a valid signature (s replaced by n - s)", public, high_s, CHAIN_ID, "tx", b"hello"),
        ("63-byte signature", public, signature[:63], CHAIN_ID, "tx", b"hello"),
        ("uncompressed-prefix public key", b"\x04" + public[1:], signature, CHAIN_ID, "tx", b"hello"),
        ("r = 0", public, bytes(32) + signature[32:], CHAIN_ID, "tx", b"hello"),
    ]:
        assert not crypto.verify(pub, sig, chain_id, purpose, message), why
        invalid.append({"why": why, "public": h(pub), "signature": h(sig), "chain_id": chain_id,
                        "purpose": purpose, "message": h(message)})

    old, new = key(5), key(7)
    message = codec.encode([old.public, new.public])
    proof = rotation_proof(new, CHAIN_ID, old.public)
    rotation = {
        "description": "registry.key_rotate proof: the NEW key signs [old_key, new_key] under purpose "
                       "'key-rotate'; the transaction itself is signed by the old key.",
        "chain_id": CHAIN_ID,
        "old_key": 5,
        "new_key": 7,
        "old_public": h(old.public),
        "new_public": h(new.public),
        "message": {"hex": h(message), "diag": diag([old.public, new.public]), "cddl": "key-rotation-message"},
        "domain": {"hex": h(codec.encode(["hcnode-sig/1", CHAIN_ID, ROTATE_PURPOSE, message])),
                   "cddl": "key-rotate-sig-domain"},
        "digest": h(crypto.signing_digest(CHAIN_ID, ROTATE_PURPOSE, message)),
        "proof": h(proof),
    }
    return {
        "description": "Signature domain: digest = SHA-256(canonical CBOR of [\"hcnode-sig/1\", chain_id, purpose, "
                       "message]) with message a byte string; signature = 64-byte compact ECDSA (r || s, low s) "
                       "over that digest by the signer's key, RFC 6979 deterministic (libsecp256k1), so fixed. "
                       "'invalid' lists signatures that must NOT verify.",
        "vectors": vectors,
        "invalid": invalid,
        "rotation": rotation,
    }


# --- transactions ------------------------------------------------------------------------------


def _tx_vector(name: str, n: int, tx_type: str, nonce: int, payload: dict[str, Any]) -> dict[str, Any]:
    signer = key(n)
    signed = codec.encode([1, CHAIN_ID, tx_type, signer.public, nonce, payload])
    raw = build_tx(signer, CHAIN_ID, tx_type, nonce, payload)
    tx = decode_tx(raw, chain_id=CHAIN_ID, max_bytes=MAX_TX_BYTES, payload_spec=default_apps().payload_spec)
    assert tx.payload == payload
    return {
        "name": name,
        "type": tx_type,
        "signer": n,
        "sender": h(signer.public),
        "nonce": nonce,
        "payload": item(payload, f"{tx_type}-payload"),
        "signed": {"hex": h(signed), "cddl": "tx-signed"},
        "digest": h(crypto.signing_digest(CHAIN_ID, TX_PURPOSE, signed)),
        "signature": h(tx.signature),
        "tx": {"hex": h(raw), "cddl": "tx"},
        "hash": h(sha(raw)),
    }


def _propose_org_add_payload() -> dict[str, Any]:
    return {"action": {"kind": "org_add", "org": "hopital-nord", "name": "Hôpital Nord", "org_kind": "hospital",
                       "admins": [key(8).public]}, "expires_in": 100}


def _app_vectors() -> list[dict[str, Any]]:
    """One vector per drugs, billing and trials transaction type (signers 11, 9 and 10)."""
    patient = patient_id(key(6).public)
    claim = "0123456789abcdef0123456789abcdef"
    outcome = {"measure": "HbA1c change from baseline", "time_frame": "26 weeks"}
    rows = [
        ("billing.schedule_publish", {"version": 1, "effective_from": "2025-01-01", "currency": "USD",
                                      "entries": [{"code": "99213", "max_amount": 10_000}],
                                      "bundling_rules": [{"name": "panel", "codes": ["80053", "36415"]}]}),
        ("billing.schedule_entries", {"version": 1, "entries": [{"code": "J1100", "max_amount": 150}]}),
        ("billing.encounter_anchor", {"patient": patient, "encounter": sha(b"encounter"), "date": "2025-12-15"}),
        ("billing.claim_submit", {"patient": patient, "payer": "acme-health", "encounter": sha(b"encounter"),
                                  "currency": "USD", "diagnoses": ["E11.9", "I10"],
                                  "items": [{"sequence": 1, "code": "99213", "quantity": 1, "unit_price": 9_500,
                                             "date_of_service": "2025-12-15"}]}),
        ("billing.claim_adjudicate", {"claim": claim, "decision": "partial", "allowed_amount": 5_000,
                                      "reason_codes": ["CO-45"]}),
        ("billing.claim_pay", {"claim": claim, "amount": 5_000, "reference": "EFT-1"}),
        ("billing.claim_dispute", {"claim": claim, "reason": "billed twice"}),
        ("billing.dispute_resolve", {"claim": claim, "outcome": "adjusted", "note": "half", "allowed_amount": 0}),
        ("billing.patient_deregister", {"patient": patient, "date": "2025-12-01", "reason": "membership ended"}),
        ("trials.register", {"registry_id": "NCT00000001", "title": "Drug X", "protocol_hash": sha(b"protocol"),
                             "primary_outcomes": [outcome], "secondary_outcomes": [], "planned_enrolment": 300,
                             "primary_completion": "2026-06", "sites": ["st-mary"]}),
        ("trials.amend", {"trial": "NCT00000001", "reason": "feasibility",
                          "changes": {"primary_outcomes": [{"measure": "Fasting glucose", "time_frame": "12 weeks"}]}}),
        ("trials.certify_delay", {"trial": "NCT00000001", "reason": "new use pending", "requested_due": "2028-01-31"}),
        ("trials.enrol", {"trial": "NCT00000001", "participant": patient, "consent_version": sha(b"consent v1")}),
        ("trials.withdraw", {"trial": "NCT00000001"}),
        ("trials.commit_dataset", {"trial": "NCT00000001", "dataset_hash": sha(b"dataset"), "label": "baseline"}),
        ("trials.post_results", {"trial": "NCT00000001", "results_hash": sha(b"results"), "outcomes": [
            {**outcome, "summary": "-0.8 %"},
            {"measure": "Hypoglycaemia", "time_frame": "26 weeks", "summary": "3 vs 5",
             "added_reason": "requested by the DSMB", "added_date": "2025-11-02"}]}),
    ]
    gtin, case = "09506000134352", "106141410000000019"
    unit = {"gtin": gtin, "serial": "P0001"}
    epcis_event = ('{"type":"ObjectEvent","eventTime":"2026-01-05T10:00:00.000+01:00","eventTimeZoneOffset":"+01:00",'
                   '"epcList":["https://id.gs1.org/01/09506000134352/21/P0001"],"action":"OBSERVE",'
                   '"bizStep":"shipping","disposition":"in_transit",'
                   '"sourceList":[{"type":"owning_party","source":"urn:hcnode:org:acme-pharma"}],'
                   '"destinationList":[{"type":"owning_party","destination":"urn:hcnode:org:st-mary"}]}')
    rows += [
        ("drugs.product_register", {"gtin": gtin, "name": "Amoxicillin", "form": "capsule", "strength": "500 mg"}),
        ("drugs.commission", {"gtin": gtin, "lot": "A1", "expiry": "2030-06-30", "serials": ["P0001", "P0002"]}),
        ("drugs.aggregate", {"container": case, "units": [unit]}),
        ("drugs.disaggregate", {"container": case}),
        ("drugs.ship", {"to": "st-mary", "containers": [case]}),
        ("drugs.receive", {"containers": [case]}),
        ("drugs.return", {"units": [{**unit, "lot": "A1", "expiry": "2030-06-30"}], "saleable": True}),
        ("drugs.dispense", {**unit, "patient": patient, "prescription": sha(b"rx-0042")}),
        ("drugs.decommission", {"units": [unit], "reason": "destroyed"}),
        ("drugs.recall", {"gtin": gtin, "lot": "A1", "reason": "sterility"}),
        ("drugs.suspect", {"units": [unit], "reason": "damaged seal"}),
        ("drugs.clear", {"units": [unit], "reason": "seal verified"}),
        ("drugs.epcis_import", {"events": [{"event": epcis_event}]}),
    ]
    nonces: dict[int, int] = {}
    out = []
    for tx_type, payload in rows:
        signer = {"billing": 9, "trials": 10, "drugs": 11}[tx_type.split(".")[0]]
        nonces[signer] = nonces.get(signer, -1) + 1
        out.append(_tx_vector(tx_type.split(".")[1], signer, tx_type, nonces[signer], payload))
    return out


def transactions_file() -> dict[str, Any]:
    org_add = _tx_vector("propose org_add", 1, "registry.propose", 0, _propose_org_add_payload())
    proposal = org_add["hash"][:32]
    valid = [
        org_add,
        _tx_vector("propose org_suspend", 1, "registry.propose", 1,
                   {"action": {"kind": "org_suspend", "org": "st-mary", "reason": "licence under review"}}),
        _tx_vector("propose org_reinstate", 1, "registry.propose", 2,
                   {"action": {"kind": "org_reinstate", "org": "st-mary"}}),
        _tx_vector("propose validator_add", 2, "registry.propose", 0,
                   {"action": {"kind": "validator_add", "key": key(8).public}}),
        _tx_vector("propose validator_suspend", 2, "registry.propose", 1,
                   {"action": {"kind": "validator_suspend", "key": key(3).public, "reason": "decommissioned"},
                    "expires_in": 1_000_000}),
        _tx_vector("approve (the org_add proposal above)", 2, "registry.approve", 2, {"proposal": proposal}),
        _tx_vector("member_add", 4, "registry.member_add", 0,
                   {"org": "st-mary", "name": "dr-ada", "key": key(5).public, "roles": ["clinician", "prescriber"]}),
        _tx_vector("member_roles", 4, "registry.member_roles", 1,
                   {"member": "st-mary/dr-ada", "roles": ["clinician"]}),
        _tx_vector("member_revoke", 4, "registry.member_revoke", 2,
                   {"member": "st-mary/dr-ada", "reason": "left the hospital"}),
        _tx_vector("key_rotate (proof by k7 over [k5, k7])", 5, "registry.key_rotate", 0,
                   {"new_key": key(7).public, "proof": rotation_proof(key(7), CHAIN_ID, key(5).public)}),
        _tx_vector("key_revoke", 4, "registry.key_revoke", 3, {"member": "st-mary/dr-ada", "reason": "lost"}),
        _tx_vector("key_revoke with a replacement key", 4, "registry.key_revoke", 4,
                   {"member": "st-mary/dr-ada", "reason": "stolen", "new_key": key(8).public}),
        *_app_vectors(),
        _tx_vector("patient_register", 6, "registry.patient_register", 0, {}),
    ]
    return {
        "description": "Transactions: envelope = canonical CBOR [version 1, chain_id, type, sender, nonce, payload, "
                       "signature]; signed = the first six fields as a 6-array; digest = signature-domain digest "
                       "of signed under purpose 'tx'; hash = SHA-256 of the whole envelope. 'rejected' lists "
                       "envelopes that the stateless checks refuse, with the code (checked with this chain_id "
                       "and max_bytes). cddl_valid says whether the bytes match the CDDL rule 'tx' (the CDDL "
                       "cannot express every check).",
        "chain_id": CHAIN_ID,
        "max_bytes": MAX_TX_BYTES,
        "valid": valid,
        "rejected": _tx_rejections(valid),
    }


def _tx_rejections(valid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    k4, k5 = key(4), key(5)
    member_add = {"org": "st-mary", "name": "dr-ada", "key": k5.public, "roles": ["clinician"]}

    def envelope(version: Any = 1, chain_id: Any = CHAIN_ID, tx_type: Any = "registry.member_add",
                 sender: Any = k4.public, nonce: Any = 0, payload: Any = None, signature: Any = None,
                 signer: crypto.PrivateKey | None = k4, sign_chain: str | None = None,
                 purpose: str = TX_PURPOSE) -> bytes:
        if payload is None:
            payload = member_add
        body = codec.encode([version, chain_id, tx_type, sender, nonce, payload])
        if signature is None:
            assert signer is not None
            signature = signer.sign(sign_chain or (chain_id if type(chain_id) is str else CHAIN_ID), purpose, body)
        return codec.encode([version, chain_id, tx_type, sender, nonce, payload, signature])

    good = bytes.fromhex(valid[6]["tx"]["hex"])  # member_add by k4
    good_sig = good[-64:]
    high_s = good_sig[:32] + (SECP256K1_N - int.from_bytes(good_sig[32:], "big")).to_bytes(32, "big")
    patient = bytes.fromhex(valid[-1]["tx"]["hex"])
    cases: list[tuple[str, str, bytes, int, bool]] = [
        # (name, code, bytes, max_bytes, cddl_valid)
        ("longer than max_bytes", "too_large", patient, 128, True),
        ("non-shortest array header (0x98 0x07)", "bad_encoding", b"\x98\x07" + good[1:], MAX_TX_BYTES, True),
        ("trailing byte", "bad_encoding", good + b"\x00", MAX_TX_BYTES, False),
        ("float nonce (0.0 as a half float)", "bad_encoding",
         b"\x87" + b"".join(codec.encode(v) for v in (1, CHAIN_ID, "registry.member_add", k4.public))
         + b"\xf9\x00\x00" + codec.encode(member_add) + codec.encode(good_sig), MAX_TX_BYTES, False),
        ("not an array", "bad_envelope", codec.encode({"version": 1}), MAX_TX_BYTES, False),
        ("6 fields (the signed part alone)", "bad_envelope",
         codec.encode([1, CHAIN_ID, "registry.member_add", k4.public, 0, member_add]), MAX_TX_BYTES, False),
        ("version 2", "bad_version", envelope(version=2), MAX_TX_BYTES, False),
        ("version true", "bad_version", envelope(version=True), MAX_TX_BYTES, False),
        ("another chain", "wrong_chain", envelope(chain_id="another-chain"), MAX_TX_BYTES, True),
        ("type longer than 64 characters", "bad_envelope", envelope(tx_type="registry." + "x" * 56),
         MAX_TX_BYTES, False),
        ("negative nonce", "bad_envelope", envelope(nonce=-1), MAX_TX_BYTES, False),
        ("nonce 2^63", "bad_envelope", envelope(nonce=2**63), MAX_TX_BYTES, False),
        ("32-byte sender", "bad_envelope", envelope(sender=k4.public[1:]), MAX_TX_BYTES, False),
        ("sender not on the curve (prefix 0x05)", "bad_envelope", envelope(sender=b"\x05" + k4.public[1:]),
         MAX_TX_BYTES, True),
        ("63-byte signature", "bad_envelope", envelope(signature=good_sig[:63]), MAX_TX_BYTES, False),
        ("unknown type", "unknown_type", envelope(tx_type="registry.unknown"), MAX_TX_BYTES, False),
        ("payload missing a field", "bad_payload",
         envelope(payload={k: v for k, v in member_add.items() if k != "roles"}), MAX_TX_BYTES, False),
        ("payload with an unknown field", "bad_payload", envelope(payload={**member_add, "note": "x"}),
         MAX_TX_BYTES, False),
        ("org id not matching its pattern", "bad_payload", envelope(payload={**member_add, "org": "St-Mary"}),
         MAX_TX_BYTES, False),
        ("key of 32 bytes", "bad_payload", envelope(payload={**member_add, "key": k5.public[1:]}),
         MAX_TX_BYTES, False),
        ("empty roles", "bad_payload", envelope(payload={**member_add, "roles": []}), MAX_TX_BYTES, False),
        ("repeated role (uniqueness: not expressible in CDDL)", "bad_payload",
         envelope(payload={**member_add, "roles": ["clinician", "clinician"]}), MAX_TX_BYTES, True),
        ("payload is a list", "bad_payload", envelope(payload=[]), MAX_TX_BYTES, False),
        ("expires_in 0", "bad_payload",
         envelope(tx_type="registry.propose", payload={"action": {"kind": "org_reinstate", "org": "st-mary"},
                                                        "expires_in": 0}), MAX_TX_BYTES, False),
        ("unknown action kind", "bad_payload",
         envelope(tx_type="registry.propose", payload={"action": {"kind": "org_delete", "org": "st-mary"}}),
         MAX_TX_BYTES, False),
        ("signed by another key", "bad_signature", envelope(signer=key(2)), MAX_TX_BYTES, True),
        ("signed under purpose 'block'", "bad_signature", envelope(purpose=BLOCK_PURPOSE), MAX_TX_BYTES, True),
        ("signed for another chain", "bad_signature", envelope(sign_chain="another-chain"), MAX_TX_BYTES, True),
        ("signature of another nonce", "bad_signature", envelope(nonce=1, signature=good_sig), MAX_TX_BYTES, True),
        ("high-s form of the valid signature", "bad_signature", good[:-64] + high_s, MAX_TX_BYTES, True),
    ]
    apps = default_apps()
    out = []
    for name, code, raw, max_bytes, cddl_valid in cases:
        try:
            decode_tx(raw, chain_id=CHAIN_ID, max_bytes=max_bytes, payload_spec=apps.payload_spec)
        except Rejected as exc:
            assert exc.code == code, (name, exc.code, exc.message)
        else:
            raise AssertionError(f"{name}: accepted")
        out.append({"name": name, "code": code, "hex": h(raw), "max_bytes": max_bytes, "cddl_valid": cddl_valid})
    return out


# --- genesis and blocks ------------------------------------------------------------------------


def vector_genesis() -> Genesis:
    return Genesis(
        chain_id=CHAIN_ID,
        time_ms=GENESIS_TIME_MS,
        admins=(key(1).public, key(2).public),
        admin_threshold=2,
        validators=(key(3).public,),
        orgs=(GenesisOrg("st-mary", "St Mary's Hospital", "hospital", (key(4).public,)),),
    )


def genesis_file() -> dict[str, Any]:
    genesis = vector_genesis()
    block, writes = genesis_block(genesis, default_apps())
    header = block.header
    return {
        "description": "A small genesis and block 0. Block 0's only 'transaction' is the encoded genesis document "
                       "(no receipt: receipt_root is the root of no leaves); prev_hash is 32 zero bytes; proposer "
                       "and signature are empty; state_root = SHA-256(encoded state_input) with previous = 32 "
                       "zero bytes and the writes of the apps' genesis hooks. The block hash (SHA-256 of the "
                       "encoded header) identifies the chain.",
        "inputs": {
            "chain_id": genesis.chain_id,
            "time_ms": genesis.time_ms,
            "admins": [1, 2],
            "admin_threshold": genesis.admin_threshold,
            "validators": [3],
            "orgs": [{"id": "st-mary", "name": "St Mary's Hospital", "kind": "hospital", "admins": [4]}],
        },
        "document": item(genesis.to_value(), "genesis-document"),
        "writes": writes_json(writes),
        "state_input": {"hex": h(codec.encode(state_input(ZERO_ROOT, writes))), "cddl": "state-root-input"},
        "header": header_json(header),
        "header_encoded": {"hex": h(header.encode()), "cddl": "genesis-header"},
        "hash": h(header.hash),
        "block": {"hex": h(block.encode()), "cddl": "genesis-block"},
    }


def _block_vector(state: MemoryState, prev_root: bytes, prev_hash: bytes, height: int,
                  txs: list[tuple[str, int, str, int, dict[str, Any]]]) -> tuple[dict[str, Any], bytes, bytes]:
    apps = default_apps()
    proposer = key(3)
    time_ms = GENESIS_TIME_MS + 1000 * height
    raws = [build_tx(key(n), CHAIN_ID, tx_type, nonce, payload) for _, n, tx_type, nonce, payload in txs]
    result = execute(state, apps, BlockInfo(CHAIN_ID, height, time_ms, proposer.public), raws, prev_root)
    header = BlockHeader(CHAIN_ID, height, prev_hash, time_ms, result.tx_root, result.receipt_root,
                         result.state_root, proposer.public)
    block = sign_block(proposer, header, raws)
    assert block.signature_ok() and block.tx_root_ok()
    vector = {
        "height": height,
        "proposer": 3,
        "prev_state_root": h(prev_root),
        "txs": [
            {"name": name, "signer": n, "type": tx_type, "nonce": nonce, "payload": item(payload, f"{tx_type}-payload"),
             "tx": {"hex": h(raw), "cddl": "tx"}, "hash": h(sha(raw))}
            for (name, n, tx_type, nonce, payload), raw in zip(txs, raws)
        ],
        "receipts": [item(r, "receipt") for r in result.receipts],
        "writes": writes_json(result.writes),
        "state_input": {"hex": h(codec.encode(state_input(prev_root, result.writes))), "cddl": "state-root-input"},
        "header": header_json(header),
        "header_encoded": {"hex": h(header.encode()), "cddl": "header"},
        "hash": h(header.hash),
        "signing_digest": h(crypto.signing_digest(CHAIN_ID, BLOCK_PURPOSE, header.encode())),
        "signature": h(block.signature),
        "block": {"hex": h(block.encode()), "cddl": "block"},
    }
    state.commit(result.writes)
    return vector, result.state_root, header.hash


def blocks_file() -> dict[str, Any]:
    genesis = vector_genesis()
    block0, writes = genesis_block(genesis, default_apps())
    state = MemoryState()
    state.commit(writes)
    root, prev = block0.header.state_root, block0.hash
    k5, k7 = key(5), key(7)
    block1, root, prev = _block_vector(state, root, prev, 1, [
        ("st-mary's admin adds dr-ada", 4, "registry.member_add", 0,
         {"org": "st-mary", "name": "dr-ada", "key": k5.public, "roles": ["clinician"]}),
        ("a patient registers", 6, "registry.patient_register", 0, {}),
    ])
    block2, root, prev = _block_vector(state, root, prev, 2, [
        ("dr-ada rotates to k7", 5, "registry.key_rotate", 0,
         {"new_key": k7.public, "proof": rotation_proof(k7, CHAIN_ID, k5.public)}),
        ("admin k1 proposes an organisation (1 of 2 approvals: stays open)", 1, "registry.propose", 0,
         _propose_org_add_payload()),
        ("the patient tries to add a member: missing_role (its nonce is still consumed)", 6, "registry.member_add", 1,
         {"org": "st-mary", "name": "eve", "key": key(8).public, "roles": ["admin"]}),
        ("st-mary's admin reuses nonce 0: replayed_nonce (consumes nothing)", 4, "registry.member_add", 0,
         {"org": "st-mary", "name": "dr-bob", "key": key(8).public, "roles": ["clinician"]}),
    ])
    return {
        "description": "Blocks 1 and 2 on top of genesis.json's block 0, proposed and signed by k3 (the genesis "
                       "validator) at genesis time + 1000 ms per height. For each: the txs (wire bytes), their "
                       "receipts in order, the block's state writes (sorted by key), the state root input, the "
                       "header, its hash and the proposer's signature over the encoded header (purpose 'block'). "
                       "tx_root = Merkle root of the txs' wire bytes; receipt_root = Merkle root of the encoded "
                       "receipts; state_root = SHA-256(encoded state_input). Patient id of k6: "
                       + patient_id(key(6).public) + ".",
        "chain_id": CHAIN_ID,
        "genesis_hash": h(block0.hash),
        "blocks": [block1, block2],
    }


# --- Merkle ---------------------------------------------------------------------------------------


def merkle_file() -> dict[str, Any]:
    trees = []
    for size in range(1, 8):
        leaves = [f"leaf-{i}".encode() for i in range(size)]
        root = merkle.root(leaves)
        proofs = []
        for index in range(size):
            path = merkle.proof(leaves, index)
            assert merkle.verify_proof(leaves[index], index, size, path, root)
            obj = {"leaf": leaves[index], "index": index, "size": size, "path": path, "root": root}
            proofs.append({"index": index, "path": [h(p) for p in path],
                           "proof": {"hex": h(codec.encode(obj)), "cddl": "merkle-proof"}})
        trees.append({"size": size, "leaves": [h(x) for x in leaves],
                      "leaf_hashes": [h(merkle.leaf_hash(x)) for x in leaves], "root": h(root), "proofs": proofs})

    leaves = [f"leaf-{i}".encode() for i in range(5)]
    root = merkle.root(leaves)
    path = merkle.proof(leaves, 2)
    tampered = [bytes([path[0][0] ^ 1]) + path[0][1:]] + path[1:]
    four = [f"leaf-{i}".encode() for i in range(4)]
    four_root = merkle.root(four)
    # An interior node passed off as a leaf: the bytes of node (0,1) = left || right leaf hashes.
    fake_leaf = merkle.leaf_hash(four[0]) + merkle.leaf_hash(four[1])
    invalid = []
    for why, leaf, index, size, p, r in [
        ("wrong index", leaves[2], 3, 5, path, root),
        ("smaller size (path too long for a tree of 4)", leaves[2], 2, 4, path, root),
        ("larger size (path too short for a tree of 9)", leaves[2], 2, 9, path, root),
        ("index out of range", leaves[2], 5, 5, path, root),
        ("other leaf", leaves[3], 2, 5, path, root),
        ("tampered path", leaves[2], 2, 5, tampered, root),
        ("path too short", leaves[2], 2, 5, path[:-1], root),
        ("path too long", leaves[2], 2, 5, path + [root], root),
        ("interior node as a leaf (the 0x00/0x01 prefixes prevent it)", fake_leaf, 0, 2,
         [_node(merkle.leaf_hash(four[2]), merkle.leaf_hash(four[3]))],
         four_root),
    ]:
        assert not merkle.verify_proof(leaf, index, size, p, r), why
        invalid.append({"why": why, "leaf": h(leaf), "index": index, "size": size, "path": [h(x) for x in p],
                        "root": h(r)})
    return {
        "description": "Merkle trees (RFC 6962 hashing): leaf hash = SHA-256(0x00 || leaf), node = SHA-256(0x01 || "
                       "left || right), split at the largest power of two below n; root of no leaves = "
                       "SHA-256(''). Proof paths list siblings nearest first; verify per RFC 9162 section "
                       "2.1.3.2. Leaves are the ASCII bytes 'leaf-<i>'. 'invalid' proofs must not verify.",
        "empty_root": h(merkle.root([])),
        "trees": trees,
        "invalid": invalid,
    }


def _node(left: bytes, right: bytes) -> bytes:
    return sha(b"\x01" + left + right)


# --- main -------------------------------------------------------------------------------------------

FILES = {
    "keys.json": keys_file,
    "codec.json": codec_file,
    "decode_rejections.json": decode_rejections_file,
    "signatures.json": signatures_file,
    "transactions.json": transactions_file,
    "genesis.json": genesis_file,
    "blocks.json": blocks_file,
    "merkle.json": merkle_file,
}


def build() -> dict[str, str]:
    """Every vector file's exact text, by file name."""
    return {name: write_json(name, make()) for name, make in FILES.items()}


def main(argv: list[str]) -> int:
    outputs = build()
    if "--check" in argv:
        stale = [name for name, text in outputs.items()
                 if not (HERE / name).exists() or (HERE / name).read_text(encoding="utf-8") != text]
        for name in stale:
            print(f"{name}: differs from the generator's output", file=sys.stderr)
        return 1 if stale else 0
    for name, text in outputs.items():
        (HERE / name).write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote protocols/vectors/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
