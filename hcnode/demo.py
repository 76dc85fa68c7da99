"""``hcnode demo``: a real 3-node testnet in a temporary directory and a short story through what exists.

Owns: the scripted story and its narration. Must not reach into the node: it
starts three real ``hcnode`` processes (``hcnode.testnet``) and speaks to it only over the Unix-socket
RPC, exactly as a wallet or an integration would.

Each domain app adds a chapter: a function ``chapter(story)`` appended to
``CHAPTERS``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hcnode import crypto
from hcnode.apps.drugs.app import AS_PURPOSE as DRUGS_AS_PURPOSE
from hcnode.apps.drugs.app import query_proof as drugs_query_proof
from hcnode.apps.registry import patient_id, rotation_proof
from hcnode.chain import build_tx
from hcnode.testnet import Testnet
from hcnode.wallet.client import RpcCallError, RpcClient
from hcnode.wallet.proofs import verify_tx_proof

__all__ = ["run_demo", "Story", "CHAPTERS", "start_node_process"]

CHAIN_ID = "hcnode-demo"


def _say(text: str = "") -> None:
    print(text, flush=True)


class Story:
    """The cast (keys by name), the RPC connection, and a way to act and narrate."""

    def __init__(self, client: RpcClient, keys: dict[str, crypto.PrivateKey]) -> None:
        self.client = client
        self.keys = keys
        self.results: dict[str, Any] = {}

    def key(self, name: str) -> crypto.PrivateKey:
        if name not in self.keys:
            self.keys[name] = crypto.PrivateKey.generate()
        return self.keys[name]

    def act(self, who: str, tx_type: str, payload: dict[str, Any], *, expect: str = "ok") -> dict[str, Any]:
        """Sign as ``who``, submit, wait for the block, print the outcome and check it is ``expect``."""
        key = self.key(who)
        nonce = self.client.call("account.nonce", key=key.public.hex())["next"]
        raw = build_tx(key, CHAIN_ID, tx_type, nonce, payload)
        submitted = self.client.call("tx.submit", tx=raw.hex())
        outcome = self.client.call("tx.wait", tx=submitted["tx"], timeout_ms=10_000)
        if outcome["status"] != "committed":
            raise RuntimeError(f"{tx_type} by {who} was not committed: {outcome}")
        receipt = outcome["receipt"]
        if receipt["status"] == "ok":
            line = f"    ok      block {receipt['height']}: {tx_type} by {who}"
        else:
            line = f"    REJECTED block {receipt['height']}: {tx_type} by {who} -> {receipt['code']}: {receipt['message']}"
        _say(line)
        for flag in receipt["flags"]:
            _say(f"            flag: {flag}")
        if receipt["status"] != expect:
            raise RuntimeError(f"expected {expect}, got {receipt['status']}: {receipt}")
        return receipt  # type: ignore[no-any-return]

    def query(self, method: str, **params: Any) -> Any:
        return self.client.call(method, **params)


def chapter_consortium(story: Story) -> None:
    _say("1. Governance: three consortium admins; adding an organisation takes 2 of their 3 approvals.")
    receipt = story.act("admin-1", "registry.propose", {"action": {
        "kind": "org_add", "org": "northside-pharmacy", "name": "Northside Pharmacy", "org_kind": "pharmacy",
        "admins": [story.key("northside-admin").public]}})
    proposal = next(e for e in receipt["events"] if e["kind"] == "registry.proposed")["proposal"]
    _say(f"            proposal {proposal[:12]}… is open with 1 of 2 approvals; the pharmacy does not exist yet")
    story.act("admin-2", "registry.approve", {"proposal": proposal})
    org = story.query("registry.org", org="northside-pharmacy")
    _say(f"            -> {org['name']} is now a {org['kind']} ({org['status']}), admin {org['members'][0]['id']}")
    _say()


def chapter_members(story: Story) -> None:
    _say("2. Members: each organisation's admins add their own people, with roles.")
    story.act("northside-admin", "registry.member_add", {
        "org": "northside-pharmacy", "name": "pharmacist-lee", "key": story.key("lee").public,
        "roles": ["dispenser"]})
    story.results["member_tx"] = story.act("stmary-admin", "registry.member_add", {
        "org": "st-mary", "name": "dr-okafor", "key": story.key("okafor").public, "roles": ["clinician"]})
    _say("   An unauthorised attempt: the pharmacist tries to add someone to Acme Pharma.")
    story.act("lee", "registry.member_add", {
        "org": "acme-pharma", "name": "intruder", "key": story.key("intruder").public, "roles": ["admin"]},
        expect="rejected")
    _say("   A patient registers with a key only: no name, no PHI; the id is derived from the key.")
    receipt = story.act("patient", "registry.patient_register", {})
    _say(f"            -> pseudonymous patient id {receipt['events'][0]['patient']}")
    _say()


def chapter_keys(story: Story) -> None:
    _say("3. Keys: Dr Okafor rotates her key (signed by old and new); identity, roles and history stay.")
    new = story.key("okafor-2")
    story.act("okafor", "registry.key_rotate", {
        "new_key": new.public, "proof": rotation_proof(new, CHAIN_ID, story.key("okafor").public)})
    member = story.query("registry.member", member="st-mary/dr-okafor")
    _say(f"            -> {member['id']} roles {member['roles']}, {len(member['keys'])} keys in history, "
         f"current {member['key'][:16]}…")
    _say("   The pharmacist's phone is stolen: the pharmacy's admin revokes the key and issues a new one.")
    story.act("northside-admin", "registry.key_revoke", {
        "member": "northside-pharmacy/pharmacist-lee", "reason": "phone stolen",
        "new_key": story.key("lee-2").public})
    story.act("lee", "registry.member_roles", {"member": "northside-pharmacy/pharmacist-lee",
                                                "roles": ["admin"]}, expect="rejected")
    _say()


def chapter_proof(story: Story) -> None:
    _say("4. Proof: anyone can check that Dr Okafor's onboarding is in a block signed by the validator.")
    receipt = story.results["member_tx"]
    proof = story.query("tx.proof", tx=receipt["tx"])
    checks = verify_tx_proof(proof, receipt["tx"])
    header = proof["header"]
    _say(f"    tx {receipt['tx'][:16]}… at block {proof['height']} index {proof['index']}: Merkle path of "
         f"{len(proof['path'])} hashes -> tx_root {'matches' if checks['merkle path to tx_root'] else 'DOES NOT MATCH'}; "
         f"its receipt -> receipt_root {'matches' if checks['merkle path to receipt_root'] else 'DOES NOT MATCH'}")
    _say(f"    block {header['hash'][:16]}… signed by validator {header['proposer'][:16]}…: "
         f"{'signature valid' if checks['block signature'] else 'SIGNATURE INVALID'}")
    if not all(checks.values()):
        raise RuntimeError(f"the proof did not verify: {checks}")
    _say()


def _add_org(story: Story, org: str, name: str, kind: str) -> None:
    """Governance as in chapter 1: one admin proposes, a second approves (2 of 3)."""
    receipt = story.act("admin-1", "registry.propose", {"action": {
        "kind": "org_add", "org": org, "name": name, "org_kind": kind, "admins": [story.key(f"{org}-admin").public]}})
    proposal = next(e for e in receipt["events"] if e["kind"] == "registry.proposed")["proposal"]
    story.act("admin-2", "registry.approve", {"proposal": proposal})


def _chain_date(story: Story, days: int = 0) -> datetime.date:
    """The head block's date (the chain's "today") plus ``days``: the demo's dates follow block time."""
    time_ms = story.query("block.head")["time_ms"]
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=time_ms // 86_400_000 + days)


