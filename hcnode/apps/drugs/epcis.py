"""EPCIS 2.0 JSON/JSON-LD documents in and out of the drug-traceability ledger.

This module owns the translation between GS1 EPCIS 2.0 documents (what trading
partners' systems send and expect) and :class:`TraceEvent`, the ledger's flat,
typed, immutable view of one event: which serialized packs or logistic units,
what happened to them (``kind``), when, where, between whom, and the event's
GS1 canonical event hash (``ni:///sha-256;...?ver=CBV2.0``), which is its
identity everywhere in hcnode.

It is pure: it takes ``bytes``/``str`` and returns values; no files, network or
clock (``creation_date`` of an export is a parameter). It must not know about
transactions, signatures, state, roles or verdicts; the drugs app builds those
on top. GS1 keys and URIs are read by :mod:`hcnode.apps.drugs.gs1`.

The canonical hash is computed by GS1's reference implementation,
``epcis-event-hash-generator`` (1.9.x). Its code keeps module-level state and
can silently drop an event or read the local time zone or today's date, so
:func:`event_hash` wraps it: one event at a time under a lock, its namespace
table reset, its JSON-LD loader pinned to the bundled EPCIS context (never the
network), and every field it would treat as a timestamp checked first to be an
RFC 3339 date-time with an offset. See :func:`event_hash`.

Which EPCIS events become which ledger kinds (first matching row; tested):

===================================  =============================================
AggregationEvent, action ADD         ``aggregate`` (children packed into parent)
AggregationEvent, action DELETE      ``disaggregate``
any event, disposition ``recalled``  ``recall`` (CBV 2.0 has no recall bizStep;
                                     the disposition is how EPCIS says it)
any event, disposition ``returned``  ``return``
bizStep commissioning                ``commission``
bizStep shipping, departing          ``ship``
bizStep receiving, arriving,         ``receive``
accepting
bizStep dispensing, retail_selling   ``dispense`` (a pharmacy's sale to the
                                     patient is the point of dispense)
bizStep decommissioning, destroying  ``decommission``
bizStep holding, inspecting          ``suspect`` (quarantine / investigation)
===================================  =============================================

An AggregationEvent with action OBSERVE (e.g. GS1's example 9.6.3, a pallet
received) takes its kind from the rows below the first two and keeps its parent.
The disposition rows apply only to events whose bizStep is in the table. Any
other bizStep, a missing bizStep, or another event type is an error: the
ledger never guesses what an event means.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.resources
import json
import math
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from epcis_event_hash_generator import hash_generator, json_to_py
from pyld import jsonld

from hcnode.apps.drugs.gs1 import GS1Error, parse_epc

__all__ = [
    "EPCIS_CONTEXT",
    "EpcisError",
    "KINDS",
    "KIND_BY_BIZSTEP",
    "ErrorDeclaration",
    "TraceEvent",
    "declare_error",
    "event_hash",
    "export_document",
    "import_document",
    "parse_event",
]

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# The two context URLs whose content the hash generator ships; both are the EPCIS 2.0 context.
_KNOWN_CONTEXTS = frozenset({EPCIS_CONTEXT, "https://gs1.github.io/EPCIS/epcis-context.jsonld"})
# Prefixes the EPCIS 2.0 context itself defines; a document may repeat them, not change them.
_STANDARD_PREFIXES: Mapping[str, str] = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": "https://ref.gs1.org/cbv/",
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": "https://gs1.org/voc/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}
# Prefixes that would capture URI schemes used in values (urn:epc:..., https://...).
_FORBIDDEN_PREFIXES = frozenset({"urn", "http", "https", "ni", "mailto", "tag", "data"})

MAX_DEPTH = 32
"""Deepest JSON nesting accepted; EPCIS events need about 6."""

KINDS = frozenset({
    "commission", "aggregate", "disaggregate", "ship", "receive", "dispense",
    "return", "decommission", "recall", "suspect",
})  # fmt: skip

KIND_BY_BIZSTEP: Mapping[str, str] = {
    "commissioning": "commission",
    "shipping": "ship",
    "departing": "ship",
    "receiving": "receive",
    "arriving": "receive",
    "accepting": "receive",
    "dispensing": "dispense",
    "retail_selling": "dispense",
    "decommissioning": "decommission",
    "destroying": "decommission",
    "holding": "suspect",
    "inspecting": "suspect",
}
_KIND_BY_DISPOSITION = {"recalled": "recall", "returned": "return"}

_CBV_DISPOSITIONS = frozenset({
    "active", "container_closed", "damaged", "destroyed", "dispensed", "disposed", "encoded",
    "expired", "in_progress", "in_transit", "inactive", "no_pedigree_match",
    "non_sellable_other", "partially_dispensed", "recalled", "reserved", "retail_sold",
    "returned", "sellable_accessible", "sellable_not_accessible", "stolen", "unknown",
    "available", "completeness_verified", "completeness_inferred", "conformant",
    "container_open", "mismatch_instance", "mismatch_class", "mismatch_quantity",
    "needs_replacement", "non_conformant", "unavailable",
})  # fmt: skip
_CBV_SDT = frozenset({"owning_party", "possessing_party", "location"})
_CBV_ER = frozenset({"did_not_occur", "incorrect_data"})
_CBV_BTT = frozenset({
    "bol", "cert", "desadv", "inv", "pedigree", "po", "poc", "prodorder", "recadv", "rma",
    "testprd", "testevt", "upevt",
})  # fmt: skip

# (URN form, web-vocabulary form) of each CBV vocabulary; both reduce to the bare word.
_VOCAB = {
    "bizStep": ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"),
    "disposition": ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
    "type": ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
    "reason": ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
    "btt": ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
}

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})")
_TZ_OFFSET = re.compile(r"[+-](?:0\d|1[0-4]):[0-5]\d")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PREFIXED = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*):(.+)")

_COMMON_FIELDS = frozenset({
    "type", "eventTime", "eventTimeZoneOffset", "recordTime", "eventID", "errorDeclaration",
    "certificationInfo", "action", "bizStep", "disposition", "persistentDisposition",
    "readPoint", "bizLocation", "bizTransactionList", "sourceList", "destinationList",
    "sensorElementList",
})  # fmt: skip
_FIELDS_BY_TYPE = {
    "ObjectEvent": _COMMON_FIELDS | {"epcList", "quantityList", "ilmd"},
    "AggregationEvent": _COMMON_FIELDS | {"parentID", "childEPCs", "childQuantityList"},
}
_OTHER_EVENT_TYPES = frozenset(
    {"TransformationEvent", "TransactionEvent", "AssociationEvent", "ExtendedEvent"}
)
_DOCUMENT_FIELDS = frozenset({
    "@context", "type", "schemaVersion", "creationDate", "epcisHeader", "epcisBody", "id",
    "sender", "receiver", "instanceIdentifier",
})  # fmt: skip


class EpcisError(ValueError):
    """An EPCIS document or event the ledger cannot take; the message names the event and field."""


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class ErrorDeclaration:
    """EPCIS 2.0 errorDeclaration: this event is declared wrong, never edited.

    The declaring event has the *same* canonical hash as the event it declares
    wrong (the hash leaves errorDeclaration out), which is how the two are
    matched; ``corrective_event_ids`` name the events that replace it.
    """

    declaration_time: str
    reason: str | None
    corrective_event_ids: tuple[str, ...]


@dataclass(frozen=True)
class TraceEvent:
    """One EPCIS event as the drug-traceability ledger sees it.

    ``raw`` is the event object exactly as received (plus ``eventID`` set to the
    hash when the sender gave none), as canonical JSON, and ``namespaces`` the
    document-level JSON-LD prefixes it uses: together they reproduce the same
    ``event_hash`` on export and re-import.
    """

    kind: str
    event_type: str
    action: str
    biz_step: str
    event_time: str
    event_hash: str
    event_id: str
    epcs: tuple[str, ...]
    """Canonical keys (:attr:`hcnode.apps.drugs.gs1.Epc.key`) of epcList / childEPCs."""
    parent: str | None
    read_point: str | None
    biz_location: str | None
    sources: tuple[tuple[str, str], ...]
    """(type, id) pairs from sourceList; CBV types as bare words (owning_party, ...)."""
    destinations: tuple[tuple[str, str], ...]
    lot: str | None
    expiry: str | None
    disposition: str | None
    error_declaration: ErrorDeclaration | None
    raw: str
    namespaces: tuple[tuple[str, str], ...] = ()

    @property
    def event(self) -> dict[str, Any]:
        """A fresh copy of the EPCIS event object."""
        result: dict[str, Any] = json.loads(self.raw)
        return result


# --------------------------------------------------------------------------- decoding


def _reject_constant(name: str) -> None:
    raise EpcisError(f"invalid JSON: {name} is not a JSON number")


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise EpcisError(f"invalid JSON: number {text} is out of range")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise EpcisError(f"invalid JSON: key {key!r} appears twice in one object")
        result[key] = value
    return result


def _decode(data: bytes | str, max_bytes: int) -> Any:
    """Strict, bounded JSON decoding: size first, then UTF-8, then JSON."""
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        raise EpcisError(f"max_bytes must be a positive int, got {max_bytes!r}")
    if isinstance(data, str):
        if len(data) > max_bytes:  # every character is at least one byte
            raise EpcisError(f"document is larger than max_bytes={max_bytes}")
        data = data.encode("utf-8", errors="surrogatepass")
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise EpcisError(f"document must be bytes or str, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise EpcisError(f"document is {len(data)} bytes, larger than max_bytes={max_bytes}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EpcisError(f"document is not UTF-8: {exc}") from None
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            object_pairs_hook=_no_duplicate_keys,
        )
    except json.JSONDecodeError as exc:
        raise EpcisError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise EpcisError("invalid JSON: nested too deeply") from None
    except EpcisError:
        raise
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise EpcisError(f"invalid JSON: {exc}") from None


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


# --------------------------------------------------------------------------- hashing

_HASH_LOCK = threading.Lock()
_context_document: dict[str, Any] | None = None


def _pinned_loader(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """JSON-LD document loader that knows the EPCIS 2.0 context and nothing else.

    The generator's own loader falls back to fetching unknown URLs from the
    internet; a ledger node must never do that while hashing.
    """
    global _context_document
    if url not in _KNOWN_CONTEXTS:
        raise EpcisError(f"JSON-LD context {url!r} is not the EPCIS 2.0 context")
    if _context_document is None:
        # The generator package ships the context (the GS1 file named by its sha256).
        name = "e532647e8eb371379b8b0e8602d8981c8566bc60f7351f22c76a5bc865962008.jsonld"
        text = importlib.resources.files("epcis_event_hash_generator").joinpath(name).read_text()
        _context_document = json.loads(text)
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": copy.deepcopy(_context_document),
    }


def event_hash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The GS1 canonical event hash of one EPCIS 2.0 event (JSON form).

    Computed by epcis-event-hash-generator on a one-event document whose
    context is the EPCIS 2.0 context plus ``namespaces`` (prefix -> IRI for the
    event's extension fields), so the hash depends on the event alone and not on
    which document carried it. The generator keeps global state (a namespace
    table, its join string, pyld's document loader), hence the lock.
    Callers should pass events checked by :func:`parse_event`; this function
    only guarantees it never returns a hash for an event the generator dropped.
    """
    context: list[Any] = [EPCIS_CONTEXT]
    if namespaces:
        context.append(dict(sorted(namespaces.items())))
    document = {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2000-01-01T00:00:00Z",
        "epcisBody": {"eventList": [copy.deepcopy(dict(event))]},
    }
    with _HASH_LOCK:
        previous_loader = jsonld.get_document_loader()
        jsonld.set_document_loader(_pinned_loader)
        json_to_py._namespaces.clear()  # noqa: SLF001  (state left by the previous call)
        try:
            events = json_to_py.event_list_from_epcis_document_json(document)
            hashes = hash_generator.epcis_hashes_from_events(events, "sha256")
        except EpcisError:
            raise
        except Exception as exc:  # the generator raises whatever its parsers raise
            raise EpcisError(f"the hash generator cannot read this event: {exc!r}") from None
        finally:
            json_to_py._namespaces.clear()  # noqa: SLF001
            jsonld.set_document_loader(previous_loader)
    if len(hashes) != 1:
        # derive_prehashes_from_events logs and skips an event it fails on.
        raise EpcisError("the hash generator could not canonicalise this event")
    result: str = hashes[0]
    return result


