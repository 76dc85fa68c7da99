"""Behaviour of the EPCIS 2.0 layer: real GS1 documents in, canonical hashes, schema-valid out."""

import copy
import json
import time
from pathlib import Path

import jsonschema
import pytest
from epcis_event_hash_generator import hash_generator, json_to_py

from hcnode.apps.drugs.epcis import (
    EPCIS_CONTEXT,
    EpcisError,
    ErrorDeclaration,
    TraceEvent,
    declare_error,
    event_hash,
    export_document,
    import_document,
    parse_event,
)

DATA = Path(__file__).parents[2] / "data" / "epcis"
GENERATOR_EXAMPLES = DATA / "hash-generator"
MAX = 1_000_000
SGTIN_2017 = "https://id.gs1.org/01/10614141073464/21/2017"
SGTIN_2018 = "https://id.gs1.org/01/10614141073464/21/2018"
SSCC = "https://id.gs1.org/00/106141412345678908"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def generator_hashes(text: str) -> list[str]:
    """What epcis-event-hash-generator computes for a whole file, used directly.

    Its namespace table is module state that survives between calls (a quirk,
    see epcis.event_hash), so it is reset first to get the file's own answer.
    """
    json_to_py._namespaces.clear()
    return hash_generator.epcis_hashes_from_events(
        json_to_py.event_list_from_epcis_document_str(text)
    )