def _flag_details(receipt: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in receipt["events"] if e["kind"] == "flag" and e["flag"] == name]


def _signed_query(story: Story, method: str, who: str, **params: Any) -> Any:
    """A query signed by ``who`` (the drugs app's caller proof), so entitled callers see trails."""
    key = story.key(who)
    height = story.query("block.head")["height"]
    proof = drugs_query_proof(method, {**params, "as_key": key.public, "as_height": height}, height)
    signature = key.sign(CHAIN_ID, DRUGS_AS_PURPOSE, proof)
    return story.query(method, **params, as_key=key.public.hex(), as_height=height, as_sig=signature.hex())


def chapter_drugs(story: Story) -> None:
    _say("5. Drug traceability: a pack from Acme's line to a patient, a cloned serial, and a recall.")
    _add_org(story, "medsupply", "Medsupply", "wholesaler")
    _add_org(story, "eastside-pharmacy", "Eastside Pharmacy", "pharmacy")
    for who, member, roles in (("acme-admin", "acme-pharma/admin-1", ["admin", "supply_chain"]),
                               ("medsupply-admin", "medsupply/admin-1", ["admin", "supply_chain"]),
                               ("northside-admin", "northside-pharmacy/admin-1", ["admin", "dispenser", "supply_chain"]),
                               ("eastside-pharmacy-admin", "eastside-pharmacy/admin-1", ["admin", "dispenser", "supply_chain"])):
        story.act(who, "registry.member_roles", {"member": member, "roles": roles})
    gtin = "09506000134352"
    case = "106141410000000019"
    story.act("acme-admin", "drugs.product_register", {"gtin": gtin, "name": "Amoxicillin", "form": "capsule",
                                                       "strength": "500 mg"})
    packs = [f"P{i:04d}" for i in range(1, 13)]
    story.act("acme-admin", "drugs.commission", {"gtin": gtin, "lot": "A1", "expiry": "2030-06-30",
                                                 "serials": packs})
    story.act("acme-admin", "drugs.commission", {"gtin": gtin, "lot": "B7", "expiry": "2030-06-30",
                                                 "serials": ["Q0001", "Q0002"]})
    units = [{"gtin": gtin, "serial": s} for s in packs]
    story.act("acme-admin", "drugs.aggregate", {"container": case, "units": units})
    _say(f"   12 packs in case {case}; the case travels, its packs follow it.")
    story.act("acme-admin", "drugs.ship", {"to": "medsupply", "containers": [case]})
    story.act("medsupply-admin", "drugs.receive", {"containers": [case]})
    story.act("medsupply-admin", "drugs.ship", {"to": "northside-pharmacy", "containers": [case]})
    _say("   A pharmacy that was not the addressee cannot receive it:")
    story.act("eastside-pharmacy-admin", "drugs.receive", {"containers": [case]}, expect="rejected")
    story.act("northside-admin", "drugs.receive", {"containers": [case]})
    story.act("northside-admin", "drugs.disaggregate", {"container": case})
    patient = patient_id(story.key("patient").public)
    story.act("northside-admin", "drugs.dispense", {"gtin": gtin, "serial": "P0001", "patient": patient,
                                                    "prescription": hashlib.sha256(b"rx-2026-0042").digest()})
    _say(f"            -> dispensed to pseudonymous patient {patient}, prescription by hash only")
    answer = _signed_query(story, "drugs.verify", "acme-admin", scan=f"(01){gtin}(21)P0001(10)A1(17)300630")
    _say("   Acme (the manufacturer) sees the trail of P0001: "
         + " -> ".join(f"{e['what']}@{e['who']}" for e in answer["trail"]))
    checks = verify_tx_proof(answer["tx_proof"], answer["trail"][-1]["tx"])
    _say(f"   proof: the latest event's tx is in block {answer['tx_proof']['height']}; "
         f"checks {'all pass' if all(checks.values()) else 'FAIL'}")
    if not all(checks.values()):
        raise RuntimeError(f"the trail's proof did not verify: {checks}")
    _say("   A counterfeit with the same printed serial turns up at Eastside Pharmacy:")
    scan = story.query("drugs.verify", scan=f"]d201{gtin}21P0001\x1d10A1")
    _say(f"            scan -> {scan['verdict']} (verified={scan['verified']}, "
         f"additionalInfo={scan.get('additionalInfo')})")
    if scan["verdict"] != "ALREADY_DISPENSED":
        raise RuntimeError(f"expected ALREADY_DISPENSED, got {scan['verdict']}")
    receipt = story.act("eastside-pharmacy-admin", "drugs.dispense", {"gtin": gtin, "serial": "P0001", "patient": patient,
                                                             "prescription": bytes(32)})
    refused = next(e for e in receipt["events"] if e["kind"] == "drugs.refused")
    _say(f"            -> the dispense is refused ({refused['code']}) and recorded as a clone alert")
    alerts = _signed_query(story, "drugs.alerts", "acme-admin", gtin=gtin)
    _say(f"   Acme's alert list: {len(alerts)} clone alert(s), e.g. {alerts[0]['serial']} "
         f"attempted by {alerts[0]['attempted_by']} at block {alerts[0]['height']}")
    _say("   Acme recalls lot B7:")
    story.act("acme-admin", "drugs.recall", {"gtin": gtin, "lot": "B7", "reason": "sterility failure"})
    recalled = story.query("drugs.verify", gtin=gtin, serial="Q0002")
    _say(f"            scan of Q0002 -> {recalled['verdict']} (additionalInfo={recalled.get('additionalInfo')})")
    if recalled["verdict"] != "RECALLED" or not alerts:
        raise RuntimeError("the recall or the clone alert did not show")
    _say()


