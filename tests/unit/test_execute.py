"""Executing transactions and applying blocks: nonces, receipts, overlays, roots, determinism."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcnode import codec
from hcnode.chain import (
    App, AppSet, Block, BlockInfo, MemoryState, Overlay, Query, Rejected, StateRootMismatch, TxContext, TxType, apply_block, build_tx, decode_tx, execute, read_nonce, sign_block,
)
from hcnode.chain import merkle
from hcnode.chain.execute import nonce_key
from hcnode.chain.schema import Int, Record, Text
from hcnode.chain.state import ZERO_ROOT, BlockReadCache, next_state_root, peek_value
from tests.unit.chainkit import CHAIN_ID, LocalChain, key

ALICE, BOB = key(11), key(12)

# --- a tiny app that exercises every path of execute -----------------------------------------------


def _put(ctx: TxContext, p: dict[str, Any]) -> None:
    ctx.state.put_value(b"t/" + p["k"].encode(), p["v"])
    ctx.emit("t.put", k=p["k"])


def _copy(ctx: TxContext, p: dict[str, Any]) -> None:
    value = ctx.state.get_value(b"t/" + p["k"].encode())
    if value is None:
        raise Rejected("missing", f"no {p['k']}")
    ctx.state.put_value(b"t/" + p["k"].encode() + b"-copy", value)


def _fail(ctx: TxContext, p: dict[str, Any]) -> None:
    ctx.state.put_value(b"t/" + p["k"].encode(), p["v"])
    ctx.emit("t.never")
    raise Rejected("nope", "the handler refuses")


def _boom(ctx: TxContext, p: dict[str, Any]) -> None:
    ctx.state.put_value(b"t/" + p["k"].encode(), p["v"])
    raise RuntimeError("kaput")


def _delete(ctx: TxContext, p: dict[str, Any]) -> None:
    ctx.state.delete(b"t/" + p["k"].encode())


def _flag_then_fail(ctx: TxContext, p: dict[str, Any]) -> None:
    ctx.flag("clone", serial="s-1")
    ctx.emit("t.other")
    ctx.state.put_value(b"t/evidence", 1)
    raise Rejected("duplicate", "already dispensed")


def _flag(ctx: TxContext, p: dict[str, Any]) -> None:
    ctx.flag("odd", n=1)
    ctx.flag("odd", n=2)
    ctx.flag("even")


KV = Record({"k": Text(max_len=16), "v": Int()})
K = Record({"k": Text(max_len=16)})
TEST_APP = App("t", tx_types=(
    TxType("t.put", KV, _put, ""), TxType("t.copy", K, _copy, ""), TxType("t.fail", KV, _fail, ""),
    TxType("t.boom", KV, _boom, ""), TxType("t.delete", K, _delete, ""), TxType("t.flag", Record({}), _flag, ""),
    TxType("t.flagfail", Record({}), _flag_then_fail, ""),
), queries=(Query("t.get", K, lambda state, p, h: state.get(b"t/" + p["k"].encode()), ""),))
APPS = AppSet([TEST_APP])
INFO = BlockInfo(CHAIN_ID, 1, 1_000, key(1).public)


def tx(signer: Any, tx_type: str, nonce: int, **payload: Any) -> bytes:
    return build_tx(signer, CHAIN_ID, tx_type, nonce, payload)


def run(*txs: bytes, state: MemoryState | None = None, prev: bytes = ZERO_ROOT, **kwargs: Any) -> Any:
    return execute(state if state is not None else MemoryState(), APPS, INFO, list(txs), prev, **kwargs)


def committed(*txs: bytes) -> MemoryState:
    state = MemoryState()
    state.commit(run(*txs, state=state).writes)
    return state


def codes(result: Any) -> list[str | None]:
    return [r.get("code") for r in result.receipts]


def val(result: Any, k: str) -> Any:
    raw = result.writes.get(b"t/" + k.encode())
    return None if raw is None else codec.decode(raw)


# --- nonces ----------------------------------------------------------------------------------------


def test_nonces_run_in_order_within_a_block() -> None:
    result = run(tx(ALICE, "t.put", 0, k="a", v=1), tx(ALICE, "t.put", 1, k="b", v=2), tx(ALICE, "t.put", 2, k="c", v=3))
    assert codes(result) == [None, None, None]
    assert read_nonce(Overlay(_as_state(result.writes)), ALICE.public) == 3
    assert result.writes[nonce_key(ALICE.public)] == (3).to_bytes(8, "big")


def _as_state(writes: dict[bytes, bytes | None]) -> MemoryState:
    state = MemoryState()
    state.commit(writes)
    return state


def test_nonces_are_per_sender() -> None:
    result = run(tx(ALICE, "t.put", 0, k="a", v=1), tx(BOB, "t.put", 0, k="b", v=2), tx(ALICE, "t.put", 1, k="c", v=3))
    assert codes(result) == [None, None, None]
    state = _as_state(result.writes)
    assert (read_nonce(state, ALICE.public), read_nonce(state, BOB.public), read_nonce(state, key(13).public)) == (2, 1, 0)


def test_bad_nonce_consumes_nothing() -> None:
    result = run(tx(ALICE, "t.put", 1, k="a", v=1))
    assert result.receipts[0]["status"] == "rejected"
    assert result.receipts[0]["code"] == "bad_nonce"
    assert result.receipts[0]["message"] == "nonce 1, the sender's next nonce is 0"
    assert result.writes == {}


def test_a_nonce_gap_closed_later_in_the_block_does_not_revive_the_early_transaction() -> None:
    result = run(tx(ALICE, "t.put", 1, k="a", v=1), tx(ALICE, "t.put", 0, k="b", v=2))
    assert codes(result) == ["bad_nonce", None]
    assert val(result, "a") is None and val(result, "b") == 2
    assert result.writes[nonce_key(ALICE.public)] == (1).to_bytes(8, "big")


def test_replayed_nonce_consumes_nothing() -> None:
    first = tx(ALICE, "t.put", 0, k="a", v=1)
    state = committed(first)
    again = run(first, tx(ALICE, "t.put", 0, k="a", v=99), state=state)
    assert codes(again) == ["replayed_nonce", "replayed_nonce"]
    assert again.receipts[0]["message"] == "nonce 0, the sender's next nonce is 1"
    assert again.writes == {}


def test_same_transaction_twice_in_a_block_runs_once() -> None:
    once = tx(ALICE, "t.put", 0, k="a", v=1)
    result = run(once, once)
    assert codes(result) == [None, "replayed_nonce"]
    assert result.receipts[0]["tx"] == result.receipts[1]["tx"]


def test_stateless_rejection_consumes_nothing() -> None:
    good = codec.decode(tx(ALICE, "t.put", 0, k="a", v=1))
    good[5] = {"k": "a", "v": 2}  # breaks the signature
    result = run(codec.encode(good), tx(BOB, "t.put", 0, k="b", v="two"), b"\x00junk")
    assert codes(result) == ["bad_signature", "bad_payload", "bad_encoding"]
    assert result.writes == {}
    assert "payload.v: expected integer" in result.receipts[1]["message"]


def test_transaction_for_another_chain_is_rejected_in_a_block() -> None:
    raw = build_tx(ALICE, "other", "t.put", 0, {"k": "a", "v": 1})
    result = run(raw)
    assert codes(result) == ["wrong_chain"] and result.writes == {}


def test_oversized_transaction_is_rejected_by_the_block_limit() -> None:
    from hcnode.chain import Limits

    raw = tx(ALICE, "t.put", 0, k="a", v=1)
    assert codes(run(raw, limits=Limits(max_tx_bytes=len(raw) - 1))) == ["too_large"]
    assert codes(run(raw, limits=Limits(max_tx_bytes=len(raw)))) == [None]


# --- handlers -----------------------------------------------------------------------------------------


def test_rejected_tx_consumes_nonce_but_writes_nothing_else() -> None:
    result = run(tx(ALICE, "t.fail", 0, k="a", v=1))
    receipt = result.receipts[0]
    assert (receipt["status"], receipt["code"], receipt["message"]) == ("rejected", "nope", "the handler refuses")
    assert receipt["events"] == []
    assert result.writes == {nonce_key(ALICE.public): (1).to_bytes(8, "big")}


def test_rejected_tx_nonce_cannot_be_replayed() -> None:
    failed = tx(ALICE, "t.fail", 0, k="a", v=1)
    state = committed(failed)
    assert codes(run(failed, state=state)) == ["replayed_nonce"]
    assert codes(run(tx(ALICE, "t.put", 1, k="a", v=1), state=state)) == [None]


def test_rejected_tx_keeps_its_flags_and_their_details_but_no_other_event_or_write() -> None:
    result = run(tx(ALICE, "t.flagfail", 0))
    receipt = result.receipts[0]
    assert (receipt["status"], receipt["code"]) == ("rejected", "duplicate")
    assert receipt["flags"] == ["clone"]
    assert receipt["events"] == [{"kind": "flag", "flag": "clone", "serial": "s-1"}]
    assert result.writes == {nonce_key(ALICE.public): (1).to_bytes(8, "big")}


def test_handler_crash_is_an_app_error_receipt_and_consumes_only_the_nonce() -> None:
    result = run(tx(ALICE, "t.boom", 0, k="a", v=1), tx(ALICE, "t.put", 1, k="b", v=2))
    assert codes(result) == ["app_error", None]
    assert result.receipts[0]["message"] == "RuntimeError: kaput"
    assert val(result, "a") is None and val(result, "b") == 2


def test_later_transactions_see_earlier_writes_but_not_rejected_ones() -> None:
    result = run(tx(ALICE, "t.fail", 0, k="x", v=7), tx(ALICE, "t.copy", 1, k="x"),
                 tx(BOB, "t.put", 0, k="y", v=8), tx(ALICE, "t.copy", 2, k="y"))
    assert codes(result) == ["nope", "missing", None, None]
    assert val(result, "y-copy") == 8 and val(result, "x") is None and val(result, "x-copy") is None


def test_deletes_are_recorded_and_committed() -> None:
    state = committed(tx(ALICE, "t.put", 0, k="a", v=1))
    assert state.get(b"t/a") is not None
    result = run(tx(ALICE, "t.delete", 1, k="a"), state=state)
    assert result.writes[b"t/a"] is None
    state.commit(result.writes)
    assert state.get(b"t/a") is None


def test_receipt_has_the_tx_hash_height_index_status_events_and_flags() -> None:
    raws = [tx(ALICE, "t.put", 0, k="a", v=1), tx(ALICE, "t.flag", 1), tx(ALICE, "t.fail", 2, k="z", v=0)]
    result = run(*raws)
    ok, flagged, bad = result.receipts
    assert ok == {"tx": decode_tx(raws[0], chain_id=CHAIN_ID, max_bytes=1 << 16, payload_spec=APPS.payload_spec).hash,
                  "height": 1, "index": 0, "status": "ok", "flags": [], "events": [{"kind": "t.put", "k": "a"}]}
    assert flagged["flags"] == ["odd", "even"]  # a flag is listed once, each occurrence is an event
    assert flagged["events"] == [{"kind": "flag", "flag": "odd", "n": 1}, {"kind": "flag", "flag": "odd", "n": 2},
                                 {"kind": "flag", "flag": "even"}]
    assert bad["index"] == 2 and bad["status"] == "rejected" and set(bad) == {
        "tx", "height", "index", "status", "flags", "events", "code", "message"}
    assert result.tx_hashes == [r["tx"] for r in result.receipts]
    assert result.encoded_receipts == [codec.encode(r) for r in result.receipts]


def test_header_roots_commit_to_txs_receipts_and_writes() -> None:
    raws = [tx(ALICE, "t.put", 0, k="a", v=1), tx(ALICE, "t.fail", 1, k="b", v=2)]
    prev = b"\x42" * 32
    result = run(*raws, prev=prev)
    assert result.tx_root == merkle.root(raws)
    assert result.receipt_root == merkle.root([codec.encode(r) for r in result.receipts])
    assert result.state_root == next_state_root(prev, result.writes)
    assert result.state_root != run(*raws, prev=ZERO_ROOT).state_root  # the root chains the previous one


def test_empty_block_still_advances_the_state_root() -> None:
    result = run(prev=b"\x01" * 32)
    assert result.writes == {} and result.receipts == []
    assert result.tx_root == merkle.root([]) and result.state_root == next_state_root(b"\x01" * 32, {})
    assert result.state_root != b"\x01" * 32


def test_state_root_is_independent_of_write_order_but_not_of_values() -> None:
    a = next_state_root(ZERO_ROOT, {b"x": b"1", b"y": None})
    assert a == next_state_root(ZERO_ROOT, {b"y": None, b"x": b"1"})
    assert a != next_state_root(ZERO_ROOT, {b"x": b"1", b"y": b""})  # a deletion is not an empty value
    assert a != next_state_root(ZERO_ROOT, {b"x": b"1"})


def test_streamed_state_root_is_the_hash_of_the_documented_encoding() -> None:
    # Sizes around the CBOR length boundaries (23/24, 255/256, 65535/65536) for keys, values and the list.
    writes: dict[bytes, bytes | None] = {}
    for n, size in enumerate((0, 1, 23, 24, 255, 256, 1000, 65535, 65536)):
        writes[b"k" * (n + 1)] = bytes(size)
        writes[b"gone/" + b"%d" % n] = None
    writes.update({b"many/%05d" % i: b"%d" % i for i in range(300)})
    prev = b"\x07" * 32
    documented = codec.hash_value(["hcnode-state/1", prev, [[k, writes[k]] for k in sorted(writes)]])
    assert next_state_root(prev, writes) == documented
    assert next_state_root(prev, {}) == codec.hash_value(["hcnode-state/1", prev, []])


def test_pre_verified_transactions_give_the_same_result() -> None:
    raws = [tx(ALICE, "t.put", 0, k="a", v=1), tx(BOB, "t.fail", 0, k="b", v=1), tx(ALICE, "t.put", 5, k="c", v=1)]
    verified = {t.hash: t for t in (decode_tx(r, chain_id=CHAIN_ID, max_bytes=1 << 16, payload_spec=APPS.payload_spec)
                                     for r in raws)}
    assert run(*raws, verified=verified) == run(*raws)


def test_execute_does_not_touch_committed_state() -> None:
    state = committed(tx(ALICE, "t.put", 0, k="a", v=1))
    before = dict(state.data)
    run(tx(ALICE, "t.delete", 1, k="a"), tx(ALICE, "t.put", 2, k="b", v=3), state=state)
    assert state.data == before


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([11, 12, 13]), st.sampled_from(["t.put", "t.fail", "t.boom", "t.delete"]),
                          st.sampled_from(["a", "b", "c"]), st.integers(0, 3), st.integers(0, 5)), max_size=12))
def test_same_transactions_give_same_writes_receipts_and_roots(plan: list[tuple[int, str, str, int, int]]) -> None:
    raws = []
    for signer, tx_type, k, nonce, v in plan:
        payload: dict[str, Any] = {"k": k} if tx_type == "t.delete" else {"k": k, "v": v}
        raws.append(build_tx(key(signer), CHAIN_ID, tx_type, nonce, payload))
    first, second = run(*raws), run(*raws)
    assert first == second
    # A model of the rules: a nonce is consumed unless it is not the sender's next; only successful
    # handlers write anything else.
    nonces: dict[int, int] = {}
    values: dict[str, Any] = {}
    for (signer, tx_type, k, nonce, v), receipt in zip(plan, first.receipts):
        expected = nonces.get(signer, 0)
        if nonce != expected:
            assert receipt["code"] == ("replayed_nonce" if nonce < expected else "bad_nonce")
            continue
        nonces[signer] = expected + 1
        want = {"t.put": None, "t.delete": None, "t.fail": "nope", "t.boom": "app_error"}[tx_type]
        assert receipt.get("code") == want
        if tx_type == "t.put":
            values[k] = v
        elif tx_type == "t.delete":
            values[k] = None
    for signer, n in nonces.items():
        assert first.writes[nonce_key(key(signer).public)] == n.to_bytes(8, "big")
    assert {k.decode()[2:]: (None if w is None else codec.decode(w))
            for k, w in first.writes.items() if k.startswith(b"t/")} == values
    assert len([k for k in first.writes if k.startswith(b"nonce/")]) == len(nonces)


# --- AppSet -----------------------------------------------------------------------------------------


def test_app_set_refuses_duplicate_or_foreign_names() -> None:
    with pytest.raises(ValueError, match="duplicated or outside"):
        AppSet([TEST_APP, App("u", tx_types=(TxType("t.put", KV, _put, ""),))])
    with pytest.raises(ValueError, match="duplicated or outside"):
        AppSet([App("u", tx_types=(TxType("u.x", KV, _put, ""), TxType("u.x", KV, _put, "")))])
    with pytest.raises(ValueError, match="query 'v.q' is duplicated or outside"):
        AppSet([App("u", queries=(Query("v.q", K, lambda *a: None, ""),))])
    with pytest.raises(ValueError, match="outside app 'u'"):
        AppSet([App("u", tx_types=(TxType("ux.put", KV, _put, ""),))])


def test_app_set_routes_types_and_queries() -> None:
    assert APPS.payload_spec("t.put") is KV and APPS.payload_spec("t.nope") is None
    state = committed(tx(ALICE, "t.put", 0, k="a", v=1))
    assert codec.decode(APPS.query(state, "t.get", {"k": "a"}, 1)) == 1
    with pytest.raises(Rejected) as info:
        APPS.query(state, "t.nope", {}, 1)
    assert info.value.code == "unknown_query" and "'t.nope'" in info.value.message
    with pytest.raises(Rejected) as info:
        APPS.query(state, "t.get", {"k": 5}, 1)
    assert info.value.code == "bad_payload" and info.value.message.startswith("params.k:")


# --- overlays -----------------------------------------------------------------------------------------


def test_overlay_layers_writes_and_merges_children_only_on_request() -> None:
    base = MemoryState()
    base.commit({b"a": b"1", b"b": b"2"})
    block = Overlay(base)
    block.put(b"a", b"10")
    child = block.child()
    child.delete(b"b")
    child.put(b"c", b"3")
    assert (child.get(b"a"), child.get(b"b"), child.get(b"c")) == (b"10", None, b"3")
    assert (block.get(b"b"), block.get(b"c")) == (b"2", None)
    child.merge_into(block)
    assert block.writes == {b"a": b"10", b"b": None, b"c": b"3"}
    assert base.data == {b"a": b"1", b"b": b"2"}


def test_counters_of_several_transactions_add_up_and_are_written_once_folded() -> None:
    base = MemoryState()
    base.commit({b"t": codec.encode({"claims": 5, "flag:x": 1})})
    block = Overlay(base)
    for deltas in ({"claims": 1, "billed": 100}, {"claims": 1, "flag:x": 2}):
        tx_state = block.child()
        tx_state.add_counts(b"t", deltas)
        tx_state.merge_into(block)
    rejected = block.child()
    rejected.add_counts(b"t", {"claims": 1000})  # never merged: leaves no trace
    assert block.writes == {}  # nothing encoded per transaction
    block.fold_counts()
    assert block.writes == {b"t": codec.encode({"billed": 100, "claims": 7, "flag:x": 3})}
    assert block.counts == {}


def test_a_counted_key_reads_as_its_sum_and_a_write_replaces_pending_deltas() -> None:
    block = Overlay(MemoryState())
    block.add_counts(b"t", {"n": 2})
    child = block.child()
    child.add_counts(b"t", {"n": 3})
    assert child.get_value(b"t") == {"n": 5}  # a read folds both layers
    child.add_counts(b"t", {"n": 1})  # on a value this layer now holds: changed in place
    assert child.get_value(b"t") == {"n": 6}
    child.merge_into(block)
    assert block.get_value(b"t") == {"n": 6}
    block.add_counts(b"u", {"n": 4})
    replacing = block.child()
    replacing.put_value(b"u", {"n": 0})
    replacing.add_counts(b"u", {"n": 1})
    replacing.merge_into(block)
    block.fold_counts()
    assert block.get_value(b"u") == {"n": 1}
    block.delete(b"t")
    block.add_counts(b"t", {"n": 1})
    assert block.get_value(b"t") == {"n": 1}


OPS = st.lists(st.tuples(st.sampled_from(["add", "put", "delete", "read", "commit_tx", "drop_tx"]),
                         st.sampled_from([b"a", b"b"]), st.integers(-3, 3)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_counters_agree_with_reading_changing_and_writing_the_value_each_time(ops: list[tuple[str, bytes, int]]) -> None:
    """The reference: every add decodes the map, adds and re-encodes; transactions commit or roll back."""
    base = MemoryState()
    base.commit({b"a": codec.encode({"n": 10})})
    block = Overlay(base)
    tx_state = block.child()
    model: dict[bytes, dict[str, int] | None] = {b"a": {"n": 10}, b"b": None}
    tx_model = dict(model)
    for op, state_key, n in ops:
        if op == "add":
            tx_state.add_counts(state_key, {"n": n, "m": 1})
            current = dict(tx_model[state_key] or {})
            current["n"] = current.get("n", 0) + n
            current["m"] = current.get("m", 0) + 1
            tx_model[state_key] = current
        elif op == "put":
            tx_state.put_value(state_key, {"n": n})
            tx_model[state_key] = {"n": n}
        elif op == "delete":
            tx_state.delete(state_key)
            tx_model[state_key] = None
        elif op == "read":
            assert tx_state.get_value(state_key) == tx_model[state_key]
        elif op == "commit_tx":
            tx_state.merge_into(block)
            tx_state, model = block.child(), dict(tx_model)
        else:
            tx_state, tx_model = block.child(), dict(model)
    block.fold_counts()
    for state_key in (b"a", b"b"):
        assert block.get_value(state_key) == model[state_key]
        assert state_key not in block.writes or block.writes[state_key] == (
            None if model[state_key] is None else codec.encode(model[state_key]))


def test_peeked_committed_values_are_decoded_once_per_block_and_writes_are_never_hidden() -> None:
    base = MemoryState()
    base.commit({b"member": codec.encode({"roles": ["clerk"]}), b"t": codec.encode({"n": 1})})
    block = Overlay(BlockReadCache(base))
    first, second = block.child(), block.child()
    assert first.peek_value(b"member") is second.peek_value(b"member") == {"roles": ["clerk"]}
    assert first.get_value(b"member") is not first.peek_value(b"member")  # get_value: a fresh copy to change
    assert first.peek_value(b"absent") is None
    first.put_value(b"member", {"roles": []})  # this block's own write wins over the shared decode
    assert first.peek_value(b"member") == {"roles": []} and second.peek_value(b"member") == {"roles": ["clerk"]}
    first.merge_into(block)
    assert block.child().peek_value(b"member") == {"roles": []}
    block.add_counts(b"t", {"n": 2})
    assert block.child().peek_value(b"t") == {"n": 3}
    assert peek_value(base, b"t") == {"n": 1}  # outside a block (queries): a plain decode


def test_memory_state_scan_is_prefix_bounded_and_key_ordered() -> None:
    state = MemoryState()
    state.commit({b"p/b": b"2", b"p/a": b"1", b"q/a": b"x", b"p": b"0", b"p/a/z": b"3"})
    assert list(state.scan(b"p/")) == [(b"p/a", b"1"), (b"p/a/z", b"3"), (b"p/b", b"2")]
    state.commit({b"p/a": None})
    assert [k for k, _ in state.scan(b"p/")] == [b"p/a/z", b"p/b"]


# --- apply_block: blocks made elsewhere --------------------------------------------------------------


def _busy_chain() -> LocalChain:
    from hcnode.apps.registry import rotation_proof

    chain = LocalChain(admins=3, threshold=2, orgs=(("hosp", "hospital", 1),))
    admin = chain.org_admins["hosp"]
    proposal = chain.run(chain.admins[0], "registry.propose",
                         {"action": {"kind": "org_add", "org": "pharm", "name": "Pharm", "org_kind": "pharmacy",
                                     "admins": [key(300).public]}})
    chain.run(chain.admins[1], "registry.approve", {"proposal": proposal["events"][0]["proposal"]})
    chain.block(
        chain.tx(admin, "registry.member_add", {"org": "hosp", "name": "dr-a", "key": key(301).public, "roles": ["doctor"]}),
        chain.tx(key(302), "registry.patient_register", {}),
        chain.tx(key(303), "registry.member_add", {"org": "hosp", "name": "x", "key": key(304).public, "roles": ["a"]}),
    )
    chain.run(key(301), "registry.key_rotate",
              {"new_key": key(305).public, "proof": rotation_proof(key(305), CHAIN_ID, key(301).public)})
    chain.block()
    chain.run(admin, "registry.member_revoke", {"member": "hosp/dr-a", "reason": "left"})
    return chain


def test_same_blocks_give_same_state_root_on_two_chains() -> None:
    a = _busy_chain()
    b = LocalChain(admins=3, threshold=2, orgs=(("hosp", "hospital", 1),))
    assert b.root == LocalChain(admins=3, threshold=2, orgs=(("hosp", "hospital", 1),)).root
    receipts = []
    for block in a.blocks:
        assert block.signature_ok() and block.tx_root_ok()
        receipts.append(b.apply(block))
        assert b.root == block.header.state_root
    assert b.root == a.root
    assert b.state.data == a.state.data
    assert [r["status"] for rs in receipts for r in rs] == ["ok", "ok", "ok", "ok", "rejected", "ok", "ok"]
    assert _busy_chain().root == a.root  # and a third run from scratch agrees


def test_apply_block_raises_state_root_mismatch_for_a_wrong_state_root() -> None:
    a = _busy_chain()
    b = LocalChain(admins=3, threshold=2, orgs=(("hosp", "hospital", 1),))
    for block in a.blocks[:2]:
        b.apply(block)
    good = a.blocks[2]
    bad_header = dataclasses.replace(good.header, state_root=b"\x00" * 32)
    forged = sign_block(a.proposer, bad_header, good.txs)
    before, root = dict(b.state.data), b.root
    with pytest.raises(StateRootMismatch, match="computed state root") as info:
        apply_block(b.state, b.apps, forged, b.head, b.is_validator(good.header.height))
    assert f"block {good.header.height}" in str(info.value)
    assert b.state.data == before and b.root == root  # nothing applied
    b.apply(good)
    assert b.root == good.header.state_root


def test_apply_block_raises_state_root_mismatch_for_a_wrong_tx_root() -> None:
    a = _busy_chain()
    b = LocalChain(admins=3, threshold=2, orgs=(("hosp", "hospital", 1),))
    b.apply(a.blocks[0])
    block = a.blocks[1]
    with pytest.raises(StateRootMismatch, match="computed tx root"):
        apply_block(b.state, b.apps, sign_block(a.proposer, dataclasses.replace(block.header, tx_root=b"\x01" * 32),
                                                block.txs), b.head, b.is_validator(2))
    with pytest.raises(StateRootMismatch, match="computed tx root"):  # the txs were swapped under a good header
        apply_block(b.state, b.apps, Block(block.header, block.signature, a.blocks[2].txs), b.head,
                    b.is_validator(2))


def test_apply_block_raises_state_root_mismatch_for_a_wrong_receipt_root() -> None:
    a = _busy_chain()
    b = LocalChain(admins=3, threshold=2, orgs=(("hosp", "hospital", 1),))
    block = a.blocks[0]
    with pytest.raises(StateRootMismatch, match="computed receipt root"):
        apply_block(b.state, b.apps, sign_block(a.proposer, dataclasses.replace(block.header, receipt_root=bytes(32)),
                                                block.txs), b.head, b.is_validator(1))


def test_apply_block_on_a_diverged_state_raises() -> None:
    a = _busy_chain()
    b = LocalChain(admins=3, threshold=2, orgs=(("hosp", "hospital", 1),))
    # Same root claimed, different state underneath (the first proposer's nonce): the outcome differs.
    b.state.commit({nonce_key(b.admins[0].public): (5).to_bytes(8, "big")})
    with pytest.raises(StateRootMismatch, match="block 1 .*computed receipt root"):
        for block in a.blocks:
            b.apply(block)


def test_apply_block_on_another_head_is_a_bad_block() -> None:
    a = _busy_chain()
    b = LocalChain(admins=3, threshold=2, orgs=(("hosp", "hospital", 1),))
    elsewhere = dataclasses.replace(b.head, state_root=b"\x00" * 32)
    with pytest.raises(Rejected, match="prev_hash is not the hash of this node's head") as refused:
        apply_block(b.state, b.apps, a.blocks[0], elsewhere, b.is_validator(1))
    assert refused.value.code == "bad_block"


def test_apply_block_checks_height_chain_time_and_proposer() -> None:
    a = _busy_chain()
    b = LocalChain(admins=3, threshold=2, orgs=(("hosp", "hospital", 1),))
    with pytest.raises(Rejected, match="height 2 does not follow 0"):
        apply_block(b.state, b.apps, a.blocks[1], b.head, b.is_validator(2))
    stranger = key(999)
    unsigned_by_validator = sign_block(stranger, dataclasses.replace(a.blocks[0].header, proposer=stranger.public),
                                       a.blocks[0].txs)
    with pytest.raises(Rejected, match="is not an active validator"):
        apply_block(b.state, b.apps, unsigned_by_validator, b.head, b.is_validator(1))
    forged_signature = Block(a.blocks[0].header, bytes(64), a.blocks[0].txs)
    with pytest.raises(Rejected, match="signature does not verify"):
        apply_block(b.state, b.apps, forged_signature, b.head, b.is_validator(1))
    backwards = sign_block(a.proposer, dataclasses.replace(a.blocks[0].header, time_ms=b.head.time_ms - 1),
                           a.blocks[0].txs)
    with pytest.raises(Rejected, match="time runs backwards"):
        apply_block(b.state, b.apps, backwards, b.head, b.is_validator(1))
    other_chain = sign_block(a.proposer, dataclasses.replace(a.blocks[0].header, chain_id="elsewhere"),
                             a.blocks[0].txs)
    with pytest.raises(Rejected, match="chain id 'elsewhere'"):
        apply_block(b.state, b.apps, other_chain, b.head, b.is_validator(1))
    assert b.height == 0 and b.root == b.block0.header.state_root  # nothing applied


def test_blocks_chain_by_prev_hash() -> None:
    a = _busy_chain()
    prev = a.block0.hash
    for block in a.blocks:
        assert block.header.prev_hash == prev
        prev = block.hash
