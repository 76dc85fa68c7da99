"""The drugs app's rules and verdicts on a chain in memory (pure: no node, no I/O)."""

from __future__ import annotations

import pytest

from hcnode.chain import Rejected
from hcnode.chain.app import TX_PROOF_REQUEST
from tests.unit.chainkit import key
from tests.unit.drugs.drugkit import (
    CASE, EXPIRY, GTIN, GTIN_B, PALLET, PATIENT, RX, SupplyChain, gtin, sscc,
)

GS = "\x1d"


@pytest.fixture
def chain() -> SupplyChain:
    c = SupplyChain()
    c.product()
    c.commission(["S1", "S2", "S3", "S4"])
    return c


def dispense(c: SupplyChain, org: str, serial: str, expect: str | None = "ok", **extra) -> dict:
    return c.do(org, "drugs.dispense", {"gtin": GTIN, "serial": serial, "patient": PATIENT,
                                        "prescription": RX, **extra}, expect)


# --- products and commissioning -------------------------------------------------------------------


def test_product_needs_a_valid_gtin_check_digit_and_belongs_to_its_first_manufacturer():
    c = SupplyChain()
    bad = GTIN[:-1] + str((int(GTIN[-1]) + 1) % 10)
    c.do("acme", "drugs.product_register", {"gtin": bad, "name": "X", "form": "tablet", "strength": "1 mg"},
         "invalid_gtin")
    c.product()
    c.do("globex", "drugs.product_register", {"gtin": GTIN, "name": "Fake", "form": "tablet", "strength": "1"},
         "gtin_taken")
    assert c.query("drugs.product", gtin=GTIN)["manufacturer"] == "acme"


def test_only_a_manufacturer_with_the_supply_chain_role_registers_products():
    c = SupplyChain()
    receipt = c.do("wholesale", "drugs.product_register",
                   {"gtin": GTIN, "name": "X", "form": "tablet", "strength": "1"}, "missing_role")
    assert "manufacturer" in receipt["message"]
    c.do("st-mary", "drugs.product_register", {"gtin": GTIN, "name": "X", "form": "t", "strength": "1"},
         "missing_role")


def test_commission_only_for_own_registered_gtins(chain):
    chain.commission(["X1"], org="globex", expect="not_manufacturer")
    chain.commission(["X1"], g=GTIN_B, expect="unknown_product")
    chain.commission(["X1"], expiry="2027-02-30", expect="bad_date")


def test_a_serial_is_never_commissioned_twice_and_nothing_of_the_batch_is_written(chain):
    receipt = chain.commission(["N1", "S2", "N2"], expect="serial_exists")
    assert "'S2'" in receipt["message"]
    assert chain.verify(gtin=GTIN, serial="N1")["verdict"] == "UNKNOWN_SERIAL"
    chain.commission(["N1", "N1"], expect="bad_payload")  # unique within the transaction too


def test_a_lot_keeps_one_expiry(chain):
    chain.commission(["Z1"], expiry="2028-01-31", expect="lot_expiry_conflict")
    chain.commission(["Z1"], lot="L2", expiry="2028-01-31")


def test_ten_thousand_serials_in_one_transaction(chain):
    serials = [f"B{i:07d}" for i in range(10_000)]
    chain.commission(serials, lot="BIG")
    assert chain.verify(gtin=GTIN, serial="B0009999")["verdict"] == "VERIFIED"
    chain.commission(serials + ["one-too-many"], lot="BIG", expect="bad_payload")


# --- verify: verdicts and LVMS fields ---------------------------------------------------------------


def test_verified_pack_by_gtin_serial_lot_and_expiry(chain):
    answer = chain.verify(gtin=GTIN, serial="S1", lot="L1", expiry=EXPIRY)
    assert answer["verdict"] == "VERIFIED" and answer["verified"] is True
    assert "verificationFailureReason" not in answer and "additionalInfo" not in answer
    assert answer["product"]["manufacturer"] == "acme"


@pytest.mark.parametrize("scan", [
    f"(01){GTIN}(21)S1(10)L1(17)270630",
    f"]d201{GTIN}21S1{GS}10L1{GS}17270630",
    f"01{GTIN}17270630 10L1{GS}21S1".replace(" ", ""),
    f"https://id.gs1.org/01/{GTIN}/21/S1?10=L1&17=270630",
])
def test_verify_reads_element_strings_raw_datamatrix_and_digital_link(chain, scan):
    answer = chain.verify(scan=scan)
    assert (answer["gtin"], answer["serial"], answer["verdict"]) == (GTIN, "S1", "VERIFIED")


