"""Merkle trees over transactions (RFC 6962 hashing), with inclusion proofs.

Owns: roots, audit paths and their verification. Must not know what the leaves are.
Leaves are hashed as SHA-256(0x00 || leaf) and interior nodes as
SHA-256(0x01 || left || right), so a leaf can never pass for a node.
The root of no leaves is SHA-256 of the empty string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["leaf_hash", "root", "proof", "verify_proof"]


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (RFC 6962, section 2.1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    level = list(hashes)
    sha256 = hashlib.sha256
    # Bottom-up pairing matches RFC 6962's recursive split: an odd last node is promoted.
    # ``_node`` inline: a block of 5,000 claims hashes ~10,000 nodes for its two roots.
    while len(level) > 1:
        nxt = [sha256(b"\x01" + left + right).digest() for left, right in zip(level[0::2], level[1::2])]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def root(leaves: Sequence[bytes]) -> bytes:
    sha256 = hashlib.sha256  # ``leaf_hash`` inline, as in ``_root_of_hashes``
    return _root_of_hashes([sha256(b"\x00" + leaf).digest() for leaf in leaves])


def proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path for ``leaves[index]``, nearest sibling first."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} out of range 0..{len(leaves) - 1}")
    return _path(index, [leaf_hash(leaf) for leaf in leaves])


def _path(index: int, hashes: list[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return _path(index, hashes[:k]) + [_root_of_hashes(hashes[k:])]
    return _path(index - k, hashes[k:]) + [_root_of_hashes(hashes[:k])]


def verify_proof(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2 inclusion verification."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root
