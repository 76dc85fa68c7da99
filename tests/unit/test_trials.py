"""Trials app on a LocalChain: registration, amendments, consent, withdrawal, data, results, FDAAA due dates."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pytest

from hcnode.apps.registry import patient_id
from hcnode.apps.trials import due_dates, trial_status
from hcnode.chain import Rejected
from tests.unit.chainkit import LocalChain, key

DAY_MS = 86_400_000


def h(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


PRIMARY = [{"measure": "HbA1c change from baseline", "time_frame": "26 weeks"}]
SECONDARY = [{"measure": "Body weight change", "time_frame": "26 weeks"}]


class Trials:
    def __init__(self) -> None:
        self.chain = LocalChain(orgs=(("acme-trials", "sponsor", 1), ("st-mary", "hospital", 2),
                                      ("city-clinic", "clinic", 3), ("rival", "sponsor", 4)))
        self.sponsor, self.investigator, self.outside_investigator = key(10), key(11), key(12)
        self.rival_sponsor = key(13)
        for org, name, who, roles in (("acme-trials", "lead", self.sponsor, ["trial_sponsor"]),
                                      ("st-mary", "dr-ade", self.investigator, ["investigator"]),
                                      ("city-clinic", "dr-bo", self.outside_investigator, ["investigator"]),
                                      ("rival", "lead", self.rival_sponsor, ["trial_sponsor"])):
            self.ok(self.chain.org_admins[org], "registry.member_add",
                    {"org": org, "name": name, "key": who.public, "roles": roles})
        self.participant, self.other = key(20), key(21)
        for who in (self.participant, self.other):
            self.ok(who, "registry.patient_register", {})
        self.pid = patient_id(self.participant.public)

    def run(self, who: Any, tx_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.chain.run(who, tx_type, payload)

    def ok(self, who: Any, tx_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.chain.ok(who, tx_type, payload)

    def rejected(self, who: Any, tx_type: str, payload: dict[str, Any], code: str, text: str = "") -> str:
        return self.chain.rejected(who, tx_type, payload, code, text)

    def register(self, trial: str = "NCT00000001", completion: str = "2026-06-30", **extra: Any) -> dict[str, Any]:
        return self.ok(self.sponsor, "trials.register", {
            "registry_id": trial, "title": "Drug X in type 2 diabetes", "protocol_hash": h("protocol v1"),
            "primary_outcomes": PRIMARY, "secondary_outcomes": SECONDARY, "planned_enrolment": 300,
            "primary_completion": completion, "sites": ["st-mary"], **extra})

    def enrol(self, trial: str = "NCT00000001", pid: str | None = None) -> dict[str, Any]:
        return self.ok(self.investigator, "trials.enrol", {"trial": trial, "participant": pid or self.pid,
                                                           "consent_version": h("consent v1")})

    def jump_to(self, date: str) -> None:
        """Move block time (the next block is one second after ``date``'s midnight)."""
        day = datetime.date.fromisoformat(date)
        self.chain.time_ms = (day - datetime.date(1970, 1, 1)).days * DAY_MS

    def results(self, trial: str = "NCT00000001", outcomes: list[dict[str, Any]] | None = None,
                by: Any = None) -> dict[str, Any]:
        if outcomes is None:
            outcomes = [{**o, "summary": "-0.8 % (95 % CI -1.0 to -0.6)"} for o in PRIMARY + SECONDARY]
        return self.ok(by or self.sponsor, "trials.post_results", {"trial": trial, "outcomes": outcomes})

    def trial(self, trial: str = "NCT00000001", **params: Any) -> dict[str, Any]:
        return self.chain.query("trials.trial", trial=trial, **params)  # type: ignore[no-any-return]


@pytest.fixture
def t() -> Trials:
    return Trials()


def flags_of(receipt: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in receipt["events"] if e["kind"] == "flag" and e["flag"] == name]


# --- FDAAA 801 due dates (pure) ---------------------------------------------------------------------------------


def test_due_date_is_completion_plus_one_year_and_thirty_days() -> None:
    trial = {"primary_completion": "2024-03-15"}
    assert due_dates(trial) == {"standard": "2025-04-14", "latest": "2027-04-14", "due": "2025-04-14"}


def test_month_only_date_counts_as_the_last_day_of_the_month() -> None:
    assert due_dates({"primary_completion": "2024-02"})["standard"] == "2025-03-30"  # 2024-02-29 + 1y -> 02-28


def test_certificate_of_delay_postpones_but_never_past_three_years_and_thirty_days() -> None:
    trial = {"primary_completion": "2024-03-15", "delay": {"requested_due": "2026-01-01"}}
    assert due_dates(trial)["due"] == "2026-01-01"
    trial["delay"] = {"requested_due": "2030-01-01"}
    assert due_dates(trial)["due"] == "2027-04-14"


# --- registration, enrolment, withdrawal ----------------------------------------------------------------------------


def test_registration_then_recruiting_then_completed(t: Trials) -> None:
    t.register()
    assert t.trial()["status"] == "registered"
    t.enrol()
    view = t.trial()
    assert view["status"] == "recruiting" and view["enrolled"] == 1 and view["first_enrolment"]["date"] == "2026-01-01"
    assert t.trial(as_of="2026-07-01")["status"] == "completed"
    assert t.trial(as_of="2027-07-30")["status"] == "completed"  # due 2027-06-30 + 30 days
    assert t.trial(as_of="2027-07-31")["status"] == "overdue"


def test_enrolment_needs_a_registered_trial(t: Trials) -> None:
    t.rejected(t.investigator, "trials.enrol", {"trial": "NCT09999999", "participant": t.pid,
                                                "consent_version": h("c")}, "unknown_trial", "no trial")


def test_enrolment_by_site_investigators_only_and_reconsent(t: Trials) -> None:
    t.register()
    payload = {"trial": "NCT00000001", "participant": t.pid, "consent_version": h("consent v1")}
    t.rejected(t.outside_investigator, "trials.enrol", payload, "missing_role", "trial's sites")
    t.rejected(t.sponsor, "trials.enrol", payload, "missing_role", "investigator")
    t.enrol()
    t.rejected(t.investigator, "trials.enrol", payload, "already_enrolled")
    t.ok(t.investigator, "trials.enrol", {**payload, "consent_version": h("consent v2")})
    record = t.chain.query("trials.participant", trial="NCT00000001", participant=t.pid)
    assert record["consent_version"] == h("consent v2") and len(record["consents"]) == 2
    assert t.trial()["enrolled"] == 1


def test_participant_withdraws_with_their_own_key_only(t: Trials) -> None:
    t.register()
    t.enrol()
    t.rejected(t.investigator, "trials.withdraw", {"trial": "NCT00000001"}, "missing_role", "own patient key")
    t.rejected(t.other, "trials.withdraw", {"trial": "NCT00000001"}, "not_enrolled")
    t.ok(t.participant, "trials.withdraw", {"trial": "NCT00000001"})
    assert t.chain.query("trials.participant", trial="NCT00000001", participant=t.pid)["status"] == "withdrawn"
    t.rejected(t.participant, "trials.withdraw", {"trial": "NCT00000001"}, "withdrawn")
    t.rejected(t.investigator, "trials.enrol", {"trial": "NCT00000001", "participant": t.pid,
                                                "consent_version": h("consent v3")}, "withdrawn")
    assert t.trial()["withdrawn"] == 1


def test_only_a_sponsor_role_registers_and_ids_are_unique(t: Trials) -> None:
    payload = {"registry_id": "NCT00000002", "title": "t", "protocol_hash": h("p"), "primary_outcomes": PRIMARY,
               "planned_enrolment": 10, "primary_completion": "2026-06-30"}
    t.rejected(t.investigator, "trials.register", payload, "missing_role", "trial_sponsor")
    t.ok(t.sponsor, "trials.register", payload)
    t.rejected(t.rival_sponsor, "trials.register", payload, "trial_exists")


def test_month_only_and_late_registration_are_flagged(t: Trials) -> None:
    receipt = t.register(completion="2026-06")
    assert flags_of(receipt, "month_only_date")[0]["counted_as"] == "2026-06-30"
    assert "month_only_date" in t.trial()["labels"] and t.trial()["due"] == "2027-07-30"
    late = t.register("NCT00000003", completion="2024-01-31")
    assert "registered_after_primary_completion" in late["flags"]


# --- amendments and outcome switching -----------------------------------------------------------------------------


def test_amendments_before_enrolment_are_versioned_not_flagged(t: Trials) -> None:
    t.register()
    receipt = t.ok(t.sponsor, "trials.amend", {"trial": "NCT00000001", "reason": "refined measure",
                                               "changes": {"primary_outcomes": [{"measure": "HbA1c < 7 %",
                                                                                 "time_frame": "26 weeks"}]}})
    assert receipt["flags"] == []
    view = t.trial()
    assert view["version"] == 2 and view["amendments"][0]["previous"]["primary_outcomes"] == PRIMARY


def test_outcome_switch_after_first_enrolment_is_flagged_with_old_and_new(t: Trials) -> None:
    t.register()
    t.enrol()
    new = [{"measure": "Fasting glucose change", "time_frame": "12 weeks"}]
    receipt = t.ok(t.sponsor, "trials.amend", {"trial": "NCT00000001", "reason": "feasibility",
                                               "changes": {"primary_outcomes": new, "planned_enrolment": 200}})
    [event] = flags_of(receipt, "outcome_switch")
    assert event["outcomes"] == "primary"
    assert event["old"] == ["HbA1c change from baseline [26 weeks]"]
    assert event["new"] == ["Fasting glucose change [12 weeks]"]
    view = t.trial()
    assert "outcome_switched" in view["labels"] and view["outcome_switches"][0]["reason"] == "feasibility"
    assert view["primary_outcomes"] == new and view["planned_enrolment"] == 200
    # a change to something else is not a switch
    assert t.ok(t.sponsor, "trials.amend", {"trial": "NCT00000001", "reason": "typo",
                                            "changes": {"title": "Drug X in T2D"}})["flags"] == []


def test_only_the_trials_sponsor_amends(t: Trials) -> None:
    t.register()
    change = {"trial": "NCT00000001", "reason": "r", "changes": {"title": "x"}}
    t.rejected(t.rival_sponsor, "trials.amend", change, "missing_role", "acme-trials")
    t.rejected(t.investigator, "trials.amend", change, "missing_role")
    t.rejected(t.sponsor, "trials.amend", {**change, "changes": {}}, "bad_payload", "at least one")
    t.rejected(t.sponsor, "trials.amend", {**change, "trial": "NCT404"}, "unknown_trial")


# --- data commitments ----------------------------------------------------------------------------------------------


def test_dataset_commitments_verify_a_file_hash(t: Trials) -> None:
    t.register()
    snapshot = hashlib.sha256(b"participant,visit,hba1c\n1,0,8.1\n").digest()
    t.ok(t.investigator, "trials.commit_dataset", {"trial": "NCT00000001", "dataset_hash": snapshot,
                                                   "label": "baseline visit export"})
    t.rejected(t.investigator, "trials.commit_dataset", {"trial": "NCT00000001", "dataset_hash": snapshot,
                                                         "label": "again"}, "already_committed")
    t.rejected(t.outside_investigator, "trials.commit_dataset", {"trial": "NCT00000001", "dataset_hash": h("x"),
                                                                 "label": "l"}, "missing_role")
    found = t.chain.query("trials.verify_dataset", trial="NCT00000001", dataset_hash=snapshot)
    assert found["committed"] and found["commitment"]["label"] == "baseline visit export"
    missing = t.chain.query("trials.verify_dataset", trial="NCT00000001", dataset_hash=h("tampered"))
    assert not missing["committed"] and missing["commitments"] == 1


# --- results ----------------------------------------------------------------------------------------------------------


def test_complete_results_on_time_have_no_flags(t: Trials) -> None:
    t.register()
    t.enrol()
    t.jump_to("2026-09-01")
    assert t.results()["flags"] == []
    view = t.trial()
    assert view["status"] == "results_posted" and "results_late" not in view["labels"]
    t.rejected(t.investigator, "trials.enrol", {"trial": "NCT00000001", "participant": patient_id(t.other.public),
                                                "consent_version": h("c")}, "trial_closed")


def test_unreported_and_added_outcomes_silent_vs_declared(t: Trials) -> None:
    t.register()
    t.enrol()
    outcomes = [
        {**PRIMARY[0], "summary": "-0.8 %"},
        {"measure": "Quality of life score", "time_frame": "26 weeks", "summary": "+4"},
        {"measure": "Hypoglycaemia events", "time_frame": "26 weeks", "summary": "3 vs 5",
         "added_reason": "requested by the DSMB", "added_date": "2025-11-02"},
    ]
    receipt = t.results(outcomes=outcomes)
    assert flags_of(receipt, "unreported_outcome") == [
        {"kind": "flag", "flag": "unreported_outcome", "measure": "Body weight change", "outcomes": "secondary"}]
    assert flags_of(receipt, "outcome_added_silently")[0]["measure"] == "Quality of life score"
    declared = flags_of(receipt, "outcome_added_declared")[0]
    assert declared["reason"] == "requested by the DSMB" and declared["declared"] == "2025-11-02"
    assert t.trial()["results"][0]["flags"][0]["flag"] == "outcome_added_silently"


def test_declared_addition_needs_reason_and_date_and_is_not_for_prespecified(t: Trials) -> None:
    t.register()
    half = [{"measure": "New", "time_frame": "1 y", "summary": "s", "added_reason": "r"}]
    t.rejected(t.sponsor, "trials.post_results", {"trial": "NCT00000001", "outcomes": half}, "bad_payload",
               "both added_reason and added_date")
    pre = [{**PRIMARY[0], "summary": "s", "added_reason": "r", "added_date": "2025-01-01"}]
    t.rejected(t.sponsor, "trials.post_results", {"trial": "NCT00000001", "outcomes": pre}, "bad_payload",
               "pre-specified")
    future = [{"measure": "New", "time_frame": "1 y", "summary": "s", "added_reason": "r",
               "added_date": "2030-01-01"}]
    t.rejected(t.sponsor, "trials.post_results", {"trial": "NCT00000001", "outcomes": future}, "date_in_future")
    t.rejected(t.rival_sponsor, "trials.post_results", {"trial": "NCT00000001", "outcomes": pre[:1]},
               "missing_role")


def test_overdue_from_block_time_and_late_results(t: Trials) -> None:
    t.register(completion="2026-03-31")  # due 2027-04-30
    t.enrol()
    t.jump_to("2027-04-30")
    t.ok(t.investigator, "trials.commit_dataset", {"trial": "NCT00000001", "dataset_hash": h("d1"), "label": "l"})
    assert t.trial()["status"] == "completed"  # the clock is the last trials block: the due day itself
    t.jump_to("2027-05-01")
    t.ok(t.investigator, "trials.commit_dataset", {"trial": "NCT00000001", "dataset_hash": h("d2"), "label": "l"})
    assert t.trial()["status"] == "overdue"
    t.jump_to("2027-06-09")
    receipt = t.results()
    [late] = flags_of(receipt, "results_late")
    assert (late["due"], late["posted"], late["days_late"]) == ("2027-04-30", "2027-06-09", 40)
    assert t.trial()["labels"] == ["results_posted", "results_late"]


def test_certificate_of_delay_before_the_due_date_only(t: Trials) -> None:
    t.register(completion="2026-03-31")
    cert = {"trial": "NCT00000001", "reason": "seeking approval of a new use", "requested_due": "2028-01-31"}
    t.rejected(t.sponsor, "trials.certify_delay", {**cert, "requested_due": "2027-01-01"}, "dates_out_of_order")
    t.rejected(t.investigator, "trials.certify_delay", cert, "missing_role")
    t.ok(t.sponsor, "trials.certify_delay", cert)
    assert t.trial()["due"] == "2028-01-31"
    t.rejected(t.sponsor, "trials.certify_delay", cert, "delay_exists")
    assert t.trial(as_of="2027-06-01")["status"] == "completed"
    # capped, and too late after the due date
    t.register("NCT00000005", completion="2026-03-31")
    capped = t.ok(t.sponsor, "trials.certify_delay", {**cert, "trial": "NCT00000005", "requested_due": "2035-01-01"})
    assert flags_of(capped, "delay_capped")[0]["due"] == "2029-04-30"
    t.register("NCT00000006", completion="2024-01-15")
    t.rejected(t.sponsor, "trials.certify_delay", {**cert, "trial": "NCT00000006"}, "too_late", "before the results")


def test_report_share_unreported_and_sponsor_league(t: Trials) -> None:
    t.register("NCT00000001", completion="2024-01-15")  # due 2025-02-14: overdue on 2026-01-01
    t.register("NCT00000002", completion="2024-02-15")
    t.results("NCT00000002")  # late
    t.register("NCT00000003", completion="2026-06-30")  # not yet due
    t.ok(t.rival_sponsor, "trials.register", {
        "registry_id": "ISRCTN1234", "title": "Rival", "protocol_hash": h("r"), "primary_outcomes": PRIMARY,
        "planned_enrolment": 10, "primary_completion": "2026-01-01"})
    t.jump_to("2026-03-01")
    t.results("ISRCTN1234", outcomes=[{**PRIMARY[0], "summary": "s"}], by=t.rival_sponsor)  # early: on time
    report = t.chain.query("trials.report")
    assert report["as_of"] == "2026-03-01" and report["due"] == 3 and report["unreported"] == 1
    status = {row["trial"]: row["status"] for row in report["trials"]}
    assert status == {"NCT00000001": "overdue", "NCT00000002": "results_posted", "NCT00000003": "registered",
                      "ISRCTN1234": "results_posted"}
    league = {row["sponsor"]: row for row in report["sponsors"]}
    assert league["acme-trials"]["due"] == 2 and league["acme-trials"]["unreported"] == 1
    assert league["acme-trials"]["reported_late"] == 1 and league["rival"]["reported_on_time"] == 1
    assert report["sponsors"][0]["sponsor"] == "rival"


# --- bad input ---------------------------------------------------------------------------------------------------------


def test_bad_registration_input(t: Trials) -> None:
    base = {"registry_id": "NCT00000009", "title": "t", "protocol_hash": h("p"), "primary_outcomes": PRIMARY,
            "planned_enrolment": 10, "primary_completion": "2026-06-30"}
    for change, text in (({"primary_completion": "2026-13"}, "not a calendar date"),
                         ({"primary_completion": "June 2026"}, "YYYY-MM-DD or YYYY-MM"),
                         ({"planned_enrolment": -1}, "outside"),
                         ({"primary_outcomes": []}, "allowed 1..20"),
                         ({"protocol_hash": b"short"}, "expected 32 bytes"),
                         ({"registry_id": "NCT/1"}, "does not match"),
                         ({"title": "x" * 301}, "length 301")):
        t.rejected(t.sponsor, "trials.register", {**base, **change}, "bad_payload", text)
    with pytest.raises(Rejected, match="unknown_trial"):
        t.trial("NCT404")
    status = trial_status({"primary_completion": "2026-06", "results": [], "enrolled": 0, "outcome_switches": [],
                           "month_only": True}, "2026-06-30")
    assert status["status"] == "registered" and status["primary_completion_date"] == "2026-06-30"