# --------------------------------------------------------------------------- event checks


class _Where:
    """Names the place of a problem: 'event 3 epcList[1]'."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def fail(self, field: str, problem: str) -> EpcisError:
        return EpcisError(f"{self.prefix}{field}: {problem}")


def _bare(value: str, vocab: str) -> str:
    for prefix in _VOCAB[vocab]:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _is_uri(value: str) -> bool:
    return bool(_PREFIXED.fullmatch(value))


def _check_datetime(value: Any, where: _Where, field: str) -> str:
    if not isinstance(value, str):
        raise where.fail(field, f"must be an RFC 3339 date-time string, got {type(value).__name__}")
    if not _RFC3339.fullmatch(value):
        raise where.fail(
            field,
            f"{value!r} is not an RFC 3339 date-time with a time-zone offset "
            "(e.g. 2024-05-01T10:00:00.000+02:00)",
        )
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise where.fail(field, f"{value!r} is not a valid date-time") from None
    if round(parsed.microsecond, -3) >= 1_000_000:
        # The generator rounds to milliseconds with datetime.replace and fails on overflow.
        raise where.fail(field, f"{value!r}: give at most millisecond precision")
    return value


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """Yield (path, key, value) for every key and list element below ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            yield sub, key, item
            yield from _walk(item, sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            sub = f"{path}[{i}]"
            yield sub, "", item
            yield from _walk(item, sub)


def _is_infinite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return False
    try:
        return math.isinf(float(str(value)))
    except (ValueError, OverflowError):
        return False


def _check_hashable(event: Mapping[str, Any], where: _Where) -> None:
    """Reject what would make the generator's hash wrong, machine- or day-dependent.

    The generator parses the time fields of sensor data with dateutil, which
    reads a missing offset as the machine's local time and fills a missing
    date from today; and it silently drops an event holding a value whose
    float() is infinite ('inf', '1e999'). (eventTime is checked by the caller.)
    """
    for path, _, item in _walk(event, ""):
        if _is_infinite_number(item):
            raise where.fail(
                path, f"{item!r} cannot be hashed (the hash generator drops such an event)"
            )
    for i, element in enumerate(event.get("sensorElementList", [])):
        meta = element.get("sensorMetadata", {})
        if not isinstance(meta, dict):
            raise where.fail(f"sensorElementList[{i}].sensorMetadata", "must be an object")
        for field in ("time", "startTime", "endTime"):
            if field in meta:
                _check_datetime(
                    meta[field], where, f"sensorElementList[{i}].sensorMetadata.{field}"
                )
        reports = element.get("sensorReport", [])
        if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
            raise where.fail(f"sensorElementList[{i}].sensorReport", "must be a list of objects")
        for j, report in enumerate(reports):
            if "time" in report:
                _check_datetime(
                    report["time"], where, f"sensorElementList[{i}].sensorReport[{j}].time"
                )


def _opt_str(event: Mapping[str, Any], field: str, where: _Where) -> str | None:
    value = event.get(field)
    if value is not None and not (isinstance(value, str) and value):
        raise where.fail(field, f"must be a non-empty string, got {value!r}")
    return value


def _str_list(event: Mapping[str, Any], field: str, where: _Where) -> list[str]:
    value = event.get(field, [])
    if not isinstance(value, list):
        raise where.fail(field, f"must be a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise where.fail(f"{field}[{i}]", f"must be a string, got {type(item).__name__}")
    return value


def _epc_key(uri: str, where: _Where, field: str, year: int) -> str:
    try:
        return parse_epc(uri, reference_year=year).key
    except GS1Error as exc:
        raise where.fail(field, str(exc)) from None


def _location(event: Mapping[str, Any], field: str, where: _Where) -> str | None:
    value = event.get(field)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise where.fail(field, 'must be an object {"id": "<location URI>"}')
    location: str = value["id"]
    return location


def _parties(
    event: Mapping[str, Any], field: str, role: str, where: _Where
) -> tuple[tuple[str, str], ...]:
    value = event.get(field, [])
    if not isinstance(value, list):
        raise where.fail(field, f"must be a list, got {type(value).__name__}")
    parties = []
    for i, item in enumerate(value):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("type"), str)
            and isinstance(item.get(role), str)
            and item[role]
        ):
            raise where.fail(f"{field}[{i}]", f'must be {{"type": "...", "{role}": "<id>"}}')
        kind = _bare(item["type"], "type")
        if kind not in _CBV_SDT and not _is_uri(kind):
            raise where.fail(
                f"{field}[{i}].type",
                f"{item['type']!r} is not a CBV source/destination type "
                f"({', '.join(sorted(_CBV_SDT))}) nor a URI",
            )
        if set(item) != {"type", role}:
            # The generator hashes only the first two fields of such an entry.
            raise where.fail(f"{field}[{i}]", f"must have exactly the fields 'type' and '{role}'")
        parties.append((kind, item[role]))
    return tuple(parties)