def chapter_billing(story: Story) -> None:
    _say("6. Billing: an insurer joins, publishes its fee schedule; St Mary's bills; the chain flags what is off.")
    _add_org(story, "acme-health", "Acme Health Insurance", "insurer")
    story.act("acme-health-admin", "registry.member_add", {"org": "acme-health", "name": "schedules",
                                                           "key": story.key("schedules").public,
                                                           "roles": ["fee_schedule_manager"]})
    story.act("acme-health-admin", "registry.member_add", {"org": "acme-health", "name": "adjuster",
                                                           "key": story.key("adjuster").public,
                                                           "roles": ["claims_adjuster"]})
    story.act("stmary-admin", "registry.member_add", {"org": "st-mary", "name": "billing-desk",
                                                      "key": story.key("billing-desk").public,
                                                      "roles": ["billing_clerk"]})
    story.act("schedules", "billing.schedule_publish", {
        "version": 1, "effective_from": "2025-01-01", "currency": "USD",
        "entries": [{"code": "99213", "max_amount": 10_000}, {"code": "80053", "max_amount": 2_000},
                    {"code": "36415", "max_amount": 500}],
        "bundling_rules": [{"name": "venipuncture-with-panel", "codes": ["80053", "36415"]}]})
    _say("            -> Acme Health's schedule v1: office visit 99213 up to $100.00, metabolic panel 80053 "
         "up to $20.00 (amounts are integer cents)")
    patient = patient_id(story.key("patient").public)
    visit = (_chain_date(story, -3)).isoformat()
    encounter = hashlib.sha256(b"st-mary encounter 2291 (the record stays in the hospital's system)").digest()
    story.act("billing-desk", "billing.encounter_anchor", {"patient": patient, "encounter": encounter,
                                                           "date": visit})
    _say(f"   The hospital anchors the visit of {visit} (a hash and the pseudonymous id, no PHI) and bills it.")

    def claim(code: str, cents: int, *, expect_flags: tuple[str, ...] = ()) -> str:
        receipt = story.act("billing-desk", "billing.claim_submit", {
            "patient": patient, "payer": "acme-health", "encounter": encounter, "currency": "USD",
            "diagnoses": ["E11.9"], "items": [{"sequence": 1, "code": code, "quantity": 1, "unit_price": cents,
                                               "date_of_service": visit}]})
        if tuple(receipt["flags"]) != expect_flags:
            raise RuntimeError(f"expected flags {expect_flags}, got {receipt['flags']}")
        return next(e for e in receipt["events"] if e["kind"] == "billing.claim_submitted")["claim"]

    first = claim("99213", 9_500)
    _say("   The same visit is billed again a few minutes later: accepted, but flagged for everyone to see.")
    duplicate = claim("99213", 9_500, expect_flags=("duplicate_claim",))
    _say(f"            duplicate of claim {first[:12]}… (same patient, provider, code 99213, date {visit})")
    _say("   A metabolic panel billed at $35.00 against a $20.00 schedule maximum:")
    above = claim("80053", 3_500, expect_flags=("above_schedule",))
    detail = story.query("billing.claim", claim=above)["flags"][0]
    _say(f"            above schedule by {detail['excess']} cents (max {detail['max_allowed']}, "
         f"billed {detail['unit_price']})")
    story.act("adjuster", "billing.claim_adjudicate", {"claim": first, "decision": "approve"})
    story.act("adjuster", "billing.claim_adjudicate", {"claim": above, "decision": "partial",
                                                       "allowed_amount": 2_000, "reason_codes": ["CO-45"]})
    story.act("adjuster", "billing.claim_pay", {"claim": first, "amount": 9_500, "reference": "EFT-20931"})
    _say("   The patient sees every claim in their name and disputes the duplicate with their own key;")
    _say("   the hospital withdraws it. Only the payer's adjuster could adjudicate; a clerk cannot:")
    story.act("billing-desk", "billing.claim_adjudicate", {"claim": duplicate, "decision": "approve"},
              expect="rejected")
    story.act("patient", "billing.claim_dispute", {"claim": duplicate, "reason": "one visit, billed twice"})
    story.act("billing-desk", "billing.dispute_resolve", {"claim": duplicate, "outcome": "withdrawn",
                                                          "note": "duplicate submission"})
    claims = story.query("billing.patient_claims", patient=patient)["claims"]
    _say("            -> the patient's claims: " + "; ".join(
        f"{c['items'][0]['code']} {c['total']}c {c['status']}" + (f" [{', '.join(f['flag'] for f in c['flags'])}]"
                                                                  if c["flags"] else "") for c in claims))
    report = story.query("billing.report")
    provider = next(p for p in report["providers"] if p["org"] == "st-mary")
    _say(f"            -> report: St Mary's billed {provider['billed']}c in {provider['claims']} claims, "
         f"{provider['flagged_claims']} flagged ({provider['flagged_billed']}c); top flags "
         + ", ".join(f"{f['flag']} {f['claims']}" for f in report["top_flags"]))
    _say()


