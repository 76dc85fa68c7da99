"""Length-prefixed canonical CBOR frames on a byte stream: the framing of every hcnode stream protocol.

Owns: the frame layout (a 4-byte big-endian length, then that many bytes of
canonical CBOR), reading exactly one frame at a time from a stream that returns
*up to* n bytes per read, and the size limit. Must not know what the frames
mean (Raft, block sync) or which peer sent them: callers name the peer in their
log lines.

Why a fixed 4-byte prefix rather than a varint: the limit check happens on four
bytes already read, before any allocation, and a hostile peer cannot make us
read an unbounded varint. Why canonical CBOR decoded strictly: one decoder
(``hcnode.codec``) for every untrusted byte, so a garbage frame fails in one
well-tested place with a ``CodecError`` that names the problem.
"""

from __future__ import annotations

from typing import Any, Protocol

from hcnode import codec

__all__ = ["FrameError", "FrameTooLarge", "FrameTruncated", "FrameReader", "encode_frame", "HEADER_BYTES"]

HEADER_BYTES = 4
READ_CHUNK = 256 * 1024


class FrameError(ValueError):
    """A frame a peer sent that we will not accept: too large, truncated, or not canonical CBOR."""


class FrameTooLarge(FrameError):
    """The length prefix announces more than the configured maximum."""


class FrameTruncated(FrameError):
    """The stream ended inside a frame: a peer that stopped or was cut off, more often than a hostile one."""


class ByteStream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...


def encode_frame(value: Any, max_frame_bytes: int) -> bytes:
    """The wire bytes of one frame; raises ``FrameTooLarge`` rather than send what the peer must refuse."""
    body = codec.encode(value)
    if len(body) > max_frame_bytes:
        raise FrameTooLarge(f"frame of {len(body)} bytes is over the limit of {max_frame_bytes}")
    return len(body).to_bytes(HEADER_BYTES, "big") + body


class FrameReader:
    """Reads whole frames from one stream, keeping the bytes of a partly read next frame.

    ``read_frame`` returns the decoded value, or ``None`` when the stream ends
    cleanly between frames. A stream ending inside a frame, a zero or oversized
    length, or a body that is not canonical CBOR raises ``FrameError``; the
    stream is then out of step and the caller must reset it.
    """

    def __init__(self, stream: ByteStream, max_frame_bytes: int, *, max_items: int = 100_000) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._eof = False
        self.max_frame_bytes = max_frame_bytes
        self._limits = codec.DecodeLimits(max_bytes=max_frame_bytes, max_depth=8, max_items=max_items)

    async def _fill(self, wanted: int) -> bool:
        """Read until ``wanted`` bytes are buffered; False if the stream ended first."""
        while len(self._buffer) < wanted:
            if self._eof:
                return False
            try:
                chunk = await self._stream.read(max(READ_CHUNK, wanted - len(self._buffer)))
            except EOFError:  # libp2p's StreamEOF is an EOFError
                chunk = b""
            if not chunk:
                self._eof = True
                return False
            self._buffer += chunk
        return True

    async def read_frame(self) -> Any | None:
        if not await self._fill(HEADER_BYTES):
            if self._buffer:
                raise FrameTruncated(f"stream ended inside a frame header ({len(self._buffer)} of {HEADER_BYTES} bytes)")
            return None
        length = int.from_bytes(self._buffer[:HEADER_BYTES], "big")
        if length == 0:
            raise FrameError("frame of length 0")
        if length > self.max_frame_bytes:
            raise FrameTooLarge(f"frame announces {length} bytes, over the limit of {self.max_frame_bytes}")
        if not await self._fill(HEADER_BYTES + length):
            raise FrameTruncated(f"stream ended inside a frame ({len(self._buffer) - HEADER_BYTES} of {length} bytes)")
        body = bytes(self._buffer[HEADER_BYTES:HEADER_BYTES + length])
        del self._buffer[:HEADER_BYTES + length]
        try:
            return codec.decode(body, self._limits)
        except codec.CodecError as exc:
            raise FrameError(f"frame is not canonical CBOR: {exc}") from None