def _biz_transactions(event: Mapping[str, Any], where: _Where) -> None:
    value = event.get("bizTransactionList", [])
    if not isinstance(value, list):
        raise where.fail("bizTransactionList", "must be a list of objects")
    for i, item in enumerate(value):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("bizTransaction"), str)
            and item["bizTransaction"]
        ):
            raise where.fail(
                f"bizTransactionList[{i}]", 'must be {"type": "...", "bizTransaction": "<id>"}'
            )
        if not isinstance(item.get("type"), str):
            # Valid EPCIS, but epcis-event-hash-generator 1.9.3 cannot hash it (IndexError).
            raise where.fail(
                f"bizTransactionList[{i}].type", "is required here: the canonical hash needs it"
            )
        if set(item) != {"type", "bizTransaction"}:
            raise where.fail(
                f"bizTransactionList[{i}]",
                "must have exactly the fields 'type' and 'bizTransaction'",
            )
        kind = _bare(item["type"], "btt")
        if kind not in _CBV_BTT and not _is_uri(kind):
            raise where.fail(
                f"bizTransactionList[{i}].type",
                f"{item['type']!r} is not a CBV business transaction type nor a URI",
            )


def _error_declaration(event: Mapping[str, Any], where: _Where) -> ErrorDeclaration | None:
    value = event.get("errorDeclaration")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise where.fail("errorDeclaration", "must be an object")
    when = _check_datetime(value.get("declarationTime"), where, "errorDeclaration.declarationTime")
    reason = value.get("reason")
    if reason is not None:
        if not isinstance(reason, str):
            raise where.fail("errorDeclaration.reason", "must be a string")
        reason = _bare(reason, "reason")
        if reason not in _CBV_ER and not _is_uri(reason):
            raise where.fail(
                "errorDeclaration.reason",
                f"{value['reason']!r} is not a CBV error reason (did_not_occur, incorrect_data) nor a URI",
            )
    ids = _str_list(value, "correctiveEventIDs", _Where(where.prefix + "errorDeclaration."))
    return ErrorDeclaration(declaration_time=when, reason=reason, corrective_event_ids=tuple(ids))