def chapter_trials(story: Story) -> None:
    _say("7. Clinical trials: a sponsor registers trials; outcome switching and overdue results become visible.")
    _add_org(story, "helix-trials", "Helix Trials", "sponsor")
    story.act("helix-trials-admin", "registry.member_add", {"org": "helix-trials", "name": "lead",
                                                            "key": story.key("trial-lead").public,
                                                            "roles": ["trial_sponsor"]})
    story.act("stmary-admin", "registry.member_add", {"org": "st-mary", "name": "dr-ng",
                                                      "key": story.key("dr-ng").public, "roles": ["investigator"]})
    completion = _chain_date(story, 180).isoformat()
    story.act("trial-lead", "trials.register", {
        "registry_id": "NCT90000001", "title": "Drug X versus placebo in type 2 diabetes",
        "protocol_hash": hashlib.sha256(b"protocol v1").digest(),
        "primary_outcomes": [{"measure": "HbA1c change from baseline", "time_frame": "26 weeks"}],
        "secondary_outcomes": [{"measure": "Body weight change", "time_frame": "26 weeks"}],
        "planned_enrolment": 300, "primary_completion": completion, "sites": ["st-mary"]})
    _say(f"   NCT90000001 is registered before anyone is enrolled; primary completion {completion}.")
    patient = patient_id(story.key("patient").public)
    story.act("dr-ng", "trials.enrol", {"trial": "NCT90000001", "participant": patient,
                                        "consent_version": hashlib.sha256(b"consent form v1").digest()})
    snapshot = b"participant,visit,hba1c\n1,baseline,8.1\n"
    story.act("dr-ng", "trials.commit_dataset", {"trial": "NCT90000001", "label": "baseline export",
                                                 "dataset_hash": hashlib.sha256(snapshot).digest()})
    _say("   After the first enrolment the sponsor swaps the primary outcome: allowed, versioned, and flagged.")
    receipt = story.act("trial-lead", "trials.amend", {
        "trial": "NCT90000001", "reason": "the glucose sensor arm is easier to run",
        "changes": {"primary_outcomes": [{"measure": "Fasting glucose change", "time_frame": "12 weeks"}]}})
    switch = _flag_details(receipt, "outcome_switch")[0]
    _say(f"            old: {switch['old'][0]}")
    _say(f"            new: {switch['new'][0]}")
    _say("   The participant withdraws with her own key; nobody else can do it for her.")
    story.act("dr-ng", "trials.withdraw", {"trial": "NCT90000001"}, expect="rejected")
    story.act("patient", "trials.withdraw", {"trial": "NCT90000001"})
    check = story.query("trials.verify_dataset", trial="NCT90000001",
                        dataset_hash=hashlib.sha256(snapshot).hexdigest())
    _say(f"            -> the baseline export verifies against commitment {check['commitment']['seq']}: "
         f"{'yes' if check['committed'] else 'NO'}")
    _say("   Overdue needs years of block time, and the demo cannot wait: NCT90000002 finished its primary")
    _say("   phase two years ago (a month-only date) and is registered only now, so its FDAAA due date")
    _say("   (completion + 1 year + 30 days) is already behind the chain's clock.")
    old = _chain_date(story, -730)
    story.act("trial-lead", "trials.register", {
        "registry_id": "NCT90000002", "title": "Drug Y in heart failure",
        "protocol_hash": hashlib.sha256(b"protocol Y").digest(),
        "primary_outcomes": [{"measure": "Cardiovascular death or hospitalisation", "time_frame": "12 months"}],
        "planned_enrolment": 1200, "primary_completion": f"{old.year:04d}-{old.month:02d}", "sites": ["st-mary"]})
    report = story.query("trials.report", as_of=_chain_date(story).isoformat())
    for row in report["trials"]:
        _say(f"            {row['trial']}: {', '.join(row['labels'])}; results due {row['due']}")
    _say(f"            -> {report['unreported']} of {report['due']} trials due are unreported; league: "
         + "; ".join(f"{s['sponsor']} {s['reported_on_time']}/{s['due']} on time" for s in report["sponsors"]))
    _say()


