"""Billing app on a LocalChain: fee schedules, encounters, claims, every flag, permissions, bad input."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from hcnode.apps.registry import patient_id
from hcnode.chain import Rejected
from tests.unit.chainkit import LocalChain, key

DOS = "2025-12-15"  # the LocalChain's blocks are dated 2026-01-01


def enc(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


class Billing:
    """A chain with a hospital, a clinic and two insurers, their staff, and a registered patient."""

    def __init__(self) -> None:
        self.chain = LocalChain(orgs=(("st-mary", "hospital", 1), ("city-clinic", "clinic", 2),
                                      ("acme-health", "insurer", 3), ("other-health", "insurer", 4),
                                      ("acme-pharma", "manufacturer", 5)))
        self.clerk, self.clinic_clerk = key(10), key(11)
        self.adjuster, self.other_adjuster, self.scheduler = key(12), key(13), key(14)
        self.pharma_clerk = key(15)
        self.clinician, self.pharma_clinician = key(16), key(17)
        self.patient, self.other_patient = key(20), key(21)
        for org, name, who, roles in (
            ("st-mary", "clerk", self.clerk, ["billing_clerk"]),
            ("city-clinic", "clerk", self.clinic_clerk, ["billing_clerk"]),
            ("acme-health", "adjuster", self.adjuster, ["claims_adjuster"]),
            ("other-health", "adjuster", self.other_adjuster, ["claims_adjuster"]),
            ("acme-health", "scheduler", self.scheduler, ["fee_schedule_manager"]),
            ("acme-pharma", "clerk", self.pharma_clerk, ["billing_clerk"]),
            ("st-mary", "dr-ng", self.clinician, ["clinician"]),
            ("acme-pharma", "dr-x", self.pharma_clinician, ["clinician"]),
        ):
            self.ok(self.chain.org_admins[org], "registry.member_add",
                    {"org": org, "name": name, "key": who.public, "roles": roles})
        for who in (self.patient, self.other_patient):
            self.ok(who, "registry.patient_register", {})
        self.pid = patient_id(self.patient.public)

    def run(self, who: Any, tx_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.chain.run(who, tx_type, payload)

    def ok(self, who: Any, tx_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.chain.ok(who, tx_type, payload)

    def rejected(self, who: Any, tx_type: str, payload: dict[str, Any], code: str, text: str = "") -> str:
        return self.chain.rejected(who, tx_type, payload, code, text)

    def schedule(self, **extra: Any) -> dict[str, Any]:
        payload = {"version": 1, "effective_from": "2025-01-01", "currency": "USD",
                   "entries": [{"code": "99213", "max_amount": 10_000}, {"code": "80053", "max_amount": 2_000},
                               {"code": "36415", "max_amount": 500}, {"code": "J1100", "max_amount": 150}],
                   "bundling_rules": [{"name": "venipuncture-with-panel", "codes": ["80053", "36415"]}], **extra}
        return self.ok(self.scheduler, "billing.schedule_publish", payload)

    def anchor(self, name: str = "visit-1", patient: str | None = None, date: str = DOS) -> None:
        self.ok(self.clerk, "billing.encounter_anchor",
                {"patient": patient or self.pid, "encounter": enc(name), "date": date})

    def claim_payload(self, *items: tuple[str, int, int, str], encounter: str | None = "visit-1",
                      payer: str = "acme-health") -> dict[str, Any]:
        payload: dict[str, Any] = {
            "patient": self.pid, "payer": payer, "currency": "USD", "diagnoses": ["E11.9", "I10"],
            "items": [{"sequence": i + 1, "code": code, "quantity": qty, "unit_price": price,
                       "date_of_service": date} for i, (code, qty, price, date) in enumerate(items)]}
        if encounter is not None:
            payload["encounter"] = enc(encounter)
        return payload

    def claim(self, *items: tuple[str, int, int, str], who: Any = None, **kw: Any) -> dict[str, Any]:
        return self.ok(who or self.clerk, "billing.claim_submit", self.claim_payload(*items, **kw))


def claim_id(receipt: dict[str, Any]) -> str:
    return next(e for e in receipt["events"] if e["kind"] == "billing.claim_submitted")["claim"]  # type: ignore


def flag_events(receipt: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in receipt["events"] if e["kind"] == "flag" and e["flag"] == name]


@pytest.fixture
def b() -> Billing:
    world = Billing()
    world.schedule()
    world.anchor()
    return world


# --- a clean claim and its life ------------------------------------------------------------------------


def test_clean_claim_has_no_flags_and_its_totals_are_counted(b: Billing) -> None:
    receipt = b.claim(("99213", 1, 9_500, DOS))
    assert receipt["flags"] == []
    claim = b.chain.query("billing.claim", claim=claim_id(receipt))
    assert claim["status"] == "submitted" and claim["total"] == 9_500 and claim["provider"] == "st-mary"
    assert claim["items"][0]["net"] == 9_500
    report = b.chain.query("billing.report")
    provider = next(p for p in report["providers"] if p["org"] == "st-mary")
    assert provider["claims"] == 1 and provider["billed"] == 9_500 and provider["flagged_claims"] == 0


def test_approve_pay_dispute_resolve(b: Billing) -> None:
    cid = claim_id(b.claim(("99213", 2, 9_000, DOS)))
    b.ok(b.adjuster, "billing.claim_adjudicate", {"claim": cid, "decision": "approve"})
    b.ok(b.adjuster, "billing.claim_pay", {"claim": cid, "amount": 10_000, "reference": "EFT-1"})
    assert b.chain.query("billing.claim", claim=cid)["status"] == "approved"
    b.rejected(b.adjuster, "billing.claim_pay", {"claim": cid, "amount": 8_001}, "bad_amount", "owed (8000)")
    b.ok(b.adjuster, "billing.claim_pay", {"claim": cid, "amount": 8_000})
    assert b.chain.query("billing.claim", claim=cid)["status"] == "paid"
    b.ok(b.patient, "billing.claim_dispute", {"claim": cid, "reason": "I had one visit, not two"})
    b.rejected(b.patient, "billing.claim_dispute", {"claim": cid, "reason": "again"}, "dispute_open")
    b.ok(b.clerk, "billing.dispute_resolve", {"claim": cid, "outcome": "upheld", "note": "two visits on file"})
    claim = b.chain.query("billing.claim", claim=cid)
    assert claim["disputes"][0]["status"] == "resolved" and claim["disputes"][0]["outcome"] == "upheld"
    assert [h["action"] for h in claim["history"]] == ["submitted", "approved", "paid", "paid", "disputed",
                                                       "dispute_upheld"]
    payer = next(p for p in b.chain.query("billing.report")["payers"] if p["org"] == "acme-health")
    assert payer["allowed"] == 18_000 and payer["paid"] == 18_000 and payer["disputes"] == 1


def test_partial_and_deny_need_reason_codes_and_sane_amounts(b: Billing) -> None:
    first = claim_id(b.claim(("99213", 1, 9_000, DOS)))
    b.rejected(b.adjuster, "billing.claim_adjudicate", {"claim": first, "decision": "partial",
                                                        "allowed_amount": 5_000}, "bad_payload", "reason code")
    b.rejected(b.adjuster, "billing.claim_adjudicate", {"claim": first, "decision": "partial",
                                                        "allowed_amount": 9_000, "reason_codes": ["CO-45"]},
               "bad_amount")
    b.rejected(b.adjuster, "billing.claim_adjudicate", {"claim": first, "decision": "approve",
                                                        "allowed_amount": 1}, "bad_amount")
    b.ok(b.adjuster, "billing.claim_adjudicate", {"claim": first, "decision": "partial", "allowed_amount": 5_000,
                                                  "reason_codes": ["CO-45"]})
    b.rejected(b.adjuster, "billing.claim_adjudicate", {"claim": first, "decision": "deny",
                                                        "reason_codes": ["CO-97"]}, "bad_status", "partial")
    second = claim_id(b.claim(("80053", 1, 1_000, DOS)))
    b.rejected(b.adjuster, "billing.claim_adjudicate", {"claim": second, "decision": "deny"}, "bad_payload")
    b.ok(b.adjuster, "billing.claim_adjudicate", {"claim": second, "decision": "deny", "reason_codes": ["CO-97"]})
    b.rejected(b.adjuster, "billing.claim_pay", {"claim": second, "amount": 1}, "bad_status", "denied")


def test_payer_adjusts_in_a_dispute_and_provider_withdraws_which_frees_the_duplicate_key(b: Billing) -> None:
    cid = claim_id(b.claim(("99213", 1, 9_000, DOS)))
    b.ok(b.patient, "billing.claim_dispute", {"claim": cid, "reason": "wrong code"})
    b.rejected(b.clerk, "billing.dispute_resolve", {"claim": cid, "outcome": "adjusted", "note": "n",
                                                    "allowed_amount": 10}, "bad_payload", "payer")
    b.rejected(b.adjuster, "billing.dispute_resolve", {"claim": cid, "outcome": "withdrawn", "note": "n"},
               "missing_role", "only the provider")
    b.ok(b.clerk, "billing.dispute_resolve", {"claim": cid, "outcome": "withdrawn", "note": "billed in error"})
    assert b.chain.query("billing.claim", claim=cid)["status"] == "withdrawn"
    assert b.claim(("99213", 1, 9_000, DOS))["flags"] == []  # the corrected claim is no duplicate
    other = claim_id(b.claim(("80053", 1, 1_000, DOS)))
    b.ok(b.patient, "billing.claim_dispute", {"claim": other, "reason": "not done"})
    b.ok(b.adjuster, "billing.dispute_resolve", {"claim": other, "outcome": "adjusted", "note": "half",
                                                 "allowed_amount": 500})
    assert b.chain.query("billing.claim", claim=other)["status"] == "partial"


# --- flags ----------------------------------------------------------------------------------------------------


def test_duplicate_claim_is_flagged_with_the_first_claim_and_not_blocked(b: Billing) -> None:
    first = claim_id(b.claim(("99213", 1, 9_000, DOS)))
    receipt = b.claim(("99213", 1, 9_000, DOS), ("J1100", 1, 100, DOS))
    assert receipt["status"] == "ok" and receipt["flags"] == ["duplicate_claim"]
    [event] = flag_events(receipt, "duplicate_claim")
    assert event["first_claim"] == first and event["code"] == "99213" and event["date_of_service"] == DOS
    # a different date, code, patient or provider is not a duplicate
    assert "duplicate_claim" not in b.claim(("99213", 1, 9_000, "2025-12-16"))["flags"]
    b.ok(b.clinic_clerk, "billing.claim_submit", b.claim_payload(("99213", 1, 9_000, DOS), encounter=None))
    report = b.chain.query("billing.report")
    assert {"flag": "duplicate_claim", "claims": 1} in report["top_flags"]


def test_the_same_code_and_date_twice_in_one_claim_is_a_duplicate(b: Billing) -> None:
    receipt = b.claim(("99213", 1, 9_000, DOS), ("99213", 1, 9_000, DOS))
    assert "duplicate_claim" in receipt["flags"]


def test_above_schedule_says_by_how_much(b: Billing) -> None:
    receipt = b.claim(("99213", 3, 12_500, DOS), ("80053", 1, 2_000, DOS))
    [event] = flag_events(receipt, "above_schedule")
    assert (event["code"], event["unit_price"], event["max_allowed"], event["excess"]) == (
        "99213", 12_500, 10_000, 7_500)
    claim = b.chain.query("billing.claim", claim=claim_id(receipt))
    assert claim["excess_over_schedule"] == 7_500 and claim["flags"][0]["flag"] == "above_schedule"
    provider = next(p for p in b.chain.query("billing.report")["providers"] if p["org"] == "st-mary")
    assert provider["above_schedule_excess"] == 7_500 and provider["flagged_billed"] == 37_500 + 2_000


def test_schedule_versions_apply_by_date_of_service(b: Billing) -> None:
    b.ok(b.scheduler, "billing.schedule_publish", {"version": 2, "effective_from": "2025-12-10", "currency": "USD",
                                                   "entries": [{"code": "99213", "max_amount": 8_000}]})
    assert b.claim(("99213", 1, 9_000, "2025-12-01"), encounter=None)["flags"] == ["no_anchored_encounter"]
    receipt = b.claim(("99213", 1, 9_000, DOS))
    assert flag_events(receipt, "above_schedule")[0]["max_allowed"] == 8_000  # version 2's maximum
    before = b.chain.query("billing.schedule", payer="acme-health", date="2025-06-01", code="99213")
    assert before["in_force"] == 1 and before["max_amount"] == 10_000


def test_no_anchored_encounter_unknown_or_for_another_patient(b: Billing) -> None:
    assert b.claim(("99213", 1, 100, DOS), encounter=None)["flags"] == ["no_anchored_encounter"]
    receipt = b.claim(("J1100", 1, 100, DOS), encounter="never-anchored")
    assert flag_events(receipt, "no_anchored_encounter")[0]["reason"].startswith("st-mary anchored no")
    b.anchor("visit-other", patient=patient_id(b.other_patient.public))
    receipt = b.claim(("80053", 1, 100, DOS), encounter="visit-other")
    assert "another patient" in flag_events(receipt, "no_anchored_encounter")[0]["reason"]
    # another provider's encounter does not count for st-mary's claim
    b.ok(b.clinic_clerk, "billing.encounter_anchor", {"patient": b.pid, "encounter": enc("clinic"), "date": DOS})
    assert "no_anchored_encounter" in b.claim(("36415", 1, 100, DOS), encounter="clinic")["flags"]


def test_unbundled_codes_in_one_claim_and_across_claims_of_the_day(b: Billing) -> None:
    receipt = b.claim(("80053", 1, 1_000, DOS), ("36415", 1, 300, DOS))
    [event] = flag_events(receipt, "unbundled_codes")
    assert event["rule"] == "venipuncture-with-panel" and event["codes"] == ["36415", "80053"]
    b.claim(("80053", 1, 1_000, "2025-12-16"))
    later = b.claim(("36415", 1, 300, "2025-12-16"))
    assert later["flags"] == ["unbundled_codes"]
    assert b.claim(("36415", 1, 300, "2025-12-17"))["flags"] == []


def test_billed_after_deregistration_by_the_patient_or_recorded_by_the_payer(b: Billing) -> None:
    b.ok(b.adjuster, "billing.patient_deregister", {"patient": b.pid, "date": "2025-12-10",
                                                    "reason": "membership ended"})
    receipt = b.claim(("99213", 1, 100, "2025-12-09"), ("J1100", 1, 100, DOS))
    [event] = flag_events(receipt, "billed_after_deregistration")
    assert event["deregistered"] == "2025-12-10" and event["dates_of_service"] == [DOS]
    b.rejected(b.patient, "billing.patient_deregister", {}, "already_deregistered")
    other = patient_id(b.other_patient.public)
    b.ok(b.other_patient, "billing.patient_deregister", {})
    assert b.chain.query("billing.deregistration", patient=other)["deregistered"]["date"] == "2026-01-01"
    b.rejected(b.other_patient, "billing.patient_deregister", {"reason": "x"}, "bad_payload", "empty payload")
    b.rejected(b.clerk, "billing.patient_deregister", {"patient": b.pid, "date": DOS, "reason": "x"},
               "missing_role", "claims_adjuster")


def test_no_schedule_unknown_code_and_currency_mismatch_are_flagged(b: Billing) -> None:
    assert "no_fee_schedule" in b.claim(("99213", 1, 100, DOS), payer="other-health")["flags"]
    assert "code_not_in_schedule" in b.claim(("99214", 1, 100, DOS))["flags"]
    payload = b.claim_payload(("80053", 1, 100, DOS))
    payload["currency"] = "EUR"
    assert "currency_mismatch" in b.ok(b.clerk, "billing.claim_submit", payload)["flags"]


def test_patient_sees_every_claim_in_their_name(b: Billing) -> None:
    ids = {claim_id(b.claim(("99213", 1, 100, DOS))), claim_id(b.claim(("80053", 1, 100, DOS)))}
    view = b.chain.query("billing.patient_claims", patient=b.pid)
    assert {c["id"] for c in view["claims"]} == ids
    page = b.chain.query("billing.patient_claims", patient=b.pid, limit=1)
    assert len(page["claims"]) == 1 and page["more"]
    rest = b.chain.query("billing.patient_claims", patient=b.pid, after=page["claims"][0]["id"])
    assert len(rest["claims"]) == 1 and not rest["more"]
    assert b.chain.query("billing.patient_claims", patient=patient_id(b.other_patient.public))["claims"] == []


# --- permissions ------------------------------------------------------------------------------------------------


def test_only_a_provider_billing_clerk_submits_and_anchors(b: Billing) -> None:
    payload = b.claim_payload(("99213", 1, 100, DOS))
    b.rejected(b.adjuster, "billing.claim_submit", payload, "missing_role", "billing_clerk")
    b.rejected(b.pharma_clerk, "billing.claim_submit", payload, "missing_role", "manufacturer")
    b.rejected(b.patient, "billing.encounter_anchor", {"patient": b.pid, "encounter": enc("x"), "date": DOS},
               "missing_role", "billing_clerk")


def test_a_providers_clinician_anchors_encounters_but_does_not_bill(b: Billing) -> None:
    b.ok(b.clinician, "billing.encounter_anchor", {"patient": b.pid, "encounter": enc("visit-dr"), "date": DOS})
    assert b.chain.query("billing.encounter", provider="st-mary", encounter=enc("visit-dr"))["by"] == "st-mary/dr-ng"
    # the clerk's claim finds the clinician's encounter: no flag for it
    assert "no_anchored_encounter" not in b.claim(("99213", 1, 100, DOS), encounter="visit-dr")["flags"]
    b.rejected(b.clinician, "billing.claim_submit", b.claim_payload(("99213", 1, 100, DOS)), "missing_role",
               "billing_clerk")
    b.rejected(b.pharma_clinician, "billing.encounter_anchor",
               {"patient": b.pid, "encounter": enc("x"), "date": DOS}, "missing_role", "manufacturer")
    message = b.rejected(b.adjuster, "billing.encounter_anchor",
                         {"patient": b.pid, "encounter": enc("x"), "date": DOS}, "missing_role")
    assert "'billing_clerk' or 'clinician'" in message


def test_a_claim_is_addressed_to_an_active_insurer(b: Billing) -> None:
    b.rejected(b.clerk, "billing.claim_submit", b.claim_payload(("99213", 1, 100, DOS), payer="no-such-org"),
               "unknown_payer", "'no-such-org' is not a registered, active organisation")
    b.rejected(b.clerk, "billing.claim_submit", b.claim_payload(("99213", 1, 100, DOS), payer="city-clinic"),
               "unknown_payer", "'city-clinic' is a clinic, not an insurer")
    b.ok(b.clerk, "billing.claim_submit", b.claim_payload(("99213", 1, 100, DOS), payer="acme-health"))


def test_only_the_claims_payer_adjudicates_and_pays(b: Billing) -> None:
    cid = claim_id(b.claim(("99213", 1, 100, DOS)))
    decision = {"claim": cid, "decision": "approve"}
    b.rejected(b.clerk, "billing.claim_adjudicate", decision, "missing_role", "claims_adjuster")
    b.rejected(b.other_adjuster, "billing.claim_adjudicate", decision, "missing_role", "acme-health")
    b.rejected(b.scheduler, "billing.claim_adjudicate", decision, "missing_role")
    b.ok(b.adjuster, "billing.claim_adjudicate", decision)
    b.rejected(b.other_adjuster, "billing.claim_pay", {"claim": cid, "amount": 100}, "missing_role")


def test_only_the_patient_disputes_and_only_the_parties_resolve(b: Billing) -> None:
    cid = claim_id(b.claim(("99213", 1, 100, DOS)))
    b.rejected(b.other_patient, "billing.claim_dispute", {"claim": cid, "reason": "r"}, "missing_role", "own key")
    b.rejected(b.clerk, "billing.claim_dispute", {"claim": cid, "reason": "r"}, "missing_role")
    b.rejected(b.clerk, "billing.dispute_resolve", {"claim": cid, "outcome": "upheld", "note": "n"},
               "no_open_dispute")
    b.ok(b.patient, "billing.claim_dispute", {"claim": cid, "reason": "r"})
    for outsider in (b.clinic_clerk, b.other_adjuster, b.patient):
        b.rejected(outsider, "billing.dispute_resolve", {"claim": cid, "outcome": "upheld", "note": "n"},
                   "missing_role", "the provider")


def test_only_an_insurers_schedule_manager_publishes_and_versions_are_ordered(b: Billing) -> None:
    b.rejected(b.adjuster, "billing.schedule_publish", {"version": 2, "effective_from": "2026-01-01",
                                                        "currency": "USD"}, "missing_role", "fee_schedule_manager")
    b.rejected(b.scheduler, "billing.schedule_publish", {"version": 3, "effective_from": "2026-01-01",
                                                         "currency": "USD"}, "bad_version", "is 2")
    b.rejected(b.scheduler, "billing.schedule_publish", {"version": 2, "effective_from": "2024-06-01",
                                                         "currency": "USD"}, "dates_out_of_order")
    b.rejected(b.scheduler, "billing.schedule_entries", {"version": 1, "entries": [
        {"code": "99213", "max_amount": 1}]}, "entry_exists", "new version")
    b.rejected(b.scheduler, "billing.schedule_entries", {"version": 7, "entries": [
        {"code": "99215", "max_amount": 1}]}, "unknown_version")
    b.ok(b.scheduler, "billing.schedule_entries", {"version": 1, "entries": [{"code": "99215", "max_amount": 1}]})
    assert b.chain.query("billing.schedule", payer="acme-health")["versions"][0]["entries"] == 5


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field,value,text", [
    ("unit_price", -5, "cannot be negative"),
    ("unit_price", 12.5, "whole minor units"),
    ("unit_price", "12", "integer minor units"),
    ("unit_price", 10**13, "exceeds the limit"),
    ("quantity", 0, "outside 1..10000"),
    ("code", "9921", "not a CPT/HCPCS procedure code"),
    ("code", "Z9999", "not a CPT/HCPCS procedure code"),
    ("date_of_service", "2025-02-30", "not a calendar date"),
    ("date_of_service", "15/12/2025", "YYYY-MM-DD"),
])
def test_bad_item_fields_get_clear_errors(b: Billing, field: str, value: Any, text: str) -> None:
    payload = b.claim_payload(("99213", 1, 100, DOS))
    payload["items"][0][field] = value
    with pytest.raises(Rejected) as caught:  # the schema check the wallet runs before signing
        b.chain.apps.tx_types["billing.claim_submit"].schema.check(payload, "payload")
    assert text in caught.value.message and "payload.items[0]." + field in caught.value.message
    if not isinstance(value, float):  # floats cannot even be encoded on the wire (canonical CBOR has none)
        b.rejected(b.clerk, "billing.claim_submit", payload, "bad_payload", text)


def test_malformed_diagnosis_patient_currency_and_future_dates(b: Billing) -> None:
    for field, value, text in (("diagnoses", ["E119X9"], "ICD-10"), ("patient", "alice", "pseudonymous"),
                               ("currency", "usd", "ISO 4217"), ("items", [], "allowed 1..50")):
        payload = b.claim_payload(("99213", 1, 100, DOS))
        payload[field] = value
        b.rejected(b.clerk, "billing.claim_submit", payload, "bad_payload", text)
    b.rejected(b.clerk, "billing.claim_submit", b.claim_payload(("99213", 1, 100, "2026-02-01")),
               "date_in_future", "after the block's date")
    b.rejected(b.clerk, "billing.encounter_anchor", {"patient": b.pid, "encounter": enc("f"), "date": "2027-01-01"},
               "date_in_future")
    b.rejected(b.clerk, "billing.claim_submit", b.claim_payload(("99213", 1, 100, DOS), ("80053", 1, 1, DOS))
               | {"items": [dict(b.claim_payload(("99213", 1, 1, DOS))["items"][0])] * 2}, "bad_payload",
               "sequence")


def test_oversized_claim_and_unknown_claim(b: Billing) -> None:
    items = [("99213", 1, 100, DOS)] * 51
    b.rejected(b.clerk, "billing.claim_submit", b.claim_payload(*items), "bad_payload", "51 items")
    big = b.claim_payload(("99213", 1, 100, DOS))
    big["diagnoses"] = ["E11.9"] * 12_000  # > 64 KiB: refused before any schema or handler runs
    receipt = b.chain.block(b.chain.tx(b.clerk, "billing.claim_submit", big))[0]
    assert receipt["code"] == "too_large"
    b.rejected(b.adjuster, "billing.claim_adjudicate", {"claim": "0" * 32, "decision": "approve"},
               "unknown_claim")
    with pytest.raises(Rejected, match="no claim"):
        b.chain.query("billing.claim", claim="0" * 32)
