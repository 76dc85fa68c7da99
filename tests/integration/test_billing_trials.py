"""Billing and trials through a real node process and hcwallet: flags in receipts, patient views,
disputes and withdrawals with the patient's own key, reports with --csv, dataset verification, and
the wallet's clear errors for float and negative amounts."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

import pytest

from hcnode.apps.registry import patient_id
from hcnode.wallet import cli

pytestmark = pytest.mark.slow


@pytest.fixture
def hcw(dev_node: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HCWALLET_PASSPHRASE", dev_node.passphrase)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(["--keystore", str(dev_node.keystore), "--socket", str(dev_node.socket), *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def submit(hcw: Any, key: str, tx_type: str, payload: dict[str, Any], *, expect: int = 0) -> dict[str, Any]:
    code, out, err = hcw("--json", "submit", tx_type, "--key", key, "--json", json.dumps(payload))
    assert code == expect, (code, out, err)
    return json.loads(out) if out.strip() else {"error": err}


def new_key(hcw: Any, name: str) -> str:
    code, out, err = hcw("--json", "key", "new", name)
    assert code == 0, err
    return json.loads(out)["public"]  # type: ignore[no-any-return]


def add_org(hcw: Any, org: str, kind: str) -> None:
    admin = new_key(hcw, f"{org}-admin")
    submit(hcw, "admin", "registry.propose", {"action": {"kind": "org_add", "org": org, "name": org.title(),
                                                         "org_kind": kind, "admins": [admin]}})


def add_member(hcw: Any, org: str, name: str, roles: list[str], by: str | None = None) -> None:
    submit(hcw, by or f"{org}-admin", "registry.member_add",
           {"org": org, "name": name, "key": new_key(hcw, name), "roles": roles})


def test_billing_and_trials_end_to_end_over_the_socket(hcw: Any, tmp_path: Any) -> None:
    add_org(hcw, "acme-health", "insurer")
    add_org(hcw, "helix", "sponsor")
    add_member(hcw, "acme-health", "scheduler", ["fee_schedule_manager"])
    add_member(hcw, "acme-health", "adjuster", ["claims_adjuster"])
    add_member(hcw, "st-mary", "clerk", ["billing_clerk"], by="stmary-admin")
    add_member(hcw, "st-mary", "dr-ng", ["investigator"], by="stmary-admin")
    add_member(hcw, "helix", "lead", ["trial_sponsor"])
    patient = patient_id(bytes.fromhex(new_key(hcw, "pat")))
    assert hcw("register-patient", "--key", "pat")[0] == 0

    submit(hcw, "scheduler", "billing.schedule_publish", {
        "version": 1, "effective_from": "2025-01-01", "currency": "USD",
        "entries": [{"code": "99213", "max_amount": 10_000}, {"code": "80053", "max_amount": 2_000}]})
    claim = {"patient": patient, "payer": "acme-health", "currency": "USD", "diagnoses": ["E11.9"],
             "items": [{"sequence": 1, "code": "99213", "quantity": 1, "unit_price": 9_500,
                        "date_of_service": "2025-12-20"}]}

    # amounts: a float or a negative never reaches the node, with a message that says why
    for bad, text in ((95.5, "whole minor units"), (-1, "cannot be negative")):
        wrong = json.loads(json.dumps(claim))
        wrong["items"][0]["unit_price"] = bad
        code, out, err = hcw("submit", "billing.claim_submit", "--key", "clerk", "--json", json.dumps(wrong))
        assert code == 2 and text in err and "payload.items[0].unit_price" in err, err
    code, _, err = hcw("submit", "billing.claim_submit", "--key", "clerk", "--json",
                       json.dumps({**claim, "diagnoses": ["diabetes"]}))
    assert code == 2 and "ICD-10" in err

    first = submit(hcw, "clerk", "billing.claim_submit", claim)["receipt"]
    assert first["flags"] == ["no_anchored_encounter"]
    again = submit(hcw, "clerk", "billing.claim_submit", claim)["receipt"]
    assert "duplicate_claim" in again["flags"]
    above = json.loads(json.dumps(claim))
    above["items"][0].update(code="80053", unit_price=3_000)
    above_receipt = submit(hcw, "clerk", "billing.claim_submit", above)["receipt"]
    event = next(e for e in above_receipt["events"] if e.get("flag") == "above_schedule")
    assert event["excess"] == 1_000

    code, out, err = hcw("--json", "billing", "claims", "--key", "pat")
    assert code == 0, err
    claims = json.loads(out)["claims"]
    assert len(claims) == 3
    code, _, err = hcw("billing", "claims", "--key", "clerk")
    assert code != 0 and "'clerk' is not a registered patient's key" in err
    duplicate = next(c["id"] for c in claims if any(f["flag"] == "duplicate_claim" for f in c["flags"]))
    code, out, err = hcw("billing", "dispute", duplicate, "--key", "pat", "--reason", "billed twice")
    assert code == 0, err
    code, out, err = hcw("billing", "dispute", duplicate, "--key", "clerk", "--reason", "x")
    assert code == 1 and "missing_role" in out

    code, out, err = hcw("billing", "report")
    assert code == 0 and "st-mary" in out and "duplicate_claim" in out, err
    code, out, err = hcw("billing", "report", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    provider = next(r for r in rows if r["side"] == "provider")
    assert provider["org"] == "st-mary" and provider["claims"] == "3" and provider["flagged_claims"] == "3"
    assert provider["above_schedule_excess"] == "1000" and provider["disputes"] == "1"

    # trials: an overdue trial, a participant's withdrawal with her own key, a dataset check
    submit(hcw, "lead", "trials.register", {
        "registry_id": "NCT90000002", "title": "Late", "protocol_hash": "00" * 32,
        "primary_outcomes": [{"measure": "Mortality", "time_frame": "1 year"}], "planned_enrolment": 100,
        "primary_completion": "2023-05", "sites": ["st-mary"]})
    submit(hcw, "dr-ng", "trials.enrol", {"trial": "NCT90000002", "participant": patient,
                                          "consent_version": "11" * 32})
    data = tmp_path / "export.csv"
    data.write_bytes(b"participant,visit\n1,baseline\n")
    submit(hcw, "dr-ng", "trials.commit_dataset", {"trial": "NCT90000002", "label": "baseline",
                                                   "dataset_hash": hashlib.sha256(data.read_bytes()).hexdigest()})
    assert hcw("trials", "verify-dataset", "NCT90000002", str(data))[0] == 0
    data.write_bytes(b"participant,visit\n1,baseline (edited)\n")
    code, out, _ = hcw("trials", "verify-dataset", "NCT90000002", str(data))
    assert code == 1 and "NOT committed" in out
    assert hcw("trials", "withdraw", "NCT90000002", "--key", "dr-ng")[0] == 1
    assert hcw("trials", "withdraw", "NCT90000002", "--key", "pat")[0] == 0
    code, out, err = hcw("trials", "report", "--csv")
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["trial"] == "NCT90000002" and row["status"] == "overdue" and row["due"] == "2024-06-30"
    code, out, err = hcw("trials", "report", "--csv", "league")
    [league] = list(csv.DictReader(io.StringIO(out)))
    assert league["sponsor"] == "helix" and league["unreported"] == "1" and league["on_time_share"] == "0.0%"
    code, out, err = hcw("--json", "trials", "show", "NCT90000002")
    shown = json.loads(out)
    assert shown["status"] == "overdue" and shown["withdrawn"] == 1 and "month_only_date" in shown["labels"]

    # after a key rotation the patient's id is no longer derivable from the key: the wallet asks the chain
    assert hcw("rotate", "--key", "pat", "--new", "pat-2")[0] == 0
    code, out, err = hcw("--json", "billing", "claims", "--key", "pat-2")
    assert code == 0, err
    assert {c["id"] for c in json.loads(out)["claims"]} == {c["id"] for c in claims}
