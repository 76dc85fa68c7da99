"""Frames on a byte stream, the tx-batch codec and the peer id <-> key mapping, without sockets."""

from __future__ import annotations

import pytest

from hcnode import codec, crypto
from hcnode.node.framing import FrameError, FrameReader, FrameTooLarge, encode_frame
from hcnode.node.p2p import decode_tx_batch, encode_tx_batch, key_for_peer_id, peer_id_for_key


class ChunkedStream:
    """Returns the bytes a few at a time, as a real stream may; then EOF (b"")."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data = data
        self.chunk = chunk

    async def read(self, n: int | None = None) -> bytes:
        size = min(self.chunk, n or self.chunk)
        out, self.data = self.data[:size], self.data[size:]
        return out


@pytest.mark.parametrize("chunk", [1, 3, 1000])
async def test_frames_are_read_exactly_whatever_the_read_sizes(chunk: int) -> None:
    values = [b"one", {"start": 3, "count": 5}, [b"x" * 300, b""], b"last"]
    wire = b"".join(encode_frame(v, 1024) for v in values)
    reader = FrameReader(ChunkedStream(wire, chunk), 1024)
    assert [await reader.read_frame() for _ in values] == values
    assert await reader.read_frame() is None


@pytest.mark.parametrize("wire, problem", [
    ((2000).to_bytes(4, "big") + b"\x00" * 10, "over the limit"),
    ((0).to_bytes(4, "big"), "length 0"),
    ((3).to_bytes(4, "big") + b"\xff\xff\xff", "not canonical CBOR"),
    ((2).to_bytes(4, "big") + b"\x18\x05", "not canonical CBOR"),  # 5 encoded in two bytes
    ((10).to_bytes(4, "big") + b"\x4a12", "ended inside a frame"),
    (b"\x00\x00", "inside a frame header"),
])
async def test_bad_frames_raise_frame_error_naming_the_problem(wire: bytes, problem: str) -> None:
    with pytest.raises(FrameError, match=problem):
        await FrameReader(ChunkedStream(wire, 7), 1024).read_frame()


def test_we_never_send_a_frame_the_peer_must_refuse() -> None:
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * 2000, 1024)


def test_peer_id_and_validator_key_map_both_ways() -> None:
    key = crypto.PrivateKey.generate()
    peer_id = peer_id_for_key(key.public)
    assert key_for_peer_id(peer_id) == key.public
    assert str(peer_id).startswith("16Uiu2")  # secp256k1 keys are inlined in the id
    with pytest.raises(ValueError):
        peer_id_for_key(b"\x02" + b"\x00" * 31)


def test_tx_batches_are_bounded_and_strict() -> None:
    data = encode_tx_batch([b"a", b"bc"], 10, 100)
    assert decode_tx_batch(data, 10, 100) == [b"a", b"bc"]
    with pytest.raises(ValueError):
        encode_tx_batch([b"a"] * 11, 10, 1000)
    with pytest.raises(ValueError):
        encode_tx_batch([b"a" * 200], 10, 100)
    for bad in (codec.encode([]), codec.encode(["text"]), codec.encode([b""]), codec.encode({"a": 1}),
                codec.encode([b"a"] * 11), b"\xff"):
        with pytest.raises(codec.CodecError):
            decode_tx_batch(bad, 10, 100)