CHAPTERS: list[Callable[[Story], None]] = [chapter_consortium, chapter_members, chapter_keys, chapter_proof,
                                           chapter_drugs, chapter_billing, chapter_trials]


def _testnet_text(keys: dict[str, crypto.PrivateKey]) -> str:
    """A 3-node testnet file (see ``hcnode.testnet``): the nodes' keys become the validators."""
    def hexkey(name: str) -> str:
        return f'"{keys[name].public.hex()}"'

    return f"""chain_id = "{CHAIN_ID}"
log_level = "warning"

[testnet]
nodes = 3
dir = "."
base_port = 0

[block]
interval_ms = 50

[p2p]
mdns = false

[genesis]
time = 2026-01-01T00:00:00Z
admin_threshold = 2
admins = [{hexkey('admin-1')}, {hexkey('admin-2')}, {hexkey('admin-3')}]

[[genesis.orgs]]
id = "acme-pharma"
name = "Acme Pharma"
kind = "manufacturer"
admins = [{hexkey('acme-admin')}]

[[genesis.orgs]]
id = "st-mary"
name = "St Mary's Hospital"
kind = "hospital"
admins = [{hexkey('stmary-admin')}]
"""


def start_node_process(config_path: Path, socket_path: Path, timeout: float = 20.0) -> subprocess.Popen[bytes]:
    """Start ``hcnode --config`` as a real process and wait until its RPC answers."""
    proc = subprocess.Popen([sys.executable, "-m", "hcnode", "--config", str(config_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hcnode exited with {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with RpcClient(socket_path, timeout=5) as client:
                client.call("node.info")
                return proc
        except (ConnectionError, OSError):
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("hcnode did not start within the timeout")


def run_demo() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="hcdemo-", dir="/tmp"))
    keys = {name: crypto.PrivateKey.generate() for name in
            ("admin-1", "admin-2", "admin-3", "acme-admin", "stmary-admin")}
    testnet_path = workdir / "testnet.toml"
    testnet_path.write_text(_testnet_text(keys))
    net = Testnet(testnet_path)
    _say("hcnode demo: a 3-validator testnet (Raft over libp2p, LevelDB each) in " + str(workdir))
    _say("Founding members: 3 consortium admins (2 must agree), Acme Pharma (manufacturer), "
         "St Mary's Hospital.")
    _say()
    try:
        leader = net.up(detach=False, timeout=60)
        _say(f"Node {leader.index} was elected leader; the story talks to node 1, whichever node leads.")
        _say()
        with RpcClient(net.nodes[0].socket) as client:
            story = Story(client, keys)
            for chapter in CHAPTERS:
                chapter(story)
            info = client.call("node.info")
            _say(f"The chain is at height {info['height']}, head {info['head'][:16]}…, "
                 f"state root {info['state_root'][:16]}….")
        heads = {n.index: (n.info() or {}).get("head") for n in net.nodes}
        deadline = time.monotonic() + 10
        while len(set(heads.values())) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
            heads = {n.index: (n.info() or {}).get("head") for n in net.nodes}
        if len(set(heads.values())) != 1:
            raise RuntimeError(f"the nodes disagree on the head: {heads}")
        _say(f"All 3 nodes hold the same head {info['head'][:16]}….")
        codes = net.down()
        if any(code != 0 for code in codes):
            raise RuntimeError(f"a node exited with {codes} on SIGTERM")
        _say("The nodes shut down cleanly; the temporary directory is removed.")
        return 0
    except (RuntimeError, RpcCallError, ConnectionError) as exc:
        _say(f"demo failed: {exc}")
        return 1
    finally:
        for node in net.nodes:
            net.kill(node)
        if os.environ.get("HCNODE_DEMO_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
