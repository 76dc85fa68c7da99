"""The wire form of Raft messages (``consensus_driver.encode_message``/``decode_message``).

Every message type round-trips; anything a peer could send that is not exactly a
message we would have sent (malformed, oversized, wrong types, out of range) is
refused with a ``ValueError`` naming the fault, and never another exception type.
"""

from __future__ import annotations

import pytest

from hcnode import codec
from hcnode.consensus import Entry, EntryType, Message, MessageType
from hcnode.node.consensus_driver import decode_message, encode_message

A, B = b"\x02" + bytes(range(32)), b"\x03" + bytes(range(32, 64))
MAX_BYTES, MAX_ENTRIES = 64 * 1024, 8


def decode(data: bytes) -> Message:
    return decode_message(data, MAX_BYTES, MAX_ENTRIES)


def fields(**overrides: object) -> list[object]:
    """The 10 wire fields of a well-formed append, with some replaced."""
    base: dict[str, object] = {"type": "app", "sender": A, "recipient": B, "term": 5, "log_term": 4, "index": 9,
                               "entries": [[5, 10, "normal", b"block"]], "commit": 8, "reject": False, "hint": 0}
    base.update(overrides)
    return list(base.values())


@pytest.mark.parametrize("kind", list(MessageType), ids=lambda t: t.value)
def test_every_message_type_round_trips(kind: MessageType) -> None:
    message = Message(type=kind, sender=A, recipient=B, term=7, log_term=6, index=41,
                      entries=(Entry(term=7, index=42, type=EntryType.EMPTY),
                               Entry(term=7, index=43, data=b"\x00block\xff")) if kind is MessageType.APP else (),
                      commit=40, reject=kind.value.endswith("_resp"), reject_hint=3)
    data = encode_message(message)
    assert decode(data) == message
    assert encode_message(decode(data)) == data  # canonical: one encoding per message


def test_the_wire_form_is_a_canonical_cbor_list_of_ten_fields() -> None:
    message = Message(MessageType.HEARTBEAT, A, B, term=2, commit=1)
    assert codec.decode(encode_message(message)) == ["heartbeat", A, B, 2, 0, 0, [], 1, False, 0]


def test_an_append_of_max_entries_is_accepted() -> None:
    data = codec.encode(fields(entries=[[5, 10 + i, "normal", b"x" * 100] for i in range(MAX_ENTRIES)]))
    assert len(decode(data).entries) == MAX_ENTRIES


MALFORMED = {
    # name: (wire bytes, a fragment of the error)
    "garbage": (b"\xff\xfe\xfd", "malformed"),
    "empty": (b"", "empty"),
    "truncated": (codec.encode(fields())[:-3], "truncated"),
    "trailing_bytes": (codec.encode(fields()) + b"\x00", "canonical"),
    "not_canonical": (b"\x9a\x00\x00\x00\x0a" + codec.encode(fields())[1:], "canonical"),
    "indefinite_list": (b"\x9f" + codec.encode(fields())[1:] + b"\xff", "malformed"),
    "a_tag": (b"\xc1\x00", "tag"),
    "oversized": (codec.encode(fields(entries=[[5, 10, "normal", b"x" * MAX_BYTES]])), "limit"),
    "too_deep": (codec.encode(fields(entries=[[5, 10, "normal", [[[[b"x"]]]]]])), "deep"),
    "not_a_list": (codec.encode({"type": "app"}), "list of 10"),
    "nine_fields": (codec.encode(fields()[:9]), "list of 10"),
    "eleven_fields": (codec.encode(fields() + [0]), "list of 10"),
    "unknown_type": (codec.encode(fields(type="install_snapshot")), "unknown raft message type"),
    "type_as_int": (codec.encode(fields(type=4)), "unknown raft message type"),
    "sender_as_text": (codec.encode(fields(sender=A.hex())), "byte strings"),
    "recipient_null": (codec.encode(fields(recipient=None)), "byte strings"),
    "term_as_text": (codec.encode(fields(term="5")), "integers"),
    "term_as_bool": (codec.encode(fields(term=True)), "integers"),
    "commit_null": (codec.encode(fields(commit=None)), "integers"),
    "reject_as_int": (codec.encode(fields(reject=1)), "boolean"),
    "negative_term": (codec.encode(fields(term=-1)), ">= 0"),
    "negative_index": (codec.encode(fields(index=-3)), ">= 0"),
    "negative_hint": (codec.encode(fields(hint=-1)), "reject_hint"),
    "entries_not_a_list": (codec.encode(fields(entries=b"")), "entries is a list"),
    "too_many_entries": (codec.encode(fields(entries=[[5, 10 + i, "normal", b""] for i in range(MAX_ENTRIES + 1)])),
                         "at most"),
    "entry_of_three_fields": (codec.encode(fields(entries=[[5, 10, "normal"]])), "an entry is"),
    "entry_unknown_type": (codec.encode(fields(entries=[[5, 10, "config", b""]])), "an entry is"),
    "entry_data_as_text": (codec.encode(fields(entries=[[5, 10, "normal", "block"]])), "an entry is"),
    "entry_negative_term": (codec.encode(fields(entries=[[-5, 10, "normal", b""]])), ">= 0"),
    "entry_not_a_list": (codec.encode(fields(entries=[b"entry"])), "an entry is"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_input_is_refused_with_a_value_error_naming_the_fault(name: str) -> None:
    data, fragment = MALFORMED[name]
    with pytest.raises(ValueError) as refused:
        decode(data)
    assert fragment in str(refused.value), str(refused.value)


def test_input_over_the_byte_limit_is_refused_before_it_is_parsed() -> None:
    data = encode_message(Message(MessageType.APP, A, B, term=1,
                                  entries=(Entry(term=1, index=1, data=b"x" * 1000),)))
    with pytest.raises(codec.CodecError, match="limit is 999"):
        decode_message(data, 999, MAX_ENTRIES)
    assert decode_message(data, len(data), MAX_ENTRIES).entries[0].data == b"x" * 1000


def test_random_bytes_never_raise_anything_but_value_error() -> None:
    import random

    rng = random.Random(4)
    good = encode_message(Message(MessageType.APP, A, B, term=3, log_term=2, index=5, commit=4,
                                  entries=(Entry(term=3, index=6, data=b"blk"),)))
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            decode(bytes(data))
        except ValueError:
            pass