def _ilmd(event: Mapping[str, Any], where: _Where) -> tuple[str | None, str | None]:
    value = event.get("ilmd")
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise where.fail("ilmd", "must be an object")
    lot = value.get("cbvmda:lotNumber")
    if lot is not None and not (isinstance(lot, str) and lot):
        raise where.fail("ilmd.cbvmda:lotNumber", "must be a non-empty string")
    expiry = value.get("cbvmda:itemExpirationDate")
    if expiry is not None:
        if not (isinstance(expiry, str) and _ISO_DATE.fullmatch(expiry)):
            raise where.fail(
                "ilmd.cbvmda:itemExpirationDate", f"{expiry!r} must be a date YYYY-MM-DD"
            )
        try:
            dt.date.fromisoformat(expiry)
        except ValueError:
            raise where.fail(
                "ilmd.cbvmda:itemExpirationDate", f"{expiry!r} is not a real date"
            ) from None
    return lot, expiry


def _used_prefixes(event: Mapping[str, Any]) -> set[str]:
    """Every 'prefix' that starts a key or a string value ('prefix:...') in the event."""
    found: set[str] = set()
    for _, key, item in _walk(event, ""):
        for text in (key, item):
            if isinstance(text, str):
                m = _PREFIXED.fullmatch(text)
                if m:
                    found.add(m.group(1))
    return found


