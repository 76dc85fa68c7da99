"""hcwallet against a real node process: keys, signed transactions, receipts, rotation, proofs, queries.

The wallet runs in-process through ``main([...])`` (output captured with capsys),
and once as a real ``python -m hcnode.wallet.cli`` subprocess.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from hcnode.apps.registry import patient_id
from hcnode.wallet import cli

pytestmark = pytest.mark.slow


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)  # fails unless stdout is exactly one JSON document


Wallet = Callable[..., Run]


@pytest.fixture
def hcw(dev_node: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Wallet:
    """Run hcwallet in-process against ``dev_node`` with the dev keystore and passphrase."""
    monkeypatch.delenv("HCWALLET_KEYSTORE", raising=False)
    monkeypatch.delenv("HCNODE_SOCKET", raising=False)

    def run(*argv: str, passphrase: str | None = "dev") -> Run:
        if passphrase is None:
            monkeypatch.delenv("HCWALLET_PASSPHRASE", raising=False)
        else:
            monkeypatch.setenv("HCWALLET_PASSPHRASE", passphrase)
        capsys.readouterr()
        code = cli.main(["--keystore", str(dev_node.keystore), "--socket", str(dev_node.socket), *argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def new_key(hcw: Wallet, name: str) -> str:
    run = hcw("--json", "key", "new", name)
    assert run.code == 0, run.err
    return run.json()["public"]  # type: ignore[no-any-return]


def add_member(hcw: Wallet, name: str, roles: list[str], *, by: str = "stmary-admin", org: str = "st-mary") -> Run:
    payload = {"org": org, "name": name, "key": new_key(hcw, name), "roles": roles}
    return hcw("submit", "registry.member_add", "--key", by, "--json", json.dumps(payload))


def assert_one_clear_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hcwallet: "), err
    assert "Traceback" not in err


# --- keys -------------------------------------------------------------------------------------------------


def test_key_new_writes_a_0600_file_that_list_and_show_report(hcw: Wallet, dev_node: Any) -> None:
    created = hcw("key", "new", "carol")
    assert created.code == 0, created.err
    public = hcw("--json", "key", "show", "carol").json()["public"]
    assert "carol" in created.out and public in created.out

    path = dev_node.keystore / "carol.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(dev_node.keystore.stat().st_mode) == 0o700

    listed = hcw("key", "list")
    assert listed.code == 0
    assert any(line.split() == ["carol", public] for line in listed.out.splitlines())
    assert {"admin", "stmary-admin", "acme-admin"} <= {k["name"] for k in hcw("--json", "key", "list").json()}

    shown = hcw("key", "show", "carol")
    assert shown.code == 0
    assert public in shown.out and str(path) in shown.out
    assert "identity: unregistered" in shown.out


def test_key_show_names_the_on_chain_identity_of_a_dev_key(hcw: Wallet) -> None:
    shown = hcw("key", "show", "stmary-admin")
    assert shown.code == 0, shown.err
    assert "identity: st-mary/admin-1 (member, active)" in shown.out


def test_key_new_refuses_an_existing_name(hcw: Wallet) -> None:
    run = hcw("key", "new", "admin")
    assert run.code == 2
    assert_one_clear_line(run.err)
    assert "already exists" in run.err


def test_key_new_asks_twice_and_refuses_two_different_passphrases(
        hcw: Wallet, dev_node: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["first secret", "second secret"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    run = hcw("key", "new", "dave", passphrase=None)
    assert run.code == 2
    assert "passphrases differ" in run.err
    assert not (dev_node.keystore / "dave.json").exists()


def test_wrong_passphrase_is_one_clear_line_and_exit_2(hcw: Wallet) -> None:
    payload = {"org": "st-mary", "name": "erin", "key": new_key(hcw, "erin"), "roles": ["clinician"]}
    run = hcw("submit", "registry.member_add", "--key", "stmary-admin", "--json", json.dumps(payload),
              passphrase="not-dev")
    assert run.code == 2
    assert_one_clear_line(run.err)
    assert "wrong passphrase" in run.err and "stmary-admin" in run.err
    assert run.out == ""


# --- transactions and receipts ------------------------------------------------------------------------------


def test_org_admin_adds_a_member_and_gets_an_ok_receipt(hcw: Wallet) -> None:
    run = add_member(hcw, "alice", ["clinician"])
    assert run.code == 0, run.err
    assert "status: ok" in run.out
    assert "registry.member_added" in run.out and "st-mary/alice" in run.out
    alice_key = hcw("--json", "key", "show", "alice").json()["public"]

    member = hcw("--json", "member", "st-mary/alice").json()
    assert member["roles"] == ["clinician"] and member["key"] == alice_key and member["status"] == "active"


def test_member_add_by_a_key_without_the_admin_role_is_rejected_naming_the_role(hcw: Wallet) -> None:
    assert add_member(hcw, "alice", ["clinician"]).code == 0
    run = add_member(hcw, "mallory", ["admin"], by="alice")
    assert run.code == 1
    assert "status:  rejected" in run.out
    assert "missing_role" in run.out
    assert "needs role 'admin' in organisation 'st-mary'" in run.out
    assert hcw("member", "st-mary/mallory").code == 1  # nothing was written


def test_rotate_keeps_the_member_identity_and_moves_it_to_the_new_key(hcw: Wallet) -> None:
    assert add_member(hcw, "alice", ["clinician"]).code == 0
    old_key = hcw("--json", "key", "show", "alice").json()["public"]

    run = hcw("rotate", "--key", "alice", "--new", "alice-2")
    assert run.code == 0, run.err
    assert "registry.key_rotated" in run.out and "(created)" in run.out
    new_public = hcw("--json", "key", "show", "alice-2").json()["public"]

    member = hcw("--json", "member", "st-mary/alice").json()
    assert member["id"] == "st-mary/alice" and member["roles"] == ["clinician"]
    assert member["key"] == new_public
    assert [entry["key"] for entry in member["keys"]] == [old_key, new_public]
    assert "identity: st-mary/alice (member, active)" in hcw("key", "show", "alice-2").out
    assert hcw("--json", "member", new_public).json()["id"] == "st-mary/alice"


def test_register_patient_shows_the_pseudonymous_id_derived_from_the_key(hcw: Wallet) -> None:
    public = new_key(hcw, "pat")
    run = hcw("register-patient", "--key", "pat")
    assert run.code == 0, run.err
    assert f"patient: {patient_id(bytes.fromhex(public))}" in run.out


def test_tx_shows_the_receipt_and_tx_proof_verifies_against_the_block(hcw: Wallet) -> None:
    submitted = hcw("--json", "submit", "registry.member_add", "--key", "stmary-admin", "--json",
                    json.dumps({"org": "st-mary", "name": "bob", "key": new_key(hcw, "bob"), "roles": ["nurse"]}))
    assert submitted.code == 0, submitted.err
    tx_hash = submitted.json()["tx"]

    shown = hcw("tx", tx_hash)
    assert shown.code == 0 and "status: ok" in shown.out and f"tx:     {tx_hash}" in shown.out
    assert hcw("tx", "wait", tx_hash).code == 0

    proof = hcw("tx", "proof", tx_hash)
    assert proof.code == 0, proof.err
    assert proof.out.strip().endswith("proof verified")
    checked = hcw("--json", "tx", "proof", tx_hash).json()
    assert checked["verified"] is True and all(checked["checks"].values())
    assert checked["header"]["height"] == submitted.json()["receipt"]["height"]


def test_tx_wait_for_an_unknown_transaction_exits_1_when_the_time_is_up(hcw: Wallet) -> None:
    run = hcw("tx", "wait", "ab" * 32, "--timeout-ms", "50")
    assert run.code == 1
    assert "status: unknown" in run.out
    assert_one_clear_line(run.err)
    assert "not committed within 50 ms" in run.err


# --- bad input ------------------------------------------------------------------------------------------------


def test_bad_json_payload_exits_2_naming_the_problem_and_submits_nothing(hcw: Wallet) -> None:
    admin_key = hcw("--json", "key", "show", "stmary-admin").json()["public"]
    cases = [
        ('{"org": "st-mary",', "not valid JSON"),
        ('["st-mary"]', "must be a JSON object, got a list"),
        ('{"org": "st-mary", "name": "x", "key": "zz", "roles": ["nurse"]}', "payload.key: 'zz' is not valid hex"),
        ('{"org": "st-mary", "name": "x", "key": "02ab", "roles": ["nurse"]}', "payload.key: expected 33 bytes"),
        ('{"org": "st-mary", "name": "x", "roles": ["nurse"]}', "missing field 'key'"),
    ]
    for payload, problem in cases:
        run = hcw("submit", "registry.member_add", "--key", "stmary-admin", "--json", payload)
        assert run.code == 2, payload
        assert_one_clear_line(run.err)
        assert problem in run.err, run.err
    nonce = hcw("--json", "query", "account.nonce", f"key={admin_key}").json()
    assert nonce == {"committed": 0, "next": 0}


def test_unknown_transaction_type_lists_valid_ones(hcw: Wallet) -> None:
    run = hcw("submit", "registry.memberadd", "--key", "stmary-admin", "--json", "{}")
    assert run.code == 2
    assert_one_clear_line(run.err)
    assert "unknown transaction type 'registry.memberadd'" in run.err and "registry.member_add" in run.err


def test_unreachable_node_is_one_clear_line_and_exit_2(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--socket", str(tmp_path / "no.sock"), "info"])
    captured = capsys.readouterr()
    assert code == 2
    assert_one_clear_line(captured.err)
    assert "cannot reach the node" in captured.err


# --- output, queries, blocks -------------------------------------------------------------------------------------


def test_json_output_is_exactly_one_document_per_command(hcw: Wallet, dev_node: Any) -> None:
    assert hcw("--json", "info").json()["chain_id"] == dev_node.chain_id
    assert {org["id"] for org in hcw("--json", "orgs").json()} == {"acme-pharma", "st-mary"}
    assert hcw("--json", "block", "head").json()["height"] == 0
    assert hcw("--json", "key", "list").json()
    assert hcw("--json", "proposals").json() == []
    failed = hcw("--json", "org", "no-such-org")
    assert failed.code == 1 and "no organisation 'no-such-org'" in failed.json()["error"]


def test_readable_output_is_aligned_lines_not_raw_dicts(hcw: Wallet) -> None:
    run = hcw("org", "st-mary")
    assert run.code == 0
    assert "{" not in run.out and "'" not in run.out.replace("St Mary's", "")
    assert "name:    St Mary's Hospital" in run.out
    assert "members:\n  - id:" in run.out


def test_query_takes_named_params_and_matches_the_shortcuts(hcw: Wallet) -> None:
    queried = hcw("--json", "query", "registry.org", "org=st-mary")
    assert queried.code == 0
    assert queried.json() == hcw("--json", "org", "st-mary").json()
    assert queried.json()["name"] == "St Mary's Hospital"
    member = hcw("--json", "query", "registry.member", "member=st-mary/admin-1").json()
    assert member == hcw("--json", "member", "st-mary/admin-1").json()

    wrong = hcw("query", "registry.org", "organisation=st-mary")
    assert wrong.code == 2 and "allowed: org" in wrong.err


def test_block_by_height_hash_and_head_agree(hcw: Wallet) -> None:
    assert add_member(hcw, "alice", ["clinician"]).code == 0
    head = hcw("--json", "block").json()
    assert head["height"] >= 1
    by_height = hcw("--json", "block", str(head["height"])).json()
    by_hash = hcw("--json", "block", head["hash"]).json()
    assert head == by_height == by_hash
    assert len(head["tx_hashes"]) == head["tx_count"]


def test_the_node_restarts_and_the_wallet_sees_the_same_chain(hcw: Wallet, dev_node: Any) -> None:
    assert add_member(hcw, "alice", ["clinician"]).code == 0
    before = hcw("--json", "info").json()
    assert dev_node.stop() == 0
    assert hcw("info").code == 2
    dev_node.start()
    after = hcw("--json", "info").json()
    assert (after["height"], after["head"]) == (before["height"], before["head"])
    assert hcw("--json", "member", "st-mary/alice").json()["roles"] == ["clinician"]


# --- as a real process -------------------------------------------------------------------------------------------


def test_hcwallet_runs_as_a_real_process(dev_node: Any) -> None:
    base = [sys.executable, "-m", "hcnode.wallet.cli", "--keystore", str(dev_node.keystore),
            "--socket", str(dev_node.socket)]
    env = {**dev_node.env(), "HCWALLET_PASSPHRASE": "dev"}
    ok = subprocess.run([*base, "--json", "info"], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["chain_id"] == dev_node.chain_id

    submitted = subprocess.run([*base, "register-patient", "--key", "stmary-admin"], check=False,
                               capture_output=True, text=True, env=env, timeout=60)
    assert submitted.returncode == 1  # a member's key is already registered: the receipt says so
    assert "key_in_use" in submitted.stdout

    bad = subprocess.run([*base, "submit", "registry.member_add", "--key", "stmary-admin", "--json", "{oops"],
                         check=False, capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2
    assert_one_clear_line(bad.stderr)
    assert "not valid JSON" in bad.stderr