def test_unknown_serial(chain):
    answer = chain.verify(gtin=GTIN, serial="NOPE")
    assert answer["verdict"] == "UNKNOWN_SERIAL" and answer["verified"] is False
    assert answer["verificationFailureReason"] == "No_match_GTIN_Serial"


@pytest.mark.parametrize("lot, expiry, reason", [
    ("L9", None, "No_match_GTIN_Serial_Lot"),
    (None, "2027-06-29", "No_match_GTIN_Serial_Expiry"),
    ("L9", "2027-06-29", "No_match_GTIN_Serial_Lot_Expiry"),
])
def test_lot_or_expiry_mismatch(chain, lot, expiry, reason):
    params = {k: v for k, v in (("lot", lot), ("expiry", expiry)) if v}
    answer = chain.verify(gtin=GTIN, serial="S1", **params)
    assert answer["verdict"] == "LOT_OR_EXPIRY_MISMATCH" and answer["verified"] is False
    assert answer["verificationFailureReason"] == reason


def test_expired_by_the_callers_date_or_the_last_drugs_block(chain):
    assert chain.verify(gtin=GTIN, serial="S1", today="2027-07-01")["verdict"] == "EXPIRED"
    assert chain.verify(gtin=GTIN, serial="S1", today="2027-07-01")["additionalInfo"] == "Expired"
    assert chain.verify(gtin=GTIN, serial="S1", today="2027-06-30")["verdict"] == "VERIFIED"
    chain.commission(["OLD"], lot="OLD", expiry="2025-12-31")  # the chain's clock is 2026-01-01
    assert chain.verify(gtin=GTIN, serial="OLD")["verdict"] == "EXPIRED"


def test_bad_verify_params_are_clear(chain):
    for params, words in (({"serial": "S1"}, "give scan"), ({"scan": "(01)123"}, "cannot read"),
                          ({"scan": f"(01){GTIN}(21)S1", "gtin": GTIN}, "not both"),
                          ({"gtin": "09506000134353", "serial": "S1"}, "check digit")):
        with pytest.raises(Rejected) as err:
            chain.verify(**params)
        assert err.value.code == "bad_params" and words in err.value.message, err.value.message


# --- custody ---------------------------------------------------------------------------------------


def test_ship_receive_moves_custody_and_only_the_addressee_receives(chain):
    chain.do("acme", "drugs.ship", {"to": "wholesale", "units": chain.units("S1")})
    chain.do("pharm-a", "drugs.receive", {"units": chain.units("S1")}, "not_shipped_to_you")
    chain.do("wholesale", "drugs.receive", {"units": chain.units("S2")}, "not_shipped_to_you")
    chain.do("acme", "drugs.ship", {"to": "pharm-a", "units": chain.units("S1")}, "in_transit")
    chain.do("wholesale", "drugs.receive", {"units": chain.units("S1")})
    answer = chain.verify("wholesale", gtin=GTIN, serial="S1")
    assert answer["holder"] == "wholesale" and answer["status"] == "active"
    assert [e["what"] for e in answer["trail"]] == ["commission", "ship", "receive"]


def test_shipping_by_a_non_holder_or_to_nobody_is_rejected(chain):
    chain.do("wholesale", "drugs.ship", {"to": "pharm-a", "units": chain.units("S1")}, "not_holder")
    chain.do("acme", "drugs.ship", {"to": "nobody", "units": chain.units("S1")}, "unknown_org")
    chain.do("acme", "drugs.ship", {"to": "acme", "units": chain.units("S1")}, "ship_to_self")
    chain.do("acme", "drugs.ship", {"to": "wholesale", "units": chain.units("S9")}, "unknown_unit")
    chain.do("acme", "drugs.ship", {"to": "wholesale"}, "bad_payload")


def test_one_bad_item_rejects_the_whole_shipment(chain):
    chain.do("acme", "drugs.ship", {"to": "wholesale", "units": chain.units("S1", "S9")}, "unknown_unit")
    assert chain.verify("acme", gtin=GTIN, serial="S1")["status"] == "active"