def _kind(
    event_type: str, action: str, biz_step: str, disposition: str | None, where: _Where
) -> str:
    if event_type == "AggregationEvent" and action == "ADD":
        return "aggregate"
    if event_type == "AggregationEvent" and action == "DELETE":
        return "disaggregate"
    if biz_step not in KIND_BY_BIZSTEP:
        raise where.fail(
            "bizStep",
            f"unknown bizStep {biz_step!r} for drug traceability; accepted: "
            f"{', '.join(sorted(KIND_BY_BIZSTEP))} (bare, urn:epcglobal:cbv:bizstep:..., "
            "or https://ref.gs1.org/cbv/BizStep-...)",
        )
    if disposition in _KIND_BY_DISPOSITION:
        return _KIND_BY_DISPOSITION[disposition]
    return KIND_BY_BIZSTEP[biz_step]


def parse_event(
    event: Any, namespaces: Mapping[str, str] | None = None, *, where: str = ""
) -> TraceEvent:
    """Check one EPCIS 2.0 event object and turn it into a :class:`TraceEvent`.

    ``namespaces`` are the prefixes the enclosing document's ``@context``
    defines for extension fields. ``where`` prefixes error messages (the
    document importer passes 'event 3 ').
    """
    at = _Where(where)
    ns = dict(namespaces or {})
    if not isinstance(event, dict):
        raise at.fail("event", f"must be an object, got {type(event).__name__}")
    event_type = event.get("type")
    if event_type in _OTHER_EVENT_TYPES:
        raise at.fail(
            "type",
            f"{event_type} is not used for drug traceability (ObjectEvent, AggregationEvent)",
        )
    if event_type not in _FIELDS_BY_TYPE:
        raise at.fail(
            "type", f"{event_type!r} is not an EPCIS event type (ObjectEvent, AggregationEvent)"
        )
    for key in event:
        if key in _FIELDS_BY_TYPE[event_type]:
            continue
        m = _PREFIXED.fullmatch(key)
        if not m:
            raise at.fail(
                key, f"unknown {event_type} field (extensions need a prefix, e.g. 'example:{key}')"
            )
        if m.group(1) not in ns and m.group(1) not in _STANDARD_PREFIXES:
            raise at.fail(key, f"prefix {m.group(1)!r} is not defined in the document's @context")

    event_time = _check_datetime(event.get("eventTime"), at, "eventTime")
    offset = event.get("eventTimeZoneOffset")
    if not (isinstance(offset, str) and _TZ_OFFSET.fullmatch(offset)):
        raise at.fail("eventTimeZoneOffset", f"{offset!r} must be an offset like '+01:00'")
    if "recordTime" in event:
        _check_datetime(event["recordTime"], at, "recordTime")
    action = event.get("action")
    if action not in ("ADD", "OBSERVE", "DELETE"):
        raise at.fail("action", f"{action!r} must be ADD, OBSERVE or DELETE")
    raw_step = event.get("bizStep")
    if not isinstance(raw_step, str):
        raise at.fail("bizStep", "is required (a CBV business step such as 'shipping')")
    biz_step = _bare(raw_step, "bizStep")
    disposition = _opt_str(event, "disposition", at)
    if disposition is not None:
        disposition = _bare(disposition, "disposition")
        if disposition not in _CBV_DISPOSITIONS and not _is_uri(disposition):
            raise at.fail(
                "disposition", f"{event['disposition']!r} is not a CBV disposition nor a URI"
            )
    kind = _kind(event_type, action, biz_step, disposition, at)
    event_id = _opt_str(event, "eventID", at)
    for field in ("quantityList", "childQuantityList", "sensorElementList"):
        if field in event and not (
            isinstance(event[field], list) and all(isinstance(x, dict) for x in event[field])
        ):
            raise at.fail(field, "must be a list of objects")
    _check_hashable(event, at)

    year = int(event_time[:4])  # a Digital Link's ?17=YYMMDD is read relative to the event
    parent = None
    if event_type == "ObjectEvent":
        uris = _str_list(event, "epcList", at)
        epcs = tuple(_epc_key(u, at, f"epcList[{i}]", year) for i, u in enumerate(uris))
    else:
        uris = _str_list(event, "childEPCs", at)
        epcs = tuple(_epc_key(u, at, f"childEPCs[{i}]", year) for i, u in enumerate(uris))
        parent_id = _opt_str(event, "parentID", at)
        if parent_id is None and action != "OBSERVE":
            raise at.fail("parentID", f"is required for an AggregationEvent with action {action}")
        parent = _epc_key(parent_id, at, "parentID", year) if parent_id else None
    if len(set(epcs)) != len(epcs):
        raise at.fail(
            "epcList" if event_type == "ObjectEvent" else "childEPCs", "names one item twice"
        )
    lot, expiry = _ilmd(event, at) if event_type == "ObjectEvent" else (None, None)
    declaration = _error_declaration(event, at)
    read_point = _location(event, "readPoint", at)
    biz_location = _location(event, "bizLocation", at)
    sources = _parties(event, "sourceList", "source", at)
    destinations = _parties(event, "destinationList", "destination", at)
    _biz_transactions(event, at)

    canonical = _canonical(event)
    used = {p: ns[p] for p in sorted(_used_prefixes(event)) if p in ns}
    digest = event_hash(canonical, used)
    if event_id is None:
        event_id = digest
        canonical = _canonical({**canonical, "eventID": digest})
    return TraceEvent(
        kind=kind,
        event_type=event_type,
        action=action,
        biz_step=biz_step,
        event_time=event_time,
        event_hash=digest,
        event_id=event_id,
        epcs=epcs,
        parent=parent,
        read_point=read_point,
        biz_location=biz_location,
        sources=sources,
        destinations=destinations,
        lot=lot,
        expiry=expiry,
        disposition=disposition,
        error_declaration=declaration,
        raw=_canonical_json(canonical),
        namespaces=tuple(used.items()),
    )


