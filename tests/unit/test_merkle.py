"""Merkle roots and inclusion proofs, checked against a recursive RFC 6962 reference written here."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcnode.chain import merkle


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, MTH, literally."""
    n = len(leaves)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + leaves[0])
    k = _k(n)
    return _h(b"\x01" + ref_root(leaves[:k]) + ref_root(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1, PATH(m, D[n]), literally."""
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return ref_path(m, leaves[:k]) + [ref_root(leaves[k:])]
    return ref_path(m - k, leaves[k:]) + [ref_root(leaves[:k])]


def ref_verify(leaf: bytes, m: int, n: int, path: list[bytes], root: bytes) -> bool:
    """Rebuild the root top-down from the tree shape of size n (path is nearest sibling first)."""

    def rebuild(h: bytes, m: int, n: int, path: list[bytes]) -> bytes | None:
        if n == 1:
            return h if not path else None
        if not path:
            return None
        k = _k(n)
        top, rest = path[-1], path[:-1]
        if m < k:
            sub = rebuild(h, m, k, rest)
            return None if sub is None else _h(b"\x01" + sub + top)
        sub = rebuild(h, m - k, n - k, rest)
        return None if sub is None else _h(b"\x01" + top + sub)

    return 0 <= m < n and rebuild(_h(b"\x00" + leaf), m, n, list(path)) == root


def leaves_of(n: int) -> list[bytes]:
    return [f"tx-{i}".encode() for i in range(n)]


def test_root_of_no_leaves_is_hash_of_empty_string() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert merkle.leaf_hash(b"x") == _h(b"\x00x")
    assert merkle.root([b"a"]) == _h(b"\x00a")
    assert merkle.root([b"a", b"b"]) == _h(b"\x01" + _h(b"\x00a") + _h(b"\x00b"))


@pytest.mark.parametrize("n", range(0, 130))
def test_root_equals_rfc6962_reference(n: int) -> None:
    assert merkle.root(leaves_of(n)) == ref_root(leaves_of(n))


@pytest.mark.parametrize("n", range(1, 65))
def test_proofs_for_every_leaf_of_sizes_1_to_64_verify_and_match_the_reference(n: int) -> None:
    leaves = leaves_of(n)
    root = merkle.root(leaves)
    for m in range(n):
        path = merkle.proof(leaves, m)
        assert path == ref_path(m, leaves)
        assert merkle.verify_proof(leaves[m], m, n, path, root)


@pytest.mark.parametrize("n", range(1, 65))
def test_proof_with_wrong_index_leaf_path_or_root_fails(n: int) -> None:
    leaves = leaves_of(n)
    root = merkle.root(leaves)
    for m in range(n):
        path = merkle.proof(leaves, m)
        for other in range(n):
            if other != m:
                assert not merkle.verify_proof(leaves[m], other, n, path, root)
        assert not merkle.verify_proof(leaves[m] + b"!", m, n, path, root)
        assert not merkle.verify_proof(leaves[m], m, n, path, _h(root))
        assert not merkle.verify_proof(leaves[m], -1, n, path, root)
        assert not merkle.verify_proof(leaves[m], n, n, path, root)
        if path:
            assert not merkle.verify_proof(leaves[m], m, n, path[:-1], root)
            assert not merkle.verify_proof(leaves[m], m, n, path[1:], root)
            assert not merkle.verify_proof(leaves[m], m, n, list(reversed(path)), root) or len(path) == 1
            for i in range(len(path)):
                bent = list(path)
                bent[i] = _h(bent[i])
                assert not merkle.verify_proof(leaves[m], m, n, bent, root)
        assert not merkle.verify_proof(leaves[m], m, n, path + [root], root)


@pytest.mark.parametrize("n", range(1, 65))
def test_proof_checked_against_another_size_agrees_with_the_reference(n: int) -> None:
    # A root alone does not commit to the size (RFC 9162 signs both); a proof fails for another
    # size exactly when that size gives the index a different shape of path.
    leaves = leaves_of(n)
    root = merkle.root(leaves)
    rejected = 0
    for m in range(n):
        path = merkle.proof(leaves, m)
        for size in range(0, 70):
            got = merkle.verify_proof(leaves[m], m, size, path, root)
            assert got == ref_verify(leaves[m], m, size, path, root)
            if size != n and not got:
                rejected += 1
        assert not merkle.verify_proof(leaves[m], m, 0, path, root)
    assert rejected > 0


def test_wrong_size_fails_when_it_changes_the_path_shape() -> None:
    leaves = leaves_of(5)
    root = merkle.root(leaves)
    path = merkle.proof(leaves, 4)  # the lone right leaf: a path of one
    assert merkle.verify_proof(leaves[4], 4, 5, path, root)
    for size in (4, 6, 7, 8, 9):
        assert not merkle.verify_proof(leaves[4], 4, size, path, root)


def test_an_interior_node_cannot_pass_for_a_leaf() -> None:
    leaves = leaves_of(4)
    root = merkle.root(leaves)
    left = merkle.leaf_hash(leaves[0]) + merkle.leaf_hash(leaves[1])
    right = _h(b"\x01" + merkle.leaf_hash(leaves[2]) + merkle.leaf_hash(leaves[3]))
    assert not merkle.verify_proof(left, 0, 2, [right], root)
    assert merkle.root([left, right]) != root


def test_proof_index_out_of_range_raises() -> None:
    with pytest.raises(IndexError):
        merkle.proof(leaves_of(3), 3)
    with pytest.raises(IndexError):
        merkle.proof(leaves_of(3), -1)
    with pytest.raises(IndexError):
        merkle.proof([], 0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=300), st.data())
def test_random_trees_match_the_reference(leaves: list[bytes], data: st.DataObject) -> None:
    root = merkle.root(leaves)
    assert root == ref_root(leaves)
    m = data.draw(st.integers(0, len(leaves) - 1))
    path = merkle.proof(leaves, m)
    assert path == ref_path(m, leaves)
    assert merkle.verify_proof(leaves[m], m, len(leaves), path, root)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4), st.integers(-2, 40), st.integers(-1, 40),
       st.lists(st.sampled_from([_h(bytes([i])) for i in range(4)]), max_size=7), st.integers(0, 3))
def test_verify_agrees_with_the_reference_on_arbitrary_inputs(leaf: bytes, m: int, n: int, path: list[bytes],
                                                              which: int) -> None:
    candidates = [merkle.root([leaf] * max(n, 1)), _h(bytes([which])), merkle.leaf_hash(leaf),
                  merkle.root([bytes([i]) for i in range(max(n, 1))])]
    for root in candidates:
        assert merkle.verify_proof(leaf, m, n, path, root) == ref_verify(leaf, m, n, path, root)