def test_events_on_a_container_apply_to_its_contents(chain):
    chain.do("acme", "drugs.aggregate", {"container": CASE, "units": chain.units("S1", "S2")})
    chain.do("acme", "drugs.aggregate", {"container": PALLET, "containers": [CASE]})
    chain.do("acme", "drugs.ship", {"to": "wholesale", "units": chain.units("S1")}, "in_container")
    chain.do("acme", "drugs.ship", {"to": "wholesale", "containers": [CASE]}, "in_container")
    chain.do("acme", "drugs.ship", {"to": "wholesale", "containers": [PALLET]})
    assert chain.verify("acme", gtin=GTIN, serial="S2")["status"] == "in_transit"
    chain.do("wholesale", "drugs.receive", {"containers": [PALLET]})
    answer = chain.verify("wholesale", gtin=GTIN, serial="S2")
    assert (answer["holder"], answer["container"]) == ("wholesale", CASE)
    chain.do("wholesale", "drugs.disaggregate", {"container": PALLET})
    chain.do("wholesale", "drugs.disaggregate", {"container": CASE, "units": chain.units("S1")})
    assert chain.query("drugs.container", sscc=CASE)["units"] == chain.units("S2")
    chain.move(["S1"], "wholesale", "pharm-a")
    assert "container" not in chain.verify("pharm-a", gtin=GTIN, serial="S1")


def test_aggregation_rules(chain):
    bad = CASE[:-1] + str((int(CASE[-1]) + 1) % 10)
    chain.do("acme", "drugs.aggregate", {"container": bad, "units": chain.units("S1")}, "invalid_sscc")
    chain.do("wholesale", "drugs.aggregate", {"container": CASE, "units": chain.units("S1")}, "not_holder")
    chain.do("acme", "drugs.aggregate", {"container": CASE, "units": chain.units("S1")})
    chain.do("acme", "drugs.aggregate", {"container": PALLET, "units": chain.units("S1")}, "in_container")
    chain.do("acme", "drugs.aggregate", {"container": CASE, "containers": [CASE]}, "bad_payload")
    chain.do("acme", "drugs.aggregate", {"container": PALLET, "containers": [CASE]})
    chain.do("acme", "drugs.aggregate", {"container": CASE, "containers": [PALLET]}, "container_exists")
    chain.do("acme", "drugs.disaggregate", {"container": CASE, "units": chain.units("S2")}, "not_in_container")
    chain.do("wholesale", "drugs.disaggregate", {"container": CASE}, "not_holder")


def test_dispense_is_final_and_needs_a_pharmacy_holder(chain):
    dispense(chain, "pharm-a", "S1", "not_holder")
    chain.move(["S1"], "acme", "pharm-a")
    chain.do("wholesale", "drugs.dispense", {"gtin": GTIN, "serial": "S1", "patient": PATIENT,
                                             "prescription": RX}, "missing_role")
    dispense(chain, "pharm-a", "S1", lot="L2", expect="lot_or_expiry_mismatch")
    dispense(chain, "pharm-a", "S1", lot="L1", expiry=EXPIRY)
    answer = chain.verify(gtin=GTIN, serial="S1")
    assert (answer["verdict"], answer["verified"], answer["additionalInfo"]) == ("ALREADY_DISPENSED", True, "Suspect")
    chain.do("pharm-a", "drugs.ship", {"to": "wholesale", "units": chain.units("S1")}, "dispensed")


def test_patient_must_be_a_pseudonym_never_a_name(chain):
    chain.move(["S1"], "acme", "pharm-a")
    receipt = chain.do("pharm-a", "drugs.dispense", {"gtin": GTIN, "serial": "S1", "patient": "Jane Doe",
                                                     "prescription": RX}, "bad_payload")
    assert "payload.patient" in receipt["message"]


def test_second_dispense_is_refused_and_recorded_as_a_clone_alert(chain):
    chain.move(["S1"], "acme", "pharm-a")
    dispense(chain, "pharm-a", "S1")
    receipt = dispense(chain, "pharm-b", "S1")
    assert receipt["flags"] == ["clone_alert"]
    refused = [e for e in receipt["events"] if e["kind"] == "drugs.refused"]
    assert refused and refused[0]["code"] == "already_dispensed"
    answer = chain.verify("acme", gtin=GTIN, serial="S1")
    assert answer["holder"] == "pharm-a" and answer["status"] == "dispensed"
    assert [a["who"] for a in answer["alerts"]] == ["pharm-b"]
    for org in ("acme", "fda"):
        alerts = chain.signed("drugs.alerts", org, gtin=GTIN)
        assert [(a["serial"], a["attempted_by"]) for a in alerts] == [("S1", "pharm-b")]
    for org in ("pharm-b", "wholesale"):
        with pytest.raises(Rejected) as err:
            chain.signed("drugs.alerts", org, gtin=GTIN)
        assert err.value.code == "not_visible"