_TYPED_LISTS = {
    "bizTransactionList": "bizTransaction",
    "sourceList": "source",
    "destinationList": "destination",
}


def _canonical(value: Any, parent_key: str = "") -> Any:
    """Keys sorted, except 'type' first in bizTransaction/source/destination entries.

    The generator sorts every object's fields but these three, whose two fields
    it takes in the order given: the GS1 reference hashes put 'type' first.
    Fixing the order here makes the hash independent of the sender's key order.
    """
    if isinstance(value, dict):
        if parent_key in _TYPED_LISTS:
            return {k: value[k] for k in ("type", _TYPED_LISTS[parent_key])}
        return {k: _canonical(value[k], k) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(item, parent_key) for item in value]
    return value


def _canonical_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --------------------------------------------------------------------------- documents


def _context_namespaces(context: Any) -> dict[str, str]:
    if isinstance(context, str):
        context = [context]
    if not isinstance(context, list):
        raise EpcisError("@context: must be the EPCIS 2.0 context URL or a list starting with it")
    urls = [c for c in context if isinstance(c, str)]
    if not urls or any(u not in _KNOWN_CONTEXTS for u in urls):
        raise EpcisError(
            f"@context: must include {EPCIS_CONTEXT!r} and no other context URL, got {urls!r}"
        )
    namespaces: dict[str, str] = {}
    for i, entry in enumerate(context):
        if isinstance(entry, str):
            continue
        if not isinstance(entry, dict):
            raise EpcisError(f"@context[{i}]: must be a URL or an object of prefix: IRI")
        for prefix, iri in entry.items():
            if not (isinstance(iri, str) and _PREFIXED.fullmatch(f"{prefix}:x") and ":" in iri):
                raise EpcisError(f"@context[{i}].{prefix}: must map a prefix to an IRI string")
            if prefix in _FORBIDDEN_PREFIXES or _STANDARD_PREFIXES.get(prefix, iri) != iri:
                raise EpcisError(f"@context[{i}].{prefix}: this prefix may not be redefined")
            if namespaces.get(prefix, iri) != iri:
                raise EpcisError(f"@context[{i}].{prefix}: defined twice with different IRIs")
            namespaces[prefix] = iri
    return namespaces


