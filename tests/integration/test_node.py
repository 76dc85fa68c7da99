"""The real ``hcnode`` process over its real socket: commit, restart, kill -9, and bad input.

Each test drives a node started by the ``dev_node`` fixture and speaks to it only
over JSON-RPC, as wallets do. The kill -9 test replays every stored block from
genesis through the pure core and demands the node's state root.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hcnode import codec, crypto
from hcnode.apps import default_apps
from hcnode.chain import Block, MemoryState, apply_block, build_tx, genesis_block
from hcnode.config import load_config
from hcnode.node.daemon import load_node_key, resolve_genesis
from hcnode.wallet.client import RpcCallError, RpcClient
from hcnode.wallet.keystore import Keystore
from hcnode.wallet.proofs import header_from_json, verify_tx_proof

pytestmark = pytest.mark.slow


def dev_key(node, name: str) -> crypto.PrivateKey:
    return Keystore(node.keystore).load(name, node.passphrase)


def submit(client: RpcClient, node, key: crypto.PrivateKey, tx_type: str, payload: dict) -> dict:
    nonce = client.call("account.nonce", key=key.public.hex())["next"]
    raw = build_tx(key, node.chain_id, tx_type, nonce, payload)
    sent = client.call("tx.submit", tx=raw.hex())
    return client.call("tx.wait", tx=sent["tx"], timeout_ms=10_000)


def raw_line(node, line: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(node.socket))
        sock.sendall(line)
        return json.loads(sock.makefile("rb").readline())


def replayed_state_root(node) -> tuple[bytes, int]:
    """Apply every stored block from genesis in a fresh in-memory state; returns (root, height)."""
    config = load_config(node.config_path)
    genesis = resolve_genesis(config, load_node_key(config, create=False), announce=lambda m: None)
    apps = default_apps()
    block0, writes = genesis_block(genesis, apps)
    state = MemoryState()
    state.commit(writes)
    root = block0.header.state_root
    with node.client() as client:
        head = client.call("block.head")
        assert head["hash"] != block0.hash.hex() or head["height"] == 0
        for height in range(1, head["height"] + 1):
            block_json = client.call("block.get", height=height, txs=True)
            txs = tuple(bytes.fromhex(t) for t in block_json["txs"])
            header = block_json
            block = Block(header_from_json(header), bytes.fromhex(header["signature"]), txs)
            assert block.hash.hex() == header["hash"]
            assert block.signature_ok(), f"block {height} signature"
            result = apply_block(state, apps, block, root)  # raises on any root mismatch
            state.commit(result.writes)
            root = result.state_root
    return root, head["height"]


def test_committed_tx_has_receipt_block_and_verifiable_proof(dev_node):
    admin = dev_key(dev_node, "stmary-admin")
    with dev_node.client() as client:
        outcome = submit(client, dev_node, admin, "registry.member_add",
                         {"org": "st-mary", "name": "dr-ng", "key": crypto.PrivateKey.generate().public,
                          "roles": ["clinician"]})
        assert outcome["status"] == "committed"
        receipt = outcome["receipt"]
        assert receipt["status"] == "ok"
        assert client.call("tx.get", tx=receipt["tx"])["receipt"] == receipt
        proof = client.call("tx.proof", tx=receipt["tx"])
        checks = verify_tx_proof(proof, receipt["tx"])
        assert checks and all(checks.values()), checks
        assert proof["receipt"] == receipt
        by_hash = client.call("block.get", hash=proof["header"]["hash"])
        assert by_hash["height"] == receipt["height"] and receipt["tx"] in by_hash["tx_hashes"]
        assert client.call("registry.member", member="st-mary/dr-ng")["roles"] == ["clinician"]


def test_socket_is_private_to_the_node_user(dev_node):
    assert stat.S_IMODE(os.stat(dev_node.socket).st_mode) == 0o600


def test_restart_keeps_blocks_receipts_and_state(dev_node):
    admin = dev_key(dev_node, "stmary-admin")
    with dev_node.client() as client:
        receipts = [submit(client, dev_node, admin, "registry.member_add",
                           {"org": "st-mary", "name": f"nurse-{i}", "key": crypto.PrivateKey.generate().public,
                            "roles": ["clinician"]})["receipt"] for i in range(5)]
        before = client.call("node.info")
    assert dev_node.stop() == 0
    dev_node.start()
    with dev_node.client() as client:
        after = client.call("node.info")
        assert (after["height"], after["head"], after["state_root"]) == (
            before["height"], before["head"], before["state_root"])
        for receipt in receipts:
            assert client.call("tx.get", tx=receipt["tx"]) == {"status": "committed", "receipt": receipt}
        assert len(client.call("registry.org", org="st-mary")["members"]) == 6
        # and it goes on committing after the restart, with the sender's nonce where it was
        assert submit(client, dev_node, admin, "registry.member_add",
                      {"org": "st-mary", "name": "nurse-5", "key": crypto.PrivateKey.generate().public,
                       "roles": ["clinician"]})["receipt"]["status"] == "ok"


def test_kill_9_during_a_stream_loses_no_committed_tx_and_state_equals_replay(dev_node):
    committed: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def stream() -> None:
        # patient self-registrations from fresh keys, in batches; "committed" only once tx.wait says so
        try:
            with dev_node.client(timeout=10) as client:
                while not stop.is_set():
                    batch = [build_tx(crypto.PrivateKey.generate(), dev_node.chain_id,
                                      "registry.patient_register", 0, {}) for _ in range(50)]
                    sent = client.call("tx.submit_batch", txs=[tx.hex() for tx in batch])
                    for item in sent["results"]:
                        done = client.call("tx.wait", tx=item["tx"], timeout_ms=5000)
                        if done["status"] == "committed":
                            committed.append(item["tx"])
        except (ConnectionError, OSError, RpcCallError):
            pass  # the node was killed under us: expected
        except BaseException as exc:  # anything else is a test failure
            errors.append(exc)

    thread = threading.Thread(target=stream)
    thread.start()
    deadline = time.monotonic() + 30
    while len(committed) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    dev_node.proc.send_signal(signal.SIGKILL)  # mid-stream, at whatever instant this is
    dev_node.proc.wait()
    dev_node.proc = None
    stop.set()
    thread.join(timeout=30)
    assert not errors, errors
    assert len(committed) >= 300, "the stream did not get going"
    dev_node.start()
    with dev_node.client() as client:
        for tx_hash in committed:
            assert client.call("tx.get", tx=tx_hash)["status"] == "committed", tx_hash
        info = client.call("node.info")
    root, height = replayed_state_root(dev_node)
    assert height == info["height"]
    assert root.hex() == info["state_root"]


def test_sigint_shuts_down_cleanly(dev_node):
    dev_node.proc.send_signal(signal.SIGINT)
    assert dev_node.proc.wait(timeout=20) == 0
    dev_node.proc = None
    assert not dev_node.socket.exists(), "the socket file is removed on shutdown"


def test_second_node_on_the_same_data_dir_is_refused(dev_node):
    second = subprocess.run([sys.executable, "-m", "hcnode", "--config", str(dev_node.config_path)],
                            capture_output=True, text=True, timeout=30, env=dev_node.env())
    assert second.returncode == 2
    assert "another hcnode" in second.stderr
    with dev_node.client() as client:
        assert client.call("node.info")["chain_id"] == dev_node.chain_id


def test_config_typo_stops_start_up_naming_the_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(Path(__file__).parents[2].joinpath("configs/dev.toml").read_text().replace(
        "max_txs = 5000", "max_tx = 5000"))
    result = subprocess.run([sys.executable, "-m", "hcnode", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "block.max_tx: unknown key" in result.stderr
    assert not (tmp_path / "data").exists(), "nothing is created from a bad config"


# --- bad input: each gets a clear error and the node keeps serving -----------------------------


def test_bad_requests_get_clear_errors_and_the_node_keeps_serving(dev_node):
    admin = dev_key(dev_node, "stmary-admin")
    stranger = crypto.PrivateKey.generate()
    good = build_tx(admin, dev_node.chain_id, "registry.member_add", 0,
                    {"org": "st-mary", "name": "x", "key": stranger.public, "roles": ["clinician"]})
    tampered = bytearray(good)
    tampered[-1] ^= 1
    cases = {
        b"{not json\n": (-32700, "not valid JSON"),
        b'{"jsonrpc":"2.0","id":1,"method":"no.such"}\n': (-32601, "unknown method"),
        b'{"jsonrpc":"2.0","id":1,"method":"tx.get","params":{"tx":42}}\n': (-32602, "tx: expected a hex string"),
        b'{"jsonrpc":"2.0","id":1,"method":"tx.get","params":{"tx":"abcd"}}\n': (-32602, "expected 32 bytes"),
        b'{"jsonrpc":"2.0","id":1,"method":"block.get","params":{"height":"1"}}\n': (-32602, "height: expected an integer"),
        b'{"jsonrpc":"2.0","id":1,"method":"tx.wait","params":{"tx":"' + b"00" * 32 + b'","bogus":1}}\n':
            (-32602, "unknown parameter 'bogus'"),
        b'{"jsonrpc":"2.0","id":1,"method":"tx.submit","params":{"tx":"ff00ff"}}\n': (-32000, "malformed CBOR"),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tx.submit",
                    "params": {"tx": bytes(tampered).hex()}}).encode() + b"\n": (-32000, "signature does not verify"),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tx.submit", "params": {"tx": build_tx(
            admin, "other-chain", "registry.patient_register", 0, {}).hex()}}).encode() + b"\n":
            (-32000, "is for chain 'other-chain'"),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tx.submit", "params": {"tx": build_tx(
            admin, dev_node.chain_id, "registry.no_such", 0, {}).hex()}}).encode() + b"\n":
            (-32000, "unknown transaction type"),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tx.submit", "params": {"tx": build_tx(
            admin, dev_node.chain_id, "registry.member_add", 0, {"org": "st-mary"}).hex()}}).encode() + b"\n":
            (-32000, "missing field 'name'"),
    }
    for line, (code, text) in cases.items():
        response = raw_line(dev_node, line)
        assert response["error"]["code"] == code, (line[:80], response)
        assert text in response["error"]["message"], (line[:80], response)
    with dev_node.client() as client:
        # a replayed nonce: the first one commits, the same nonce again (other content) is refused
        assert client.call("tx.submit", tx=good.hex())["status"] == "accepted"
        assert client.call("tx.wait", tx=codec.sha256(good).hex())["receipt"]["status"] == "ok"
        replay = build_tx(admin, dev_node.chain_id, "registry.member_add", 0,
                          {"org": "st-mary", "name": "z", "key": crypto.PrivateKey.generate().public,
                           "roles": ["clinician"]})
        with pytest.raises(RpcCallError) as rejected:
            client.call("tx.submit", tx=replay.hex())
        assert rejected.value.reason == "replayed_nonce"
        # resubmitting a committed transaction is idempotent, not an error
        assert client.call("tx.submit", tx=good.hex())["status"] == "committed"
        # a key without the role: committed, rejected in its receipt, naming the role
        receipt = submit(client, dev_node, stranger, "registry.member_add",
                         {"org": "acme-pharma", "name": "w", "key": crypto.PrivateKey.generate().public,
                          "roles": ["admin"]})["receipt"]
        assert receipt["status"] == "rejected" and receipt["code"] == "missing_role"
        assert "needs role 'admin' in organisation 'acme-pharma'" in receipt["message"]
        assert client.call("node.info")["halted"] is None


def test_oversized_line_closes_only_that_connection(dev_node):
    limit = 32 * 1024 * 1024
    with dev_node.client() as bystander, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hog:
        hog.settimeout(30)
        hog.connect(str(dev_node.socket))
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(limit // len(chunk) + 2):
                hog.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the node closed it once the line passed the limit
        response = json.loads(hog.makefile("rb").readline())
        assert response["error"]["code"] == -32600
        assert "exceeds" in response["error"]["message"]
        assert bystander.call("node.info")["chain_id"] == dev_node.chain_id


def test_truncated_request_and_a_stalled_client_do_not_block_others(dev_node):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stalled:
        stalled.connect(str(dev_node.socket))
        stalled.sendall(b'{"jsonrpc":"2.0","id":1,"method":"node.in')  # and never finishes the line
        with dev_node.client() as other:
            assert other.call("block.head")["height"] >= 0
        stalled.shutdown(socket.SHUT_WR)
        response = json.loads(stalled.makefile("rb").readline())
        assert response["error"]["code"] == -32700 and "truncated" in response["error"]["message"]


def test_connections_beyond_the_limit_are_refused_and_the_rest_keep_working(dev_node):
    held = [dev_node.client() for _ in range(64)]
    try:
        for client in held[:3]:
            client.call("node.info")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as extra:
            extra.settimeout(10)
            extra.connect(str(dev_node.socket))
            response = json.loads(extra.makefile("rb").readline())
            assert response["error"]["code"] == -32002 and "too many connections" in response["error"]["message"]
        assert held[-1].call("node.info")["chain_id"] == dev_node.chain_id
    finally:
        for client in held:
            client.close()
    with dev_node.client() as again:
        assert again.call("node.info")["chain_id"] == dev_node.chain_id


def test_mempool_full_is_a_clear_error(dev_node):
    # A node with a tiny mempool and a long block interval, so the pool fills.
    dev_node.stop()
    text = dev_node.config_path.read_text()
    text = text.replace("mempool_txs = 200000", "mempool_txs = 3").replace("interval_ms = 20", "interval_ms = 5000")
    dev_node.config_path.write_text(text)
    dev_node.start()
    with dev_node.client() as client:
        txs = [build_tx(crypto.PrivateKey.generate(), dev_node.chain_id, "registry.patient_register", 0, {})
               for _ in range(4)]
        for tx in txs[:3]:
            assert client.call("tx.submit", tx=tx.hex())["status"] == "accepted"
        with pytest.raises(RpcCallError) as full:
            client.call("tx.submit", tx=txs[3].hex())
        assert full.value.code == -32002 and full.value.reason == "mempool_full"
        assert client.call("tx.submit", tx=txs[0].hex())["status"] == "pending"  # dedupe by hash


def test_garbage_cbor_never_reaches_the_chain(dev_node):
    with dev_node.client() as client:
        results = client.call("tx.submit_batch", txs=["", "00", "a1", "ff" * 70000, codec.encode([1]).hex()])
        codes = [r["error"]["code"] for r in results["results"]]
        assert codes == ["bad_encoding", "bad_envelope", "bad_encoding", "too_large", "bad_envelope"]
        assert client.call("node.info")["mempool"] == 0