def test_dispensing_recalled_expired_or_suspect_is_rejected(chain):
    chain.commission(["E1"], lot="OLD", expiry="2026-01-05")
    chain.move(["S1", "S2", "E1"], "acme", "pharm-a")
    chain.do("acme", "drugs.recall", {"gtin": GTIN, "serials": ["S1"], "reason": "tampering"})
    dispense(chain, "pharm-a", "S1", "recalled")
    chain.do("pharm-a", "drugs.suspect", {"units": chain.units("S2"), "reason": "torn seal"})
    dispense(chain, "pharm-a", "S2", "suspect")
    chain.time_ms += 10 * 86_400_000
    dispense(chain, "pharm-a", "E1", "expired")


def test_recall_by_lot_reaches_every_unit_of_the_lot(chain):
    chain.commission(["M1"], lot="L2", expiry="2028-01-31")
    chain.do("globex", "drugs.recall", {"gtin": GTIN, "lot": "L1", "reason": "x"}, "not_manufacturer")
    chain.do("wholesale", "drugs.recall", {"gtin": GTIN, "lot": "L1", "reason": "x"}, "not_manufacturer")
    chain.do("st-mary", "drugs.recall", {"gtin": GTIN, "lot": "L1", "reason": "x"}, "missing_role")
    chain.do("acme", "drugs.recall", {"gtin": GTIN, "lot": "L7", "reason": "x"}, "unknown_lot")
    chain.do("fda", "drugs.recall", {"gtin": GTIN, "lot": "L1", "reason": "contamination"})
    for serial in ("S1", "S4"):
        answer = chain.verify(gtin=GTIN, serial=serial)
        assert (answer["verdict"], answer["additionalInfo"]) == ("RECALLED", "Recalled")
    assert chain.verify(gtin=GTIN, serial="M1")["verdict"] == "VERIFIED"
    assert chain.verify("acme", gtin=GTIN, serial="S3")["trail"][-1]["what"] == "recall"


def test_suspect_and_clear(chain):
    chain.do("wholesale", "drugs.suspect", {"units": chain.units("S1"), "reason": "x"}, "not_holder")
    chain.do("acme", "drugs.suspect", {"units": chain.units("S1"), "reason": "damaged box"})
    assert chain.verify(gtin=GTIN, serial="S1")["verdict"] == "SUSPECT"
    chain.do("acme", "drugs.ship", {"to": "wholesale", "units": chain.units("S1")}, "suspect")
    chain.do("acme", "drugs.clear", {"units": chain.units("S2"), "reason": "x"}, "not_suspect")
    chain.do("acme", "drugs.clear", {"units": chain.units("S1"), "reason": "checked"})
    assert chain.verify(gtin=GTIN, serial="S1")["verdict"] == "VERIFIED"


def test_a_regulator_quarantine_is_cleared_only_by_a_regulator(chain):
    chain.move(["S1"], "acme", "wholesale")
    chain.do("fda", "drugs.suspect", {"units": chain.units("S1"), "reason": "investigation"})
    chain.do("wholesale", "drugs.clear", {"units": chain.units("S1"), "reason": "mine"}, "not_allowed_to_clear")
    chain.do("fda", "drugs.clear", {"units": chain.units("S1"), "reason": "closed"})
    assert chain.verify("wholesale", gtin=GTIN, serial="S1")["status"] == "active"


def test_decommission(chain):
    chain.do("wholesale", "drugs.decommission", {"units": chain.units("S1"), "reason": "stolen"}, "not_holder")
    chain.do("acme", "drugs.decommission", {"units": chain.units("S1"), "reason": "eaten"}, "bad_payload")
    chain.do("acme", "drugs.decommission", {"units": chain.units("S1"), "reason": "sample"})
    assert chain.verify(gtin=GTIN, serial="S1")["verdict"] == "DECOMMISSIONED"
    chain.do("acme", "drugs.ship", {"to": "wholesale", "units": chain.units("S1")}, "decommissioned")


