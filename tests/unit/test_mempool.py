"""The bounded mempool: admission, dedupe, and the choice of the next block's transactions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcnode.chain import Rejected, Tx
from hcnode.node.mempool import Mempool

A, B, C = b"\x02" + b"\xaa" * 32, b"\x02" + b"\xbb" * 32, b"\x02" + b"\xcc" * 32


def mk(sender: bytes, nonce: int, size: int = 100, salt: int = 0) -> Tx:
    """A stand-in transaction: the mempool looks only at sender, nonce, raw and hash."""
    head = sender + nonce.to_bytes(8, "big") + salt.to_bytes(4, "big")
    raw = head + b"\x00" * max(0, size - len(head))
    return Tx(1, "c", "t.x", sender, nonce, {}, b"", raw, hashlib.sha256(raw).digest())


def committed(nonces: dict[bytes, int] | None = None):  # type: ignore[no-untyped-def]
    nonces = nonces or {}
    return lambda sender: nonces.get(sender, 0)


def picked(txs: list[Tx]) -> list[tuple[bytes, int]]:
    return [(t.sender, t.nonce) for t in txs]


def refused(pool: Mempool, tx: Tx, committed_nonce: int, code: str) -> str:
    with pytest.raises(Rejected) as info:
        pool.add(tx, committed_nonce)
    assert info.value.code == code
    return info.value.message


# --- admission -------------------------------------------------------------------------------------


def test_add_tracks_hash_sender_and_bytes() -> None:
    pool = Mempool(10)
    t = mk(A, 0, size=120)
    pool.add(t, 0)
    assert len(pool) == 1 and t.hash in pool and pool.bytes == 120
    assert pool.by_sender == {A: {0: t}}


def test_same_transaction_twice_is_refused_and_counted_once() -> None:
    pool = Mempool(10)
    t = mk(A, 0)
    pool.add(t, 0)
    refused(pool, t, 0, "nonce_taken")
    assert len(pool) == 1 and pool.bytes == len(t.raw)


def test_another_transaction_with_a_pending_nonce_is_nonce_taken() -> None:
    pool = Mempool(10)
    pool.add(mk(A, 3), 0)
    assert "nonce 3" in refused(pool, mk(A, 3, salt=1), 0, "nonce_taken")
    pool.add(mk(B, 3), 0)  # other senders are independent


def test_nonce_below_the_committed_one_is_replayed_nonce() -> None:
    pool = Mempool(10)
    message = refused(pool, mk(A, 4), 5, "replayed_nonce")
    assert "nonce 4 is already used (next is 5)" in message
    pool.add(mk(A, 5), 5)
    assert len(pool) == 1


def test_full_mempool_refuses_until_something_leaves() -> None:
    pool = Mempool(2)
    first, second = mk(A, 0), mk(B, 0)
    pool.add(first, 0)
    pool.add(second, 0)
    assert "limit of 2" in refused(pool, mk(C, 0), 0, "mempool_full")
    assert len(pool) == 2 and pool.bytes == 200
    pool.remove(first.hash)
    pool.add(mk(C, 0), 0)
    assert len(pool) == 2


def test_remove_forgets_the_transaction_and_unknown_hashes_are_ignored() -> None:
    pool = Mempool(10)
    t0, t1 = mk(A, 0), mk(A, 1, size=50)
    pool.add(t0, 0)
    pool.add(t1, 0)
    pool.remove(t0.hash)
    pool.remove(t0.hash)
    pool.remove(b"\x00" * 32)
    assert t0.hash not in pool and pool.bytes == 50 and pool.by_sender == {A: {1: t1}}
    pool.remove(t1.hash)
    assert pool.by_sender == {} and pool.bytes == 0 and len(pool) == 0


def test_next_nonce_counts_pending_transactions_without_skipping_gaps() -> None:
    pool = Mempool(10)
    assert pool.next_nonce(A, 7) == 7
    for n in (7, 8, 10):
        pool.add(mk(A, n), 7)
    assert pool.next_nonce(A, 7) == 9  # the gap at 9 is the next to fill
    assert pool.next_nonce(A, 11) == 11
    assert pool.next_nonce(B, 0) == 0


# --- selection -------------------------------------------------------------------------------------------


def test_select_keeps_nonce_order_within_a_sender_whatever_the_arrival_order() -> None:
    pool = Mempool(10)
    for n in (2, 0, 1):
        pool.add(mk(A, n), 0)
    assert picked(pool.select(10, 10_000, committed())) == [(A, 0), (A, 1), (A, 2)]


def test_select_keeps_arrival_order_across_senders() -> None:
    pool = Mempool(10)
    for sender in (B, C, A):
        pool.add(mk(sender, 0), 0)
    assert picked(pool.select(10, 10_000, committed())) == [(B, 0), (C, 0), (A, 0)]


def test_select_does_not_let_one_sender_jump_ahead_of_earlier_arrivals() -> None:
    pool = Mempool(10)
    for sender, n in ((A, 0), (B, 0), (A, 1)):
        pool.add(mk(sender, n), 0)
    assert picked(pool.select(10, 10_000, committed())) == [(A, 0), (B, 0), (A, 1)]
    assert picked(pool.select(2, 10_000, committed())) == [(A, 0), (B, 0)]


def test_select_never_crosses_a_nonce_gap() -> None:
    pool = Mempool(10)
    for n in (0, 1, 3, 4):
        pool.add(mk(A, n), 0)
    pool.add(mk(B, 1), 0)  # B's nonce 0 is not there at all
    assert picked(pool.select(10, 10_000, committed())) == [(A, 0), (A, 1)]
    assert len(pool) == 5  # nothing was dropped


def test_select_passes_over_transactions_of_pending_blocks_without_dropping_them() -> None:
    """The leader builds block h+1 while h replicates: h's transactions are excluded, and the nonces
    it used count as taken (read from the pending state), yet they stay in the mempool until committed."""
    pool = Mempool(10)
    a0, a1, a2, b0 = mk(A, 0), mk(A, 1), mk(A, 2), mk(B, 0)
    for tx in (a0, b0, a1, a2):
        pool.add(tx, 0)
    first = pool.select(2, 10_000, committed())
    assert picked(first) == [(A, 0), (B, 0)]
    after_first = committed({A: 1, B: 1})  # the state with the pending block applied
    second = pool.select(10, 10_000, after_first, exclude={tx.hash for tx in first})
    assert picked(second) == [(A, 1), (A, 2)]
    assert len(pool) == 4, "transactions of the pending block are not taken for stale"
    # without the exclusion they would count as stale (their nonces are used) and be dropped
    pool.select(10, 10_000, after_first)
    assert len(pool) == 2


def test_select_starts_at_each_senders_committed_nonce() -> None:
    pool = Mempool(10)
    for n in (5, 6):
        pool.add(mk(A, n), 5)
    pool.add(mk(B, 2), 0)
    assert picked(pool.select(10, 10_000, committed({A: 5, B: 2}))) == [(A, 5), (A, 6), (B, 2)]
    assert picked(pool.select(10, 10_000, committed({A: 4, B: 2}))) == [(B, 2)]  # A's 4 is missing


def test_select_drops_transactions_committed_meanwhile_under_another_hash() -> None:
    pool = Mempool(10)
    stale, fresh = mk(A, 0), mk(A, 1)
    pool.add(stale, 0)
    pool.add(fresh, 0)
    assert picked(pool.select(10, 10_000, committed({A: 1}))) == [(A, 1)]
    assert stale.hash not in pool and fresh.hash in pool


def test_select_does_not_remove_what_it_selects() -> None:
    pool = Mempool(10)
    pool.add(mk(A, 0), 0)
    pool.select(10, 10_000, committed())
    assert len(pool) == 1


def test_select_respects_max_txs() -> None:
    pool = Mempool(20)
    for n in range(5):
        pool.add(mk(A, n), 0)
    for n in range(5):
        pool.add(mk(B, n), 0)
    chosen = pool.select(3, 10_000, committed())
    assert len(chosen) == 3 and picked(chosen) == [(A, 0), (A, 1), (A, 2)]
    assert pool.select(0, 10_000, committed()) == []


def test_select_respects_max_bytes_and_fills_with_smaller_transactions() -> None:
    pool = Mempool(20)
    pool.add(mk(A, 0, size=100), 0)
    pool.add(mk(A, 1, size=300), 0)
    pool.add(mk(A, 2, size=10), 0)
    pool.add(mk(B, 0, size=150), 0)
    chosen = pool.select(10, 260, committed())
    # A1 does not fit, so A2 must wait behind it; B0 still fits
    assert picked(chosen) == [(A, 0), (B, 0)]
    assert sum(len(t.raw) for t in chosen) <= 260
    assert pool.select(10, 99, committed()) == []
    assert picked(pool.select(10, 100, committed())) == [(A, 0)]


SENDERS = [bytes([2]) + bytes([i]) * 32 for i in range(1, 5)]


@settings(max_examples=300, deadline=None)
@given(
    arrivals=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(40, 200)), max_size=40),
    base=st.lists(st.integers(0, 3), min_size=4, max_size=4),
    max_txs=st.integers(0, 30) | st.just(1000),
    max_bytes=st.integers(0, 3000) | st.just(1_000_000),
)
def test_selection_is_gapless_ordered_and_bounded(arrivals: list[tuple[int, int, int]], base: list[int],
                                                  max_txs: int, max_bytes: int) -> None:
    pool = Mempool(1000)
    start = {SENDERS[i]: base[i] for i in range(4)}
    for s, n, size in arrivals:
        sender = SENDERS[s]
        try:
            pool.add(mk(sender, n, size), start[sender])
        except Rejected as exc:
            assert exc.code in ("replayed_nonce", "nonce_taken")
    pending = {t.hash for t in pool.by_hash.values()}
    chosen = pool.select(max_txs, max_bytes, committed(start))
    assert len(chosen) <= max_txs
    assert sum(len(t.raw) for t in chosen) <= max_bytes
    assert len({t.hash for t in chosen}) == len(chosen) and {t.hash for t in chosen} <= pending
    for sender in SENDERS:
        nonces = [t.nonce for t in chosen if t.sender == sender]
        assert nonces == list(range(start[sender], start[sender] + len(nonces)))  # from the committed nonce, no gap
    if max_txs >= 40 and max_bytes >= 40 * 200:
        # unbounded: every sender's whole gapless run is taken
        for sender in SENDERS:
            run = 0
            while start[sender] + run in pool.by_sender.get(sender, {}):
                run += 1
            assert sum(1 for t in chosen if t.sender == sender) == run
    for t in chosen:
        assert t.hash in pool