def import_document(data: bytes | str, *, max_bytes: int) -> list[TraceEvent]:
    """Read an EPCIS 2.0 JSON/JSON-LD document into TraceEvents, all or nothing.

    The size is checked before anything is decoded, so an oversized upload
    costs nothing; every event is checked and hashed before any is returned,
    and the first problem raises :class:`EpcisError` naming the event index
    and field.
    """
    document = _decode(data, max_bytes)
    if not isinstance(document, dict):
        raise EpcisError(f"document: must be a JSON object, got {type(document).__name__}")
    if not _depth_ok(document, MAX_DEPTH):
        raise EpcisError(f"document: nested deeper than {MAX_DEPTH} levels")
    if document.get("type") != "EPCISDocument":
        raise EpcisError(f"type: must be 'EPCISDocument', got {document.get('type')!r}")
    if document.get("schemaVersion") != "2.0":
        raise EpcisError(f"schemaVersion: must be '2.0', got {document.get('schemaVersion')!r}")
    if "@context" not in document:
        raise EpcisError(
            f"@context: missing; an EPCIS 2.0 JSON-LD document names {EPCIS_CONTEXT!r}"
        )
    namespaces = _context_namespaces(document["@context"])
    for key in document:
        if key not in _DOCUMENT_FIELDS:
            m = _PREFIXED.fullmatch(key)
            if not (m and (m.group(1) in namespaces or m.group(1) in _STANDARD_PREFIXES)):
                raise EpcisError(f"{key}: unknown EPCISDocument field")
    body = document.get("epcisBody")
    if not isinstance(body, dict) or not isinstance(body.get("eventList"), list):
        raise EpcisError("epcisBody.eventList: must be a list of events")
    return [
        parse_event(event, namespaces, where=f"event {i} ")
        for i, event in enumerate(body["eventList"])
    ]