def test_saleable_return_is_verified_first(chain):
    chain.move(["S1", "S2"], "acme", "pharm-a")
    chain.do("pharm-a", "drugs.ship", {"to": "wholesale", "units": chain.units("S1", "S2")})
    ok = {"gtin": GTIN, "serial": "S1", "lot": "L1", "expiry": EXPIRY}
    wrong = {"gtin": GTIN, "serial": "S2", "lot": "L9", "expiry": EXPIRY}
    receipt = chain.do("wholesale", "drugs.return", {"units": [ok, wrong], "saleable": True}, "return_not_verified")
    assert "LOT_OR_EXPIRY_MISMATCH" in receipt["message"]
    chain.do("pharm-b", "drugs.return", {"units": [ok], "saleable": True}, "not_shipped_to_you")
    chain.do("wholesale", "drugs.return", {"units": [ok], "saleable": True})
    assert chain.verify("wholesale", gtin=GTIN, serial="S1")["holder"] == "wholesale"
    chain.do("wholesale", "drugs.return", {"units": [{"gtin": GTIN, "serial": "S2"}], "saleable": False})
    assert chain.verify(gtin=GTIN, serial="S2")["verdict"] == "DECOMMISSIONED"


# --- trail visibility, caller proofs, custody broken ---------------------------------------------


def test_trail_only_for_holders_manufacturer_and_regulators(chain):
    chain.move(["S1"], "acme", "wholesale")
    chain.move(["S1"], "wholesale", "pharm-a")
    anonymous = chain.verify(gtin=GTIN, serial="S1")
    assert anonymous["verdict"] == "VERIFIED" and "trail" not in anonymous and TX_PROOF_REQUEST not in anonymous
    for org in ("acme", "wholesale", "pharm-a", "fda"):
        answer = chain.verify(org, gtin=GTIN, serial="S1")
        assert answer["trail_visible"] and len(answer["trail"]) == 5
        assert answer[TX_PROOF_REQUEST] == answer["trail"][-1]["tx"]
    assert "trail" not in chain.verify("globex", gtin=GTIN, serial="S1")


def test_custody_broken_when_the_pack_turns_up_where_the_ledger_says_it_is_not(chain):
    chain.move(["S1"], "acme", "wholesale")
    answer = chain.verify("pharm-b", gtin=GTIN, serial="S1")
    assert (answer["verdict"], answer["additionalInfo"], answer["trail_visible"]) == (
        "CUSTODY_BROKEN", "Suspect", False)
    chain.do("wholesale", "drugs.ship", {"to": "pharm-b", "units": chain.units("S1")})
    assert chain.verify("pharm-b", gtin=GTIN, serial="S1")["verdict"] == "VERIFIED"


def test_caller_proofs_are_checked(chain):
    signer = chain.ops["acme"]
    params = {"gtin": GTIN, "serial": "S1", "as_key": signer.public, "as_height": chain.height}
    for bad, code in (({"as_sig": bytes(64)}, "bad_proof"), ({"as_sig": bytes(64), "as_height": 10**6}, "stale_proof")):
        with pytest.raises(Rejected) as err:
            chain.query("drugs.verify", **{**params, **bad})
        assert err.value.code == code
    with pytest.raises(Rejected) as err:  # a signature over other params does not carry over
        chain.signed("drugs.verify", "acme", gtin=GTIN, serial="S1")
        sig = signer.sign("hcnode-test", "drugs-query", b"other")
        chain.query("drugs.verify", **params, as_sig=sig)
    assert err.value.code == "bad_proof"
    with pytest.raises(Rejected) as err:  # a key that is no member
        chain.signed("drugs.verify", "acme", signer=key(999), gtin=GTIN, serial="S1")
    assert err.value.code == "bad_proof"
    with pytest.raises(Rejected):
        chain.query("drugs.verify", gtin=GTIN, serial="S1", as_key=signer.public)


def test_state_stays_compact_per_unit(chain):
    serials = [f"C{i:06d}" for i in range(1000)]
    chain.commission(serials, lot="CMP")
    from hcnode.apps.drugs.app import unit_key
    assert len(chain.state.get(unit_key(GTIN, "C000001"))) < 64
    assert gtin("0950600013435") == GTIN and sscc("10614141000000001") == CASE
