"""A unit's trail (as ``drugs.verify`` returns it) as EPCIS 2.0 events and as a Graphviz picture.

Owns: writing ledger events in EPCIS 2.0 vocabulary (events captured from EPCIS
are given back exactly as received, so their canonical hash is unchanged) and
the DOT text of the custody chain. Pure: takes the query's JSON answer, returns
values and text; writing files and running ``dot`` is the wallet's job.
"""

from __future__ import annotations

import json
from typing import Any

from hcnode.apps.drugs import epcis
from hcnode.apps.drugs.gs1 import Epc

__all__ = ["trail_document", "trail_dot", "ORG_URN"]

ORG_URN = "urn:hcnode:org:"
"""How ledger organisations appear as EPCIS parties (the importer reads the same form)."""

# ledger kind -> (bizStep, disposition) of the ObjectEvent that says the same thing
_OBJECT_EVENTS = {
    "commission": ("commissioning", "active"),
    "ship": ("shipping", "in_transit"),
    "receive": ("receiving", "in_progress"),
    "return": ("receiving", "returned"),
    "dispense": ("dispensing", "dispensed"),
    "decommission": ("decommissioning", None),
    "recall": ("holding", "recalled"),
    "suspect": ("holding", "non_sellable_other"),
    "clear": ("inspecting", "sellable_accessible"),
}
_DECOMMISSION_DISPOSITIONS = {"destroyed": "destroyed", "stolen": "stolen", "damaged": "damaged",
                              "expired": "expired", "sample": "non_sellable_other"}


def _unit_uri(gtin: str, serial: str) -> str:
    return Epc(kind="sgtin", gtin=gtin, serial=serial).key


def _native_event(view: dict[str, Any], gtin: str, serial: str) -> dict[str, Any] | None:
    kind = view["what"]
    unit = _unit_uri(gtin, serial)
    details = view["details"]
    common = {"eventTime": view["when"], "eventTimeZoneOffset": "+00:00"}
    if kind in ("aggregate", "disaggregate"):
        return {"type": "AggregationEvent", **common,
                "parentID": f"https://id.gs1.org/00/{details['container']}", "childEPCs": [unit],
                "action": "ADD" if kind == "aggregate" else "DELETE",
                "bizStep": "packing" if kind == "aggregate" else "unpacking"}
    if kind not in _OBJECT_EVENTS:
        return None  # clone alerts and error declarations are ledger records, not custody events
    biz_step, disposition = _OBJECT_EVENTS[kind]
    if kind == "decommission":
        disposition = _DECOMMISSION_DISPOSITIONS.get(details.get("reason", ""), "inactive")
    event: dict[str, Any] = {"type": "ObjectEvent", **common, "epcList": [unit],
                             "action": "ADD" if kind == "commission" else "OBSERVE", "bizStep": biz_step}
    if disposition:
        event["disposition"] = disposition
    if kind == "commission":
        event["ilmd"] = {"cbvmda:lotNumber": details["lot"], "cbvmda:itemExpirationDate": details["expiry"]}
    if kind == "ship":
        event["sourceList"] = [{"type": "owning_party", "source": ORG_URN + view["who"]}]
        event["destinationList"] = [{"type": "owning_party", "destination": ORG_URN + details["to"]}]
    return event


def trail_document(answer: dict[str, Any], *, creation_date: str) -> dict[str, Any]:
    """A ``drugs.verify`` answer with its trail as a schema-valid EPCIS 2.0 document."""
    if "trail" not in answer:
        raise epcis.EpcisError("the answer has no trail (sign the query as an entitled organisation)")
    events = []
    for i, view in enumerate(answer["trail"]):
        if "epcis" in view:  # captured from EPCIS: give it back byte for byte
            raw = view["epcis"]
            events.append(epcis.parse_event(json.loads(raw["event"]), dict(map(tuple, raw["ns"])),
                                            where=f"trail event {i} "))
            continue
        event = _native_event(view, answer["gtin"], answer["serial"])
        if event is not None:
            events.append(epcis.parse_event(event, where=f"trail event {i} "))
    return epcis.export_document(events, creation_date=creation_date)


def trail_dot(answer: dict[str, Any]) -> str:
    """The custody chain as Graphviz DOT: one node per organisation, one edge per hand-off.

    Anomalies are red: clone alerts, recalls, suspicion, decommissioning, and a
    verdict other than VERIFIED on the unit itself.
    """
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    bad = answer.get("verdict") != "VERIFIED"
    title = "{} / {}: {}".format(answer["gtin"], answer["serial"], answer.get("verdict"))
    lines = ["digraph trail {", "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="Helvetica"];',
             f"  label={q(title)};",
             f"  fontcolor={'red' if bad else 'black'};"]
    orgs: list[str] = []
    for view in answer.get("trail", []):
        for org in (view["who"], view["details"].get("to")):
            if org and org not in orgs:
                orgs.append(org)
    anomalies = {"clone_alert", "recall", "suspect", "decommission"}
    flagged = {v["who"] for v in answer.get("trail", []) if v["what"] in anomalies}
    for org in orgs:
        color = "red" if org in flagged else "black"
        lines.append(f"  {q(org)} [color={color}, fontcolor={color}];")
    for n, view in enumerate(answer.get("trail", [])):
        what, who = view["what"], view["who"]
        label = f"{n + 1}. {what}\\nblock {view['height']}"
        red = what in anomalies
        style = "color=red, fontcolor=red" if red else "color=black"
        if what == "ship":
            lines.append(f"  {q(who)} -> {q(view['details']['to'])} [label={q(label)}, {style}];")
        else:
            lines.append(f"  {q(who)} -> {q(who)} [label={q(label)}, {style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