def declare_error(
    event: TraceEvent,
    *,
    declaration_time: str,
    reason: str | None = "incorrect_data",
    corrective_event_ids: Sequence[str] = (),
) -> TraceEvent:
    """The EPCIS 2.0 way to correct an event: a new event declaring it erroneous.

    The result is the same event with an ``errorDeclaration`` added; its hash
    is unchanged (the hash excludes errorDeclaration), which is what ties the
    declaration to the event it retracts. The original is never edited.
    """
    if event.error_declaration is not None:
        raise EpcisError("event already carries an errorDeclaration")
    declaration: dict[str, Any] = {"declarationTime": declaration_time}
    if reason is not None:
        declaration["reason"] = reason
    if corrective_event_ids:
        declaration["correctiveEventIDs"] = list(corrective_event_ids)
    raw = event.event
    raw["errorDeclaration"] = declaration
    declared = parse_event(raw, dict(event.namespaces), where="declare_error ")
    if declared.event_hash != event.event_hash:  # pragma: no cover - guards the generator
        raise EpcisError("errorDeclaration changed the event hash")
    return declared


def export_document(
    events: Sequence[TraceEvent],
    *,
    creation_date: str,
    document_id: str | None = None,
) -> dict[str, Any]:
    """Write TraceEvents as one EPCIS 2.0 JSON-LD document (a unit's trail).

    Each event is written exactly as it was received (so its hash is the same
    for whoever reads the document); the @context carries the union of the
    events' extension prefixes. ``creation_date`` is passed in because the
    core has no clock.
    """
    _check_datetime(creation_date, _Where(""), "creation_date")
    merged: dict[str, str] = {}
    for i, ev in enumerate(events):
        if not isinstance(ev, TraceEvent):
            raise EpcisError(f"event {i}: must be a TraceEvent, got {type(ev).__name__}")
        for prefix, iri in ev.namespaces:
            if merged.setdefault(prefix, iri) != iri:
                raise EpcisError(
                    f"event {i}: prefix {prefix!r} means {iri!r} here but {merged[prefix]!r} "
                    "in an earlier event; they cannot share one document"
                )
    event_list = []
    for i, ev in enumerate(events):
        raw = ev.event
        own = dict(ev.namespaces)
        clash = sorted(p for p in _used_prefixes(raw) if p in merged and p not in own)
        if clash:
            raise EpcisError(
                f"event {i}: text starting with {clash[0]!r}: would be read as another "
                "event's namespace prefix in a shared document, changing its hash"
            )
        event_list.append(raw)
    context: list[Any] = [EPCIS_CONTEXT]
    if merged:
        context.append(dict(sorted(merged.items())))
    document: dict[str, Any] = {"@context": context}
    if document_id is not None:
        document["id"] = document_id
    document.update(
        {
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": creation_date,
            "epcisBody": {"eventList": event_list},
        }
    )
    return document