@pytest.fixture(scope="module")
def schema_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(load("EPCIS-JSON-Schema.json"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def document(*events: dict, context: list | None = None) -> bytes:
    return json.dumps(
        {
            "@context": context or [EPCIS_CONTEXT, {"example": "http://ns.example.com/epcis/"}],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2024-01-01T00:00:00Z",
            "epcisBody": {"eventList": list(events)},
        }
    ).encode()


def object_event(**fields) -> dict:
    event = {
        "type": "ObjectEvent",
        "eventTime": "2024-03-01T09:00:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def commissioning(serial: str = "2017") -> dict:
    return object_event(
        epcList=[f"urn:epc:id:sgtin:0614141.107346.{serial}"],
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        ilmd={"cbvmda:lotNumber": "LOT42", "cbvmda:itemExpirationDate": "2026-05-31"},
    )


def aggregation(action: str, biz_step: str) -> dict:
    return {
        "type": "AggregationEvent",
        "eventTime": "2024-03-01T10:00:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "parentID": "urn:epc:id:sscc:0614141.1234567890",
        "childEPCs": [
            "urn:epc:id:sgtin:0614141.107346.2017",
            "urn:epc:id:sgtin:0614141.107346.2018",
        ],
        "action": action,
        "bizStep": biz_step,
    }


def one(event: dict, **kw) -> TraceEvent:
    (result,) = import_document(document(event, **kw), max_bytes=MAX)
    return result


# --------------------------------------------------------------------------- real GS1 examples

GS1_EXAMPLES = {
    "Example_9.6.1-ObjectEvent.jsonld": [
        ("ship", (SGTIN_2017, SGTIN_2018), None),
        ("receive", (SGTIN_2018,), None),
    ],
    "Example_9.6.2-ObjectEvent.jsonld": [("receive", (), None)],
    "Example_9.6.3-AggregationEvent.jsonld": [("receive", (SGTIN_2017, SGTIN_2018), SSCC)],
    "Example_9.6.1-ObjectEventWithDigitalLink.jsonld": [
        (
            "ship",
            (
                "https://id.gs1.org/01/70614141123451/21/2017",
                "https://id.gs1.org/01/70614141123451/21/2018",
            ),
            None,
        ),
        ("receive", ("https://id.gs1.org/01/70614141123451/21/2018",), None),
    ],
    "Example_9.6.3-AggregationEventWithDigitalLink.jsonld": [
        (
            "receive",
            (
                "https://id.gs1.org/01/70614141123451/21/2017",
                "https://id.gs1.org/01/70614141123451/21/2018",
            ),
            SSCC,
        ),
    ],
    "Example_9.6.1-ObjectEvent-with-error-declaration.jsonld": [
        ("ship", (SGTIN_2017, SGTIN_2018), None),
        ("receive", (SGTIN_2018,), None),
    ],
    "object_event_all_possible_fields.jsonld": [("receive", (SGTIN_2018,), None)],
    "aggregation_event_all_possible_fields.jsonld": [("receive", (SGTIN_2017, SGTIN_2018), SSCC)],
}


@pytest.mark.parametrize("name", sorted(GS1_EXAMPLES))
def test_gs1_example_events_are_recognised(name):
    events = import_document(load(name), max_bytes=MAX)
    assert [(e.kind, e.epcs, e.parent) for e in events] == GS1_EXAMPLES[name]


@pytest.mark.parametrize("name", sorted(GS1_EXAMPLES))
def test_gs1_example_hashes_equal_what_the_hash_generator_computes_for_the_file(name):
    events = import_document(load(name), max_bytes=MAX)
    assert [e.event_hash for e in events] == generator_hashes(load(name).decode())
    assert all(
        e.event_hash.startswith("ni:///sha-256;") and e.event_hash.endswith("?ver=CBV2.0")
        for e in events
    )


def test_event_ids_published_in_gs1_examples_are_kept_though_they_are_not_the_canonical_hash():
    # GS1's examples carry eventIDs made by an earlier draft of the algorithm; the
    # sender's eventID is kept (corrections refer to it), the hash is recomputed.
    ship, receive = import_document(load("Example_9.6.1-ObjectEvent.jsonld"), max_bytes=MAX)
    assert (
        ship.event_id
        == "ni:///sha-256;df7bb3c352fef055578554f09f5e2aa41782150ced7bd0b8af24dd3ccb30ba69?ver=CBV2.0"
    )
    assert (
        ship.event_hash
        == "ni:///sha-256;df6523665bc5e5803d6c7b84f5a04e103694d8220f2abc4f2c74310e89f31bc6?ver=CBV2.0"
    )


def test_gs1_example_fields_are_read():
    (event,) = import_document(load("Example_9.6.2-ObjectEvent.jsonld"), max_bytes=MAX)
    assert event.event_time == "2013-06-08T14:58:56.591Z"
    assert event.read_point == "urn:epc:id:sgln:0614141.00777.0"
    assert event.biz_location == "urn:epc:id:sgln:0614141.00888.0"
    assert event.sources == (
        ("possessing_party", "urn:epc:id:sgln:4012345.00001.0"),
        ("location", "urn:epc:id:sgln:4012345.00225.0"),
    )
    assert event.destinations == (
        ("owning_party", "urn:epc:id:sgln:0614141.00001.0"),
        ("location", "urn:epc:id:sgln:0614141.00777.0"),
    )
    assert event.disposition == "in_progress"
    assert event.namespaces == (("example", "http://ns.example.com/epcis/"),)


def test_gs1_error_declaration_example_is_read():
    declared, _ = import_document(
        load("Example_9.6.1-ObjectEvent-with-error-declaration.jsonld"), max_bytes=MAX
    )
    plain, _ = import_document(load("Example_9.6.1-ObjectEvent.jsonld"), max_bytes=MAX)
    assert declared.error_declaration == ErrorDeclaration(
        declaration_time="2021-02-01T22:46:31.117000+00:00",
        reason="incorrect_data",
        corrective_event_ids=(
            "ni:///sha-256;c6407ffcac52ec159528f2b556ba4ac3844c5aa48485c1fd61643e94f0a2d678?ver=CBV2.0",
            "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        ),
    )
    # The declaration is matched to the event it retracts by the same hash.
    assert declared.event_hash == plain.event_hash


def test_gs1_transformation_events_are_rejected_as_not_traceability_events():
    with pytest.raises(EpcisError, match=r"event 0 type: TransformationEvent is not used"):
        import_document(load("ErrorDeclarationAndCorrectiveEvent.jsonld"), max_bytes=MAX)


def _generator_examples() -> list[Path]:
    return sorted(GENERATOR_EXAMPLES.glob("*.jsonld"))


@pytest.mark.parametrize("path", _generator_examples(), ids=lambda p: p.stem)
def test_event_hash_equals_the_hashes_published_with_the_generator_examples(path):
    doc = json.loads(path.read_text())
    namespaces = {k: v for c in doc["@context"] if isinstance(c, dict) for k, v in c.items()}
    expected = path.with_suffix(".hashes").read_text().split()
    body = doc["epcisBody"]
    events = (
        body["eventList"]
        if "eventList" in body
        else body["queryResults"]["resultsBody"]["eventList"]
    )
    assert [event_hash(e, namespaces) for e in events] == expected


def test_generator_examples_that_are_traceability_events_import_with_the_published_hashes():
    imported = 0
    for path in _generator_examples():
        try:
            events = import_document(path.read_bytes(), max_bytes=MAX)
        except EpcisError:
            continue  # other bizSteps (transporting, sensor_reporting) and event types
        assert [e.event_hash for e in events] == path.with_suffix(".hashes").read_text().split(), (
            path.name
        )
        imported += 1
    assert imported >= 10


def test_hash_does_not_depend_on_documents_hashed_before():
    # The generator's namespace table outlives a call: after a document defining
    # 'example', a later document's literal value 'example:x' would be expanded.
    alone = import_document(load("object_event_all_possible_fields.jsonld"), max_bytes=MAX)
    import_document(load("Example_9.6.1-ObjectEvent.jsonld"), max_bytes=MAX)
    after = import_document(load("object_event_all_possible_fields.jsonld"), max_bytes=MAX)
    assert [e.event_hash for e in after] == [e.event_hash for e in alone]


# --------------------------------------------------------------------------- meaning of events


@pytest.mark.parametrize(
    "biz_step",
    ["shipping", "urn:epcglobal:cbv:bizstep:shipping", "https://ref.gs1.org/cbv/BizStep-shipping"],
)
def test_bizstep_as_bare_word_urn_or_web_uri_is_the_same_event(biz_step):
    event = one(object_event(bizStep=biz_step))
    assert (event.kind, event.biz_step) == ("ship", "shipping")
    assert event.event_hash == one(object_event()).event_hash


def test_epc_urn_and_digital_link_name_the_same_pack_and_give_the_same_hash():
    urn = one(object_event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"]))
    link = one(object_event(epcList=["https://id.gs1.org/01/10614141073464/21/2017"]))
    assert urn.epcs == link.epcs == (SGTIN_2017,)
    assert urn.event_hash == link.event_hash


def test_digital_link_with_lot_and_expiry_query_is_read_relative_to_the_event_year():
    event = one(
        object_event(epcList=["https://id.gs1.org/01/09521568251204/10/L1/21/10?17=260500"])
    )
    assert event.epcs == ("https://id.gs1.org/01/09521568251204/21/10",)


def test_commissioning_gives_lot_and_expiry_from_ilmd():
    event = one(commissioning())
    assert (event.kind, event.lot, event.expiry, event.epcs) == (
        "commission",
        "LOT42",
        "2026-05-31",
        (SGTIN_2017,),
    )


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"bizStep": "commissioning", "action": "ADD"}, "commission"),
        ({"bizStep": "shipping"}, "ship"),
        ({"bizStep": "departing"}, "ship"),
        ({"bizStep": "receiving", "disposition": "in_progress"}, "receive"),
        ({"bizStep": "arriving"}, "receive"),
        ({"bizStep": "accepting"}, "receive"),
        ({"bizStep": "dispensing", "disposition": "dispensed"}, "dispense"),
        ({"bizStep": "retail_selling", "disposition": "retail_sold"}, "dispense"),
        (
            {"bizStep": "decommissioning", "action": "DELETE", "disposition": "inactive"},
            "decommission",
        ),
        ({"bizStep": "destroying", "action": "DELETE", "disposition": "destroyed"}, "decommission"),
        ({"bizStep": "holding", "disposition": "recalled"}, "recall"),
        ({"bizStep": "shipping", "disposition": "urn:epcglobal:cbv:disp:recalled"}, "recall"),
        ({"bizStep": "receiving", "disposition": "returned"}, "return"),
        ({"bizStep": "holding", "disposition": "non_sellable_other"}, "suspect"),
        ({"bizStep": "inspecting", "disposition": "no_pedigree_match"}, "suspect"),
    ],
)
def test_bizstep_and_disposition_map_to_ledger_kinds(fields, kind):
    assert one(object_event(**fields)).kind == kind


def test_aggregation_add_and_delete_are_aggregate_and_disaggregate_with_the_sscc_parent():
    packed = one(aggregation("ADD", "packing"))
    unpacked = one(aggregation("DELETE", "unpacking"))
    assert (packed.kind, unpacked.kind) == ("aggregate", "disaggregate")
    assert packed.parent == unpacked.parent == SSCC
    assert packed.epcs == (SGTIN_2017, SGTIN_2018)


def test_source_and_destination_types_are_read_in_any_cbv_form():
    event = one(
        object_event(
            sourceList=[
                {
                    "type": "urn:epcglobal:cbv:sdt:owning_party",
                    "source": "urn:epc:id:pgln:0614141.00001",
                }
            ],
            destinationList=[
                {
                    "type": "https://ref.gs1.org/cbv/SDT-owning_party",
                    "destination": "urn:epc:id:pgln:0012345.00001",
                }
            ],
        )
    )
    assert event.sources == (("owning_party", "urn:epc:id:pgln:0614141.00001"),)
    assert event.destinations == (("owning_party", "urn:epc:id:pgln:0012345.00001"),)


# --------------------------------------------------------------------------- corrections


def test_correction_is_a_new_event_declaring_the_old_one_wrong_with_the_same_hash():
    wrong = one(object_event(bizStep="shipping"))
    fixed = one(object_event(bizStep="receiving"))
    declared = declare_error(
        wrong,
        declaration_time="2024-03-02T08:00:00.000+01:00",
        corrective_event_ids=[fixed.event_hash],
    )
    assert declared.event_hash == wrong.event_hash
    assert declared.error_declaration == ErrorDeclaration(
        declaration_time="2024-03-02T08:00:00.000+01:00",
        reason="incorrect_data",
        corrective_event_ids=(fixed.event_hash,),
    )
    assert wrong.error_declaration is None and "errorDeclaration" not in wrong.event  # never edited
    with pytest.raises(EpcisError, match="already carries"):
        declare_error(declared, declaration_time="2024-03-03T08:00:00Z")


def test_error_declaration_with_bad_reason_or_time_is_rejected():
    event = one(object_event())
    with pytest.raises(EpcisError, match="errorDeclaration.declarationTime"):
        declare_error(event, declaration_time="yesterday")
    with pytest.raises(EpcisError, match="errorDeclaration.reason"):
        declare_error(event, declaration_time="2024-03-02T08:00:00Z", reason="oops")


# --------------------------------------------------------------------------- export


def trail() -> list[TraceEvent]:
    events = [
        one(commissioning("2017")),
        one(commissioning("2018")),
        one(aggregation("ADD", "packing")),
    ]
    events += import_document(load("Example_9.6.1-ObjectEvent.jsonld"), max_bytes=MAX)
    events += import_document(
        load("Example_9.6.3-AggregationEventWithDigitalLink.jsonld"), max_bytes=MAX
    )
    events.append(
        one(object_event(bizStep="dispensing", disposition="dispensed", epcList=[SGTIN_2018]))
    )
    events.append(
        declare_error(events[-1], declaration_time="2024-03-05T08:00:00Z", reason="did_not_occur")
    )
    return events


def test_export_is_valid_against_the_gs1_epcis_2_schema(schema_validator):
    doc = export_document(
        trail(),
        creation_date="2024-03-06T12:00:00Z",
        document_id="urn:uuid:6b2c1d9e-0000-4000-8000-000000000001",
    )
    errors = [f"{list(e.path)}: {e.message}" for e in schema_validator.iter_errors(doc)]
    assert errors == []
    assert doc["@context"][0] == EPCIS_CONTEXT
    assert (doc["type"], doc["schemaVersion"], doc["creationDate"]) == (
        "EPCISDocument",
        "2.0",
        "2024-03-06T12:00:00Z",
    )
    assert len(doc["epcisBody"]["eventList"]) == 8


def test_schema_really_rejects_a_broken_document(schema_validator):
    doc = export_document(trail(), creation_date="2024-03-06T12:00:00Z")
    doc["epcisBody"]["eventList"][0]["action"] = "EDIT"
    assert not schema_validator.is_valid(doc)


def test_round_trip_import_of_export_keeps_every_event_and_hash():
    events = trail()
    doc = export_document(events, creation_date="2024-03-06T12:00:00Z")
    again = import_document(json.dumps(doc), max_bytes=MAX)
    assert [e.event_hash for e in again] == [e.event_hash for e in events]
    assert again == events


def test_export_gives_every_event_its_hash_as_event_id_when_the_sender_gave_none():
    event = one(object_event())
    (exported,) = export_document([event], creation_date="2024-03-06T12:00:00Z")["epcisBody"][
        "eventList"
    ]
    assert exported["eventID"] == event.event_hash == event.event_id


def test_export_is_deterministic():
    a = export_document(trail(), creation_date="2024-03-06T12:00:00Z")
    b = export_document(trail(), creation_date="2024-03-06T12:00:00Z")
    assert json.dumps(a) == json.dumps(b)


def test_export_refuses_events_whose_prefixes_clash():
    a = one(object_event(**{"example:note": "a"}))
    b = one(
        object_event(**{"example:note": "b"}),
        context=[EPCIS_CONTEXT, {"example": "http://other.example/"}],
    )
    with pytest.raises(EpcisError, match="prefix 'example'"):
        export_document([a, b], creation_date="2024-03-06T12:00:00Z")


def test_export_needs_an_rfc3339_creation_date():
    with pytest.raises(EpcisError, match="creation_date"):
        export_document([], creation_date="now")


# --------------------------------------------------------------------------- bad input


def test_oversized_document_is_rejected_by_size_before_parsing():
    data = b"{" * (100 * 1024 * 1024)  # 100 MB, and not JSON: parsing would say so
    started = time.perf_counter()
    with pytest.raises(EpcisError, match="larger than max_bytes=10000000"):
        import_document(data, max_bytes=10_000_000)
    assert time.perf_counter() - started < 1.0


def test_oversized_str_document_is_rejected_by_size():
    with pytest.raises(EpcisError, match="larger than max_bytes=10"):
        import_document(" " * 11, max_bytes=10)


def test_whole_document_fails_when_one_event_is_bad_and_names_its_index():
    bad = object_event(epcList=["urn:epc:id:sgtin:0614141.107346.2019", 42])
    with pytest.raises(EpcisError, match=r"^event 2 epcList\[1\]: must be a string, got int$"):
        import_document(document(commissioning(), object_event(), bad), max_bytes=MAX)


BAD_DOCUMENTS = [
    (b"{not json", "invalid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"a": NaN}', "NaN is not a JSON number"),
    (b'{"a": 1e999}', "out of range"),
    (b'{"a": 1, "a": 2}', "appears twice"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|deeper than"),
    (b"[]", "must be a JSON object, got list"),
    (json.dumps({"type": "EPCISQueryDocument"}).encode(), "type: must be 'EPCISDocument'"),
    (json.dumps({"type": "EPCISDocument", "schemaVersion": "1.2"}).encode(), "schemaVersion"),
    (
        json.dumps(
            {"type": "EPCISDocument", "schemaVersion": "2.0", "epcisBody": {"eventList": []}}
        ).encode(),
        "@context: missing",
    ),
    (document(context=["https://example.com/evil-context.jsonld"]), "@context: must include"),
    (
        document(context=[EPCIS_CONTEXT, {"gs1": "http://evil/"}]),
        r"@context\[1\].gs1: this prefix may not be redefined",
    ),
    (document(context=[EPCIS_CONTEXT, {"urn": "http://evil/"}]), "may not be redefined"),
    (
        json.dumps(
            {
                "@context": EPCIS_CONTEXT,
                "type": "EPCISDocument",
                "schemaVersion": "2.0",
                "epcisBody": {"eventList": {}},
            }
        ).encode(),
        "epcisBody.eventList: must be a list",
    ),
]


@pytest.mark.parametrize(("data", "complaint"), BAD_DOCUMENTS, ids=[c for _, c in BAD_DOCUMENTS])
def test_bad_document_is_rejected_naming_the_problem(data, complaint):
    with pytest.raises(EpcisError, match=complaint):
        import_document(data, max_bytes=1_000_000)


BAD_EVENTS = [
    (object_event(bizStep="teleporting"), r"event 0 bizStep: unknown bizStep 'teleporting'"),
    (
        object_event(bizStep="urn:epcglobal:cbv:bizstep:transporting"),
        "unknown bizStep 'transporting'",
    ),
    (object_event(bizStep=None), "bizStep: is required"),
    (object_event(bizStep=7), "bizStep: is required"),
    (object_event(action="EDIT"), "action: 'EDIT' must be ADD, OBSERVE or DELETE"),
    (object_event(type="TransactionEvent"), "TransactionEvent is not used"),
    (object_event(type="Thing"), "'Thing' is not an EPCIS event type"),
    (
        object_event(eventTime="2024-03-01T09:00:00"),
        "eventTime: '2024-03-01T09:00:00' is not an RFC 3339 date-time with a time-zone offset",
    ),
    (
        object_event(eventTime=1709280000),
        "eventTime: must be an RFC 3339 date-time string, got int",
    ),
    (object_event(eventTime="2024-02-30T09:00:00Z"), "not a valid date-time"),
    (object_event(eventTime="2024-03-01T09:00:00.9999+01:00"), "millisecond precision"),
    (object_event(eventTimeZoneOffset="CET"), "eventTimeZoneOffset"),
    (
        object_event(epcList="urn:epc:id:sgtin:0614141.107346.2017"),
        "epcList: must be a list of strings, got str",
    ),
    (object_event(epcList=["urn:epc:id:sgtin:0614141.107346.2017"] * 2), "names one item twice"),
    (
        object_event(epcList=["https://id.gs1.org/01/10614141073465/21/2017"]),
        r"epcList\[0\]: GTIN '10614141073465': Invalid GTIN check digit",
    ),
    (
        object_event(epcList=["https://id.gs1.org/00/106141412345678909"]),
        r"epcList\[0\]: SSCC .*check digit",
    ),
    (
        object_event(epcList=["urn:epc:id:sgln:0614141.07346.1234"]),
        r"epcList\[0\]: EPC .* is neither",
    ),
    (object_event(disposition="sparkling"), "disposition: 'sparkling' is not a CBV disposition"),
    (
        object_event(readPoint="urn:epc:id:sgln:0614141.07346.1234"),
        r"readPoint: must be an object \{\"id\"",
    ),
    (object_event(sourceList=[{"type": "owning_party"}]), r"sourceList\[0\]: must be"),
    (
        object_event(sourceList=[{"type": "friend", "source": "x"}]),
        r"sourceList\[0\].type: 'friend' is not a CBV",
    ),
    (
        object_event(bizTransactionList={"type": "po"}),
        "bizTransactionList: must be a list of objects",
    ),
    (object_event(color="blue"), "color: unknown ObjectEvent field"),
    (object_event(**{"acme:color": "blue"}), "prefix 'acme' is not defined"),
    (object_event(**{"example:temp": "inf"}), "example:temp: 'inf' cannot be hashed"),
    (
        object_event(sensorElementList=[{"sensorMetadata": {"time": "2024-03-01T09:00:00"}}]),
        r"sensorMetadata.time: .* time-zone offset",
    ),
    (
        object_event(bizStep="commissioning", ilmd={"cbvmda:itemExpirationDate": "2026-02-30"}),
        "itemExpirationDate: '2026-02-30' is not a real date",
    ),
    (
        object_event(bizStep="commissioning", ilmd={"cbvmda:lotNumber": 42}),
        "lotNumber: must be a non-empty string",
    ),
    (
        object_event(errorDeclaration={"reason": "incorrect_data"}),
        "errorDeclaration.declarationTime",
    ),
    (
        {**aggregation("ADD", "packing"), "parentID": None},
        "parentID: is required for an AggregationEvent with action ADD",
    ),
    (
        {**aggregation("ADD", "packing"), "parentID": "urn:epc:id:sscc:0614141.123456789"},
        "parentID: SSCC URN",
    ),
    ({**aggregation("ADD", "packing"), "epcList": []}, "epcList: unknown AggregationEvent field"),
    ("not an event", "event 0 event: must be an object, got str"),
]


@pytest.mark.parametrize(("event", "complaint"), BAD_EVENTS, ids=[c[:40] for _, c in BAD_EVENTS])
def test_bad_event_is_rejected_naming_the_event_and_field(event, complaint):
    event = {k: v for k, v in event.items() if v is not None} if isinstance(event, dict) else event
    with pytest.raises(EpcisError, match=complaint):
        import_document(document(event), max_bytes=MAX)


def test_parse_event_checks_a_single_event_outside_a_document():
    event = parse_event(copy.deepcopy(object_event()))
    assert event.kind == "ship" and event.epcs == (SGTIN_2017,)
    with pytest.raises(EpcisError, match="^action"):
        parse_event(object_event(action="EDIT"))


def test_max_bytes_must_be_a_positive_int():
    with pytest.raises(EpcisError, match="max_bytes"):
        import_document(b"{}", max_bytes=0)


def test_hash_does_not_depend_on_the_key_order_inside_biz_transaction_and_source_entries():
    # The generator takes these entries' two fields in the order given; the GS1
    # reference pre-hashes put 'type' first, so events are canonicalised that way.
    type_first = one(
        object_event(
            bizTransactionList=[
                {"type": "po", "bizTransaction": "http://transaction.acme.com/po/1"}
            ],
            sourceList=[{"type": "owning_party", "source": "urn:epc:id:pgln:0614141.00001"}],
        )
    )
    value_first = one(
        object_event(
            bizTransactionList=[
                {"bizTransaction": "http://transaction.acme.com/po/1", "type": "po"}
            ],
            sourceList=[{"source": "urn:epc:id:pgln:0614141.00001", "type": "owning_party"}],
        )
    )
    assert value_first.event_hash == type_first.event_hash
    assert value_first == type_first


def test_biz_transaction_without_type_is_refused_because_the_generator_cannot_hash_it():
    with pytest.raises(EpcisError, match=r"bizTransactionList\[0\].type: is required here"):
        one(
            object_event(
                bizTransactionList=[{"bizTransaction": "http://transaction.acme.com/po/1"}]
            )
        )


def test_source_entry_with_extra_fields_is_refused_because_the_generator_would_ignore_them():
    with pytest.raises(EpcisError, match=r"sourceList\[0\]: must have exactly"):
        one(
            object_event(
                sourceList=[
                    {
                        "type": "location",
                        "source": "urn:epc:id:sgln:0614141.00001.0",
                        "example:x": "y",
                    }
                ]
            )
        )


def test_the_same_instant_written_with_different_offsets_or_precision_has_the_same_hash():
    utc = one(object_event(eventTime="2024-03-01T08:00:00Z"))
    local = one(object_event(eventTime="2024-03-01T09:00:00.000000+01:00"))
    assert utc.event_hash == local.event_hash
    assert utc.event_time != local.event_time  # the event keeps what the sender wrote
