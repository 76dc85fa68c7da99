"""EPCIS 2.0 capture through drugs.epcis_import transactions, and the trail exported back as EPCIS."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from hcnode.apps.drugs import epcis
from hcnode.apps.drugs.export import trail_document, trail_dot
from hcnode.node.rpc import to_json
from tests.unit.drugs.drugkit import CASE, GTIN, SupplyChain

SCHEMA = json.loads((Path(__file__).parents[2] / "data" / "epcis" / "EPCIS-JSON-Schema.json").read_text())


def dl(serial: str) -> str:
    return f"https://id.gs1.org/01/{GTIN}/21/{serial}"


def event(**fields) -> dict:
    base = {"type": "ObjectEvent", "eventTime": "2026-01-01T08:00:00.000Z", "eventTimeZoneOffset": "+00:00",
            "epcList": [dl("E1"), dl("E2")], "action": "OBSERVE", "bizStep": "shipping",
            "disposition": "in_transit"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


COMMISSION = event(action="ADD", bizStep="commissioning", disposition="active",
                   ilmd={"cbvmda:lotNumber": "LX", "cbvmda:itemExpirationDate": "2029-01-31"})
SHIP = event(eventTime="2026-01-02T08:00:00.000Z", destinationList=[
    {"type": "owning_party", "destination": "urn:hcnode:org:wholesale"}])
PACK = {"type": "AggregationEvent", "eventTime": "2026-01-01T09:00:00.000Z", "eventTimeZoneOffset": "+00:00",
        "parentID": f"https://id.gs1.org/00/{CASE}", "childEPCs": [dl("E1"), dl("E2")], "action": "ADD",
        "bizStep": "packing"}


def items(*events: dict) -> list[dict]:
    return [{"event": json.dumps(e)} for e in events]


@pytest.fixture
def chain() -> SupplyChain:
    c = SupplyChain()
    c.product()
    return c


def test_import_applies_events_with_the_same_rules_as_native_transactions(chain):
    chain.do("acme", "drugs.epcis_import", {"events": items(COMMISSION, PACK)})
    ship_case = {k: v for k, v in SHIP.items() if k != "epcList"}
    ship_case.update(type="AggregationEvent", parentID=f"https://id.gs1.org/00/{CASE}", childEPCs=[])
    chain.do("acme", "drugs.epcis_import", {"events": items(ship_case)})
    answer = chain.verify("acme", gtin=GTIN, serial="E2")
    assert answer["status"] == "in_transit" and answer["addressee"] == "wholesale"
    assert [e["what"] for e in answer["trail"]] == ["commission", "aggregate", "ship"]
    assert answer["trail"][0]["when"] == "2026-01-01T08:00:00.000Z"


def test_capturing_the_same_event_twice_is_a_duplicate(chain):
    chain.do("acme", "drugs.epcis_import", {"events": items(COMMISSION)})
    receipt = chain.do("acme", "drugs.epcis_import", {"events": items(COMMISSION)}, "duplicate_event")
    assert "event 0" in receipt["message"]
    reordered = json.dumps(dict(reversed(list(COMMISSION.items()))))  # same event, other key order
    chain.do("acme", "drugs.epcis_import", {"events": [{"event": reordered}]}, "duplicate_event")


def test_one_bad_event_rejects_the_whole_import(chain):
    bad_step = event(bizStep="repairing")
    for events, code in ((items(COMMISSION, bad_step), "bad_epcis"),
                         ([{"event": "{not json"}], "bad_epcis"),
                         (items(COMMISSION, event(epcList=[f"https://id.gs1.org/01/{GTIN[:-1]}0/21/X"])),
                          "bad_epcis"),
                         (items(COMMISSION, SHIP, SHIP), "duplicate_event"),
                         (items(COMMISSION, event(destinationList=[
                             {"type": "owning_party", "destination": "urn:epc:id:pgln:0614141.00001"}])),
                          "bad_epcis")):
        receipt = chain.do("acme", "drugs.epcis_import", {"events": events}, code)
        assert receipt["message"].startswith("event ")
        assert chain.verify(gtin=GTIN, serial="E1")["verdict"] == "UNKNOWN_SERIAL"  # nothing half-imported


def test_a_correction_is_a_new_event_declaring_the_old_one_wrong(chain):
    chain.do("acme", "drugs.epcis_import", {"events": items(COMMISSION, SHIP)})
    shipped = epcis.parse_event(SHIP)
    declared = epcis.declare_error(shipped, declaration_time="2026-01-03T00:00:00Z")
    chain.do("wholesale", "drugs.epcis_import", {"events": [{"event": declared.raw}]}, "not_holder")
    chain.do("acme", "drugs.epcis_import", {"events": [{"event": declared.raw}]})
    chain.do("acme", "drugs.epcis_import", {"events": [{"event": declared.raw}]}, "already_declared")
    trail = chain.verify("acme", gtin=GTIN, serial="E1")["trail"]
    assert "declared_erroneous_by" in [e for e in trail if e["what"] == "ship"][0]
    never = epcis.declare_error(epcis.parse_event(event(eventTime="2026-02-01T00:00:00Z")),
                                declaration_time="2026-02-02T00:00:00Z")
    chain.do("acme", "drugs.epcis_import", {"events": [{"event": never.raw}]}, "unknown_event")


def test_exported_trail_is_schema_valid_epcis_and_reimports_with_the_same_hashes(chain):
    chain.do("acme", "drugs.epcis_import", {"events": items(COMMISSION)})
    chain.do("acme", "drugs.aggregate", {"container": CASE, "units": chain.units("E1", "E2")})
    chain.do("acme", "drugs.ship", {"to": "wholesale", "containers": [CASE]})
    chain.do("wholesale", "drugs.receive", {"containers": [CASE]})
    chain.do("wholesale", "drugs.suspect", {"containers": [CASE], "reason": "seal"})
    answer = to_json(chain.verify("fda", gtin=GTIN, serial="E1"))
    document = trail_document(answer, creation_date="2026-01-05T00:00:00Z")
    jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(document)
    events = epcis.import_document(json.dumps(document), max_bytes=1 << 20)
    assert [e.kind for e in events] == ["commission", "aggregate", "ship", "receive", "suspect"]
    assert events[0].event_hash == epcis.parse_event(COMMISSION).event_hash  # captured: given back unchanged
    dot = trail_dot(answer)
    assert '"acme" -> "wholesale"' in dot and "color=red" in dot  # the suspect event is an anomaly


def test_trail_picture_renders_to_svg_with_graphviz_or_says_how_to_get_it(chain, tmp_path):
    # The wallet's `drugs trail --graph FILE.svg`; .ci/run installs Graphviz, so CI renders for real.
    import shutil

    from hcnode.wallet.cli import WalletError
    from hcnode.wallet.drugs import write_graph

    chain.do("acme", "drugs.epcis_import", {"events": items(COMMISSION)})
    chain.do("acme", "drugs.aggregate", {"container": CASE, "units": chain.units("E1", "E2")})
    chain.do("acme", "drugs.ship", {"to": "wholesale", "containers": [CASE]})
    chain.do("wholesale", "drugs.receive", {"containers": [CASE]})
    chain.do("wholesale", "drugs.suspect", {"containers": [CASE], "reason": "seal"})
    answer = to_json(chain.verify("fda", gtin=GTIN, serial="E1"))
    svg = tmp_path / "trail.svg"
    if shutil.which("dot") is None:
        with pytest.raises(WalletError, match="apt install graphviz"):
            write_graph(answer, svg)
        return
    write_graph(answer, svg)
    picture = svg.read_text()
    assert picture.startswith("<?xml") and "<svg" in picture
    assert "acme" in picture and "wholesale" in picture
    assert 'stroke="red"' in picture or 'fill="red"' in picture  # the suspect hand-off is drawn in red
