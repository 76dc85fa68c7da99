"""Drug traceability app: serialized packs from factory to patient, verdicts, EPCIS 2.0 capture.

Owns: products, lots, serialized units, logistic units (SSCC containers), the
custody rules between manufacturer, wholesaler, pharmacy and regulator, the
verification verdict, and capturing EPCIS 2.0 events into that state.
Must not parse GS1 text or EPCIS JSON itself (``gs1`` and ``epcis`` do) and
never reads registry state (it asks ``registry.require_role``, ``member_org``
and ``active_org``).

Who may do what (roles are granted by each organisation's admins):
    supply_chain  in a manufacturer, wholesaler, pharmacy, hospital or clinic:
                  register products and commission units (manufacturers only),
                  aggregate, ship, receive, return, decommission, suspect/clear,
                  EPCIS import, and recall its own products (manufacturers)
    dispenser     in a pharmacy, hospital or clinic: dispense to a patient
    inspector     in a regulator: recall any product, quarantine and clear any unit
A GTIN belongs to the first manufacturer that registers it (the consortium
vets who may be a manufacturer; a GTIN company prefix is not derivable from
the GTIN alone, so no prefix table is kept). Only that manufacturer
commissions units of it.

Rules. A unit has exactly one holder and one custody status: ``active`` (held,
saleable), ``in_transit`` (shipped to ``t``, still held by the shipper until
the addressee receives it), ``suspect`` (quarantined; the previous status is
kept and restored by ``clear``), ``dispensed`` or ``decommissioned`` (final).
A recall is not a custody status but a mark on the lot or on single units.
Events on a container apply to its contents: shipping a pallet moves every
case and pack in it (the writes are eager, so verifying one pack is one read
and never walks containers); a unit inside a container cannot act alone until
it is disaggregated.

A second dispense of one serial (a cloned pack at another pharmacy) is refused
but *recorded*: the transaction's receipt is ``ok`` with the flag
``clone_alert`` and an event ``drugs.refused`` carrying the code
``already_dispensed``; an alert record is written for the manufacturer and
regulators (``drugs.alerts``) and on the unit. A rejected receipt could not do
this: the chain discards every write of a rejected transaction. All other
refusals are ordinary rejections with the codes listed in ``CODES``.

Time: block time (UTC date) decides expiry in transactions. Queries have no
block time, so ``drugs.verify`` takes ``today`` from the caller (the scanner's
date) and otherwise uses the time of the last block that carried a drugs
transaction (``drugs/clock``); both are deterministic for a given state.

Caller identity in queries: a query may carry ``as_key``, ``as_sig`` and
``as_height``, a signature by a member key (purpose ``drugs-query``, this
chain) over ``encode([query name, the other params, as_height])``, with
``as_height`` at most ``AS_PROOF_WINDOW`` blocks old. Without it a caller gets
the verdict only; the full trail (and the Merkle proof request) goes to the
organisations that held the unit, its manufacturer and regulators.

State keys (values canonical CBOR; units and containers use short field names
because there are millions of them):
    drugs/chain_id                    the chain id (for query proofs), written by the first drugs tx
    drugs/clock                       time_ms of the last block with a drugs transaction
    drugs/p/<gtin14>                  product {gtin, name, form, strength, m (manufacturer org), since}
    drugs/l/<gtin14><lot>             lot {gtin, lot, expiry, m, units, recall?: eid}
    drugs/u/<gtin14><serial>          unit {s, h, l, e: [eid...], p?, t?, q?, r?, a?: [eid...]}
    drugs/c/<sscc>                    container {s, h, u: [gtin14+serial], c: [sscc], e, p?, t?, q?}
    drugs/e/<eid>                     event {k, o, tm, h, tx, ...}; eid = tx hash + 2-byte index
    drugs/x/<epcis event hash>        eid of the event captured with that GS1 canonical hash
    drugs/a/<gtin14>/<eid>            clone alert {gtin, serial, o, first: eid}
Field names: s status, h holder org, l lot, e event ids, p parent SSCC, t the
addressee of a shipment in transit, q [org that raised suspect, status before],
r eid of a serial recall, a alert eids, k kind, o acting org, tm block time,
h height (events), tx transaction hash.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import cbor2

from hcnode import codec, crypto
from hcnode.apps import registry
from hcnode.apps.drugs import epcis, gs1
from hcnode.chain.app import TX_PROOF_REQUEST, App, Query, TxContext, TxType
from hcnode.chain.errors import Rejected
from hcnode.chain.schema import Bool, Bytes, Int, ListOf, Optional, Record, Text
from hcnode.chain.state import Overlay, StateReader, read_value

__all__ = [
    "APP",
    "AS_PURPOSE",
    "AS_PROOF_WINDOW",
    "CODES",
    "VERDICTS",
    "query_proof",
    "unit_key",
]

SUPPLY_ROLE = "supply_chain"
DISPENSE_ROLE = "dispenser"
INSPECT_ROLE = "inspector"
SUPPLY_KINDS = ("manufacturer", "wholesaler", "pharmacy", "hospital", "clinic")
DISPENSING_KINDS = ("pharmacy", "hospital", "clinic")

AS_PURPOSE = "drugs-query"
AS_PROOF_WINDOW = 1000
"""Blocks a signed query proof stays valid: long enough for a slow client, short enough to limit replay."""

MAX_SERIALS_PER_TX = 10_000
MAX_ITEMS_PER_TX = 10_000
MAX_EPCIS_EVENTS_PER_TX = 100
MAX_EPCIS_EVENT_CHARS = 32 * 1024

VERDICTS = (
    "VERIFIED", "UNKNOWN_SERIAL", "LOT_OR_EXPIRY_MISMATCH", "ALREADY_DISPENSED", "RECALLED",
    "EXPIRED", "SUSPECT", "DECOMMISSIONED", "CUSTODY_BROKEN",
)  # fmt: skip
CODES = {
    "invalid_gtin": "the GTIN's check digit (or form) is wrong",
    "invalid_sscc": "the SSCC's check digit (or form) is wrong",
    "bad_date": "not a real calendar date YYYY-MM-DD",
    "gtin_taken": "another manufacturer registered this GTIN first",
    "unknown_product": "no product with this GTIN is registered",
    "not_manufacturer": "only the product's manufacturer may do this",
    "lot_expiry_conflict": "the lot exists with another expiry",
    "serial_exists": "a serial is commissioned at most once",
    "unknown_unit": "no unit with this GTIN and serial was commissioned",
    "unknown_container": "no container with this SSCC",
    "container_exists": "this SSCC already names a container held by someone else or in use",
    "not_holder": "the sender's organisation does not hold the unit",
    "in_container": "the unit or case is inside a container; disaggregate first",
    "not_in_container": "the item is not in this container",
    "not_active": "the unit is not in a state that allows this (in transit, suspect, final)",
    "not_shipped_to_you": "nothing was shipped to the sender's organisation for this item",
    "unknown_org": "no active organisation with this id",
    "ship_to_self": "a shipment goes to another organisation",
    "dispensed": "the unit was dispensed (final)",
    "decommissioned": "the unit was decommissioned (final)",
    "recalled": "the unit's lot or serial is recalled",
    "expired": "the unit's expiry date has passed",
    "suspect": "the unit is quarantined as suspect",
    "in_transit": "the unit is in transit and not yet received",
    "lot_or_expiry_mismatch": "the lot or expiry given does not match the commissioned unit",
    "not_suspect": "the unit is not quarantined",
    "not_allowed_to_clear": "only the organisation that raised the suspicion or a regulator may clear it",
    "return_not_verified": "a saleable return must verify first (identifier, lot, expiry, not recalled/expired/suspect)",
    "unknown_lot": "no such lot for this product",
    "duplicate_event": "an EPCIS event with this canonical hash was already captured",
    "unknown_event": "an errorDeclaration names an event that was never captured",
    "already_declared": "this event is already declared erroneous",
    "bad_epcis": "the EPCIS event cannot be read or applied (the message says why)",
    "missing_role": "the sender lacks the role (see registry)",
}

# --- shapes ---------------------------------------------------------------------------------

_CSET82 = r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}"
GTIN = Text(min_len=14, max_len=14, pattern=r"[0-9]{14}")
SSCC = Text(min_len=18, max_len=18, pattern=r"[0-9]{18}")
SERIAL = Text(max_len=20, pattern=_CSET82)
LOT = Text(max_len=20, pattern=_CSET82)
DATE = Text(min_len=10, max_len=10, pattern=r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
PATIENT = Text(min_len=27, max_len=27, pattern=r"pt-[0-9a-f]{24}")
"""The registry's pseudonymous patient id shape: a name or any other PHI cannot be written here."""
REASON = Text(max_len=200)
UNIT = Record({"gtin": GTIN, "serial": SERIAL})
UNITS = Optional(ListOf(UNIT, max_items=MAX_ITEMS_PER_TX, unique=True))
CONTAINERS = Optional(ListOf(SSCC, max_items=1000, unique=True))
DECOMMISSION_REASONS = (
    "destroyed", "stolen", "sample", "damaged", "expired", "returned_non_saleable", "other",
)  # fmt: skip
PREFIX = b"drugs/"


def unit_key(gtin: str, serial: str) -> bytes:
    """State key of a unit: GTIN-14 is fixed width, so no separator is needed."""
    return b"drugs/u/" + gtin.encode() + serial.encode()


def _container_key(sscc: str) -> bytes:
    return b"drugs/c/" + sscc.encode()


def _product_key(gtin: str) -> bytes:
    return b"drugs/p/" + gtin.encode()


def _lot_key(gtin: str, lot: str) -> bytes:
    return b"drugs/l/" + gtin.encode() + lot.encode()


def _event_key(eid: bytes) -> bytes:
    return b"drugs/e/" + eid


def _epcis_key(event_hash: str) -> bytes:
    return b"drugs/x/" + event_hash.encode()


def _alert_key(gtin: str, eid: bytes) -> bytes:
    return b"drugs/a/" + gtin.encode() + b"/" + eid


def _date_of(time_ms: int) -> str:
    return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).date().isoformat()


def _iso_time(time_ms: int) -> str:
    return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _check_date(value: str, what: str) -> str:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise Rejected("bad_date", f"{what} {value!r} is not a real date YYYY-MM-DD") from None
    return value


def _check_gtin(gtin: str) -> str:
    try:
        if gs1.gtin14(gtin) != gtin:
            raise gs1.GS1Error("not in GTIN-14 form")
    except gs1.GS1Error as exc:
        raise Rejected("invalid_gtin", str(exc)) from None
    return gtin


def _check_sscc(sscc: str) -> str:
    try:
        return gs1.check_sscc(sscc)
    except gs1.GS1Error as exc:
        raise Rejected("invalid_sscc", str(exc)) from None


# --- the per-transaction working set -----------------------------------------------------------


class _Op:
    """One custody operation inside a transaction: who acts, the event it writes, its id.

    Native transactions make one ``_Op``; an EPCIS import makes one per event, so both
    paths share every rule below.
    """

    __slots__ = ("ctx", "org", "kind", "eid", "today")

    def __init__(self, ctx: TxContext, org: str, kind: str, index: int) -> None:
        self.ctx = ctx
        self.org = org
        self.kind = kind
        self.eid = ctx.tx.hash + index.to_bytes(2, "big")
        self.today = _date_of(ctx.block.time_ms)

    def record(self, kind: str, **fields: Any) -> bytes:
        event = {"k": kind, "o": self.org, "tm": self.ctx.block.time_ms, "h": self.ctx.block.height,
                 "tx": self.ctx.tx.hash, **{k: v for k, v in fields.items() if v is not None}}
        self.ctx.state.put_value(_event_key(self.eid), event)
        # Receipt events carry the id as hex text: receipts are shown as JSON and proven as CBOR,
        # and hcnode.wallet.proofs matches the two assuming only the receipt's ``tx`` is bytes.
        self.ctx.emit(f"drugs.{kind}", event=self.eid.hex(), org=self.org,
                      **{k: v for k, v in fields.items() if k in ("gtin", "lot", "n", "to", "container", "reason")
                         and v is not None})
        return self.eid


def _get(state: Overlay | StateReader, key: bytes) -> dict[str, Any] | None:
    raw = state.get(key)
    return None if raw is None else cbor2.loads(raw)


def _put(state: Overlay, key: bytes, value: dict[str, Any]) -> None:
    state.put(key, codec.encode(value))


def _unit(state: Overlay, gtin: str, serial: str) -> dict[str, Any]:
    record = _get(state, unit_key(gtin, serial))
    if record is None:
        raise Rejected("unknown_unit", f"no unit {gtin}/{serial} was commissioned")
    return record


def _container(state: Overlay, sscc: str) -> dict[str, Any]:
    record = _get(state, _container_key(sscc))
    if record is None:
        raise Rejected("unknown_container", f"no container {sscc}")
    return record


def _is_recalled(state: Overlay | StateReader, gtin: str, unit: dict[str, Any]) -> bool:
    if "r" in unit:
        return True
    lot = _get(state, _lot_key(gtin, unit["l"]))
    return lot is not None and "recall" in lot


def _clock(ctx: TxContext) -> None:
    """Every drugs transaction stamps the block time (for queries) and, once, the chain id (for caller proofs).

    The chain id is written lazily rather than at genesis so that adding this app
    leaves every existing chain's genesis (and the protocol's genesis vectors) unchanged.
    """
    ctx.state.put(b"drugs/clock", ctx.block.time_ms.to_bytes(8, "big"))
    if ctx.state.get(b"drugs/chain_id") is None:
        ctx.state.put(b"drugs/chain_id", ctx.block.chain_id.encode())


# --- who acts -----------------------------------------------------------------------------------


def _supply_actor(ctx: TxContext) -> str:
    return require_org(ctx, SUPPLY_ROLE, SUPPLY_KINDS)


def require_org(ctx: TxContext, role: str, kinds: tuple[str, ...]) -> str:
    """The sender's organisation id if it holds ``role`` in an organisation of ``kinds``."""
    return registry.require_role(ctx, role, org_kinds=kinds)["org"]  # type: ignore[no-any-return]


def _supply_or_regulator(ctx: TxContext) -> tuple[str, bool]:
    """(org, is_regulator): inspectors of a regulator, or supply-chain members of a trading org."""
    me = registry.member_org(ctx.state, ctx.sender, ctx.block.height)
    if me is not None and me["kind"] == "regulator":
        return require_org(ctx, INSPECT_ROLE, ("regulator",)), True
    return _supply_actor(ctx), False


# --- products and commissioning -----------------------------------------------------------------


def _product_register(ctx: TxContext, payload: dict[str, Any]) -> None:
    org = require_org(ctx, SUPPLY_ROLE, ("manufacturer",))
    gtin = _check_gtin(payload["gtin"])
    existing = _get(ctx.state, _product_key(gtin))
    if existing is not None and existing["m"] != org:
        raise Rejected("gtin_taken", f"GTIN {gtin} is registered by {existing['m']!r}")
    since = existing["since"] if existing else ctx.block.height
    _put(ctx.state, _product_key(gtin), {"gtin": gtin, "name": payload["name"], "form": payload["form"],
                                         "strength": payload["strength"], "m": org, "since": since})
    _clock(ctx)
    ctx.emit("drugs.product", gtin=gtin, manufacturer=org, updated=existing is not None)


def _commission(op: _Op, gtin: str, lot: str, expiry: str, serials: list[str], **extra: Any) -> None:
    """The hot path: up to 10,000 units, one existence read and one write each, one shared value."""
    state = op.ctx.state
    product = _get(state, _product_key(gtin))
    if product is None:
        raise Rejected("unknown_product", f"GTIN {gtin} is not registered (drugs.product_register)")
    if product["m"] != op.org:
        raise Rejected("not_manufacturer", f"GTIN {gtin} belongs to {product['m']!r}, not {op.org!r}")
    _check_date(expiry, "expiry")
    lot_record = _get(state, _lot_key(gtin, lot))
    if lot_record is None:
        lot_record = {"gtin": gtin, "lot": lot, "expiry": expiry, "m": op.org, "units": 0}
    elif lot_record["expiry"] != expiry:
        raise Rejected("lot_expiry_conflict", f"lot {lot} of {gtin} expires {lot_record['expiry']}, not {expiry}")
    prefix = b"drugs/u/" + gtin.encode()
    keys = [prefix + serial.encode() for serial in serials]
    get = state.get
    for key in keys:
        if get(key) is not None:
            raise Rejected("serial_exists", f"serial {key[len(prefix):].decode()!r} of {gtin} is already "
                                            "commissioned (a serial is never commissioned twice)")
    eid = op.record("commission", gtin=gtin, lot=lot, expiry=expiry, n=len(keys), **extra)
    value = codec.encode({"s": "active", "h": op.org, "l": lot, "e": [eid]})
    put = state.put
    for key in keys:
        put(key, value)
    lot_record["units"] += len(keys)
    _put(state, _lot_key(gtin, lot), lot_record)


def _commission_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org = require_org(ctx, SUPPLY_ROLE, ("manufacturer",))
    _commission(_Op(ctx, org, "commission", 0), payload["gtin"], payload["lot"], payload["expiry"],
                payload["serials"])
    _clock(ctx)


# --- items: units and containers, walked with their contents ---------------------------------------


class _Items:
    """The units and containers a transaction names, loaded once and written back once.

    ``top`` are the named items; ``walk`` yields every (key, record, label) in them,
    contents included, because events on a container apply to its contents.
    """

    def __init__(self, state: Overlay, units: Iterable[dict[str, str]], containers: Iterable[str]) -> None:
        self.state = state
        self.records: dict[bytes, dict[str, Any]] = {}
        self.labels: dict[bytes, str] = {}
        self.top: list[bytes] = []
        for unit in units:
            key = unit_key(unit["gtin"], unit["serial"])
            self.records[key] = _unit(state, unit["gtin"], unit["serial"])
            self.labels[key] = f"unit {unit['gtin']}/{unit['serial']}"
            self.top.append(key)
        for sscc in containers:
            key = _container_key(sscc)
            self.records[key] = _container(state, sscc)
            self.labels[key] = f"container {sscc}"
            self.top.append(key)
        if not self.top:
            raise Rejected("bad_payload", "payload: name at least one unit or container")

    def load(self, key: bytes, label: str) -> dict[str, Any]:
        if key not in self.records:
            record = _get(self.state, key)
            if record is None:  # pragma: no cover - contents are written with their container
                raise Rejected("unknown_unit", f"{label} is missing")
            self.records[key] = record
            self.labels[key] = label
        return self.records[key]

    def walk(self, key: bytes) -> Iterable[tuple[bytes, dict[str, Any]]]:
        stack = [key]
        while stack:
            current = stack.pop()
            record = self.records[current]
            yield current, record
            for ident in record.get("u", ()):
                child = b"drugs/u/" + ident.encode()
                self.load(child, f"unit {ident[:14]}/{ident[14:]}")
                stack.append(child)
            for sscc in record.get("c", ()):
                child = _container_key(sscc)
                self.load(child, f"container {sscc}")
                stack.append(child)

    def everything(self) -> list[tuple[bytes, dict[str, Any]]]:
        return [pair for key in self.top for pair in self.walk(key)]

    def check_top(self, org: str, *, allow: tuple[str, ...] = ("active",), holder: bool = True) -> None:
        for key in self.top:
            record = self.records[key]
            label = self.labels[key]
            if "p" in record:
                raise Rejected("in_container", f"{label} is inside container {record['p']}; disaggregate first")
            if holder and record["h"] != org:
                raise Rejected("not_holder", f"{label} is held by {record['h']!r}, not {org!r}")
            if record["s"] not in allow:
                raise Rejected(_status_code(record["s"]), f"{label} is {record['s']}")

    def save(self, pairs: Iterable[tuple[bytes, dict[str, Any]]]) -> None:
        put = self.state.put
        for key, record in pairs:
            put(key, codec.encode(record))


def _status_code(status: str) -> str:
    return {"dispensed": "dispensed", "decommissioned": "decommissioned", "suspect": "suspect",
            "in_transit": "in_transit"}.get(status, "not_active")


def _items(ctx: TxContext, payload: dict[str, Any]) -> _Items:
    return _Items(ctx.state, payload.get("units", ()), payload.get("containers", ()))


# --- aggregation --------------------------------------------------------------------------------


def _aggregate(op: _Op, sscc: str, units: list[dict[str, str]], containers: list[str], **extra: Any) -> None:
    state = op.ctx.state
    _check_sscc(sscc)
    if sscc in containers:
        raise Rejected("bad_payload", f"container {sscc} cannot contain itself")
    items = _Items(state, units, containers)
    items.check_top(op.org)
    parent = _get(state, _container_key(sscc))
    if parent is None:
        parent = {"s": "active", "h": op.org, "u": [], "c": [], "e": []}
    elif parent["h"] != op.org or parent["s"] != "active" or "p" in parent:
        raise Rejected("container_exists", f"container {sscc} is held by {parent['h']!r}, {parent['s']}"
                       + (f", inside {parent['p']}" if "p" in parent else ""))
    for key in items.top:  # a container may not end up inside itself through its contents
        if key.startswith(b"drugs/c/") and any(k == _container_key(sscc) for k, _ in items.walk(key)):
            raise Rejected("bad_payload", f"container {sscc} would contain itself")
    eid = op.record("aggregate", container=sscc, n=len(items.top), **extra)
    for key in items.top:
        record = items.records[key]
        record["p"] = sscc
        ident = key[len(b"drugs/u/"):].decode()
        (parent["u"] if key.startswith(b"drugs/u/") else parent["c"]).append(ident)
    parent["e"].append(eid)
    pairs = items.everything()
    for _, record in pairs:
        record["e"].append(eid)
    items.save(pairs)
    _put(state, _container_key(sscc), parent)


def _aggregate_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org = _supply_actor(ctx)
    _aggregate(_Op(ctx, org, "aggregate", 0), payload["container"], payload.get("units", []),
               payload.get("containers", []))
    _clock(ctx)


def _disaggregate(op: _Op, sscc: str, units: list[dict[str, str]], containers: list[str],
                  **extra: Any) -> None:
    state = op.ctx.state
    parent = _container(state, sscc)
    if parent["h"] != op.org:
        raise Rejected("not_holder", f"container {sscc} is held by {parent['h']!r}, not {op.org!r}")
    if parent["s"] != "active":
        raise Rejected(_status_code(parent["s"]), f"container {sscc} is {parent['s']}")
    chosen_units = [u["gtin"] + u["serial"] for u in units]
    chosen_containers = list(containers)
    if not chosen_units and not chosen_containers:  # no list: empty the container
        chosen_units, chosen_containers = list(parent["u"]), list(parent["c"])
    for ident in chosen_units:
        if ident not in parent["u"]:
            raise Rejected("not_in_container", f"unit {ident[:14]}/{ident[14:]} is not in container {sscc}")
    for child in chosen_containers:
        if child not in parent["c"]:
            raise Rejected("not_in_container", f"container {child} is not in container {sscc}")
    eid = op.record("disaggregate", container=sscc, n=len(chosen_units) + len(chosen_containers), **extra)
    items = _Items(state, [{"gtin": i[:14], "serial": i[14:]} for i in chosen_units], chosen_containers)
    for key in items.top:
        items.records[key].pop("p", None)
    pairs = items.everything()
    for _, record in pairs:
        record["e"].append(eid)
    items.save(pairs)
    leaving_units, leaving_containers = set(chosen_units), set(chosen_containers)
    parent["u"] = [i for i in parent["u"] if i not in leaving_units]
    parent["c"] = [c for c in parent["c"] if c not in leaving_containers]
    parent["e"].append(eid)
    _put(state, _container_key(sscc), parent)


def _disaggregate_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org = _supply_actor(ctx)
    _disaggregate(_Op(ctx, org, "disaggregate", 0), payload["container"], payload.get("units", []),
                  payload.get("containers", []))
    _clock(ctx)


# --- custody --------------------------------------------------------------------------------------


def _ship(op: _Op, to: str, items: _Items, **extra: Any) -> None:
    if registry.active_org(op.ctx.state, to, op.ctx.block.height) is None:
        raise Rejected("unknown_org", f"no active organisation {to!r} to ship to")
    if to == op.org:
        raise Rejected("ship_to_self", "a shipment goes to another organisation")
    items.check_top(op.org)
    eid = op.record("ship", to=to, n=len(items.top), **extra)
    pairs = items.everything()
    for _, record in pairs:
        record["s"] = "in_transit"
        record["t"] = to
        record["e"].append(eid)
    items.save(pairs)


def _ship_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org = _supply_actor(ctx)
    _ship(_Op(ctx, org, "ship", 0), payload["to"], _items(ctx, payload))
    _clock(ctx)


def _check_addressed(op: _Op, items: _Items) -> None:
    for key in items.top:
        record = items.records[key]
        label = items.labels[key]
        if "p" in record:
            raise Rejected("in_container", f"{label} is inside container {record['p']}; receive the container")
        if record["s"] != "in_transit" or record.get("t") != op.org:
            raise Rejected("not_shipped_to_you", f"{label} was not shipped to {op.org!r} "
                                                 f"(it is {record['s']}, held by {record['h']!r})")


def _receive(op: _Op, items: _Items, **extra: Any) -> None:
    _check_addressed(op, items)
    came_from = sorted({items.records[k]["h"] for k in items.top})
    eid = op.record("receive", source=came_from, n=len(items.top), **extra)
    pairs = items.everything()
    for _, record in pairs:
        record["s"] = "active"
        record["h"] = op.org
        record.pop("t", None)
        record["e"].append(eid)
    items.save(pairs)


def _receive_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org = _supply_actor(ctx)
    _receive(_Op(ctx, org, "receive", 0), _items(ctx, payload))
    _clock(ctx)


def _return(op: _Op, units: list[dict[str, Any]], saleable: bool, **extra: Any) -> None:
    """Receiving a return: like receive, but a saleable return must verify first (DSCSA)."""
    state = op.ctx.state
    items = _Items(state, [{"gtin": u["gtin"], "serial": u["serial"]} for u in units], ())
    _check_addressed(op, items)
    if saleable:
        for unit, key in zip(units, items.top):
            verdict = _judge(state, unit["gtin"], items.records[key], unit.get("lot"), unit.get("expiry"),
                             op.today)
            if verdict != "VERIFIED":
                raise Rejected("return_not_verified", f"{items.labels[key]}: {verdict}; a saleable return "
                                                      "must verify (identifier, lot, expiry, status)")
    came_from = sorted({items.records[k]["h"] for k in items.top})
    eid = op.record("return", source=came_from, saleable=saleable, n=len(items.top), **extra)
    for key in items.top:
        record = items.records[key]
        record["h"] = op.org
        record.pop("t", None)
        record["s"] = "active" if saleable else "decommissioned"
        if not saleable:
            record["d"] = "returned_non_saleable"
        record["e"].append(eid)
    items.save((k, items.records[k]) for k in items.top)


def _return_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org = _supply_actor(ctx)
    _return(_Op(ctx, org, "return", 0), payload["units"], payload["saleable"])
    _clock(ctx)


def _dispense(op: _Op, gtin: str, serial: str, lot: str | None, expiry: str | None,
              patient: str | None, prescription: bytes | None, **extra: Any) -> None:
    state = op.ctx.state
    key = unit_key(gtin, serial)
    unit = _unit(state, gtin, serial)
    label = f"unit {gtin}/{serial}"
    if unit["s"] == "dispensed":
        _clone_alert(op, gtin, serial, key, unit)
        return
    if unit["h"] != op.org:
        raise Rejected("not_holder", f"{label} is held by {unit['h']!r}, not {op.org!r}")
    if "p" in unit:
        raise Rejected("in_container", f"{label} is inside container {unit['p']}; disaggregate first")
    if unit["s"] != "active":
        raise Rejected(_status_code(unit["s"]), f"{label} is {unit['s']}")
    lot_record = _get(state, _lot_key(gtin, unit["l"]))
    if _is_recalled(state, gtin, unit):
        raise Rejected("recalled", f"{label} is recalled (lot {unit['l']})")
    if lot_record["expiry"] < op.today:
        raise Rejected("expired", f"{label} expired on {lot_record['expiry']}")
    if (lot is not None and lot != unit["l"]) or (expiry is not None and expiry != lot_record["expiry"]):
        raise Rejected("lot_or_expiry_mismatch", f"{label} was commissioned as lot {unit['l']}, "
                                                 f"expiry {lot_record['expiry']}")
    eid = op.record("dispense", gtin=gtin, serial=serial, patient=patient, rx=prescription, **extra)
    unit["s"] = "dispensed"
    unit["e"].append(eid)
    _put(state, key, unit)


def _clone_alert(op: _Op, gtin: str, serial: str, key: bytes, unit: dict[str, Any]) -> None:
    """A second dispense of a serial: refuse it, but keep the attempt on chain as an alert."""
    first = next(e for e in reversed(unit["e"]) if _get(op.ctx.state, _event_key(e))["k"] == "dispense")
    eid = op.record("clone_alert", gtin=gtin, serial=serial, first=first)
    unit.setdefault("a", []).append(eid)
    _put(op.ctx.state, key, unit)
    _put(op.ctx.state, _alert_key(gtin, eid), {"gtin": gtin, "serial": serial, "o": op.org, "first": first,
                                               "h": op.ctx.block.height, "tx": op.ctx.tx.hash})
    op.ctx.flag("clone_alert", gtin=gtin, serial=serial, org=op.org)
    op.ctx.emit("drugs.refused", code="already_dispensed",
                message=f"unit {gtin}/{serial} was already dispensed; this attempt is recorded as a clone alert")


def _dispense_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org = require_org(ctx, DISPENSE_ROLE, DISPENSING_KINDS)
    _dispense(_Op(ctx, org, "dispense", 0), payload["gtin"], payload["serial"], payload.get("lot"),
              payload.get("expiry"), payload["patient"], payload["prescription"])
    _clock(ctx)


def _decommission(op: _Op, items: _Items, reason: str, **extra: Any) -> None:
    items.check_top(op.org, allow=("active", "in_transit", "suspect"))
    eid = op.record("decommission", reason=reason, n=len(items.top), **extra)
    pairs = items.everything()
    for _, record in pairs:
        record["s"] = "decommissioned"
        record["d"] = reason
        record.pop("t", None)
        record.pop("q", None)
        record["e"].append(eid)
    items.save(pairs)


def _decommission_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org = _supply_actor(ctx)
    _decommission(_Op(ctx, org, "decommission", 0), _items(ctx, payload), payload["reason"])
    _clock(ctx)


def _recall(op: _Op, gtin: str, lot: str | None, serials: list[str], reason: str, by_regulator: bool,
            **extra: Any) -> None:
    state = op.ctx.state
    product = _get(state, _product_key(gtin))
    if product is None:
        raise Rejected("unknown_product", f"GTIN {gtin} is not registered")
    if not by_regulator and product["m"] != op.org:
        raise Rejected("not_manufacturer", f"only {product['m']!r} or a regulator may recall {gtin}")
    if lot is None and not serials:
        raise Rejected("bad_payload", "payload: give a lot or serials to recall")
    lot_record = None
    if lot is not None:
        lot_record = _get(state, _lot_key(gtin, lot))
        if lot_record is None:
            raise Rejected("unknown_lot", f"no lot {lot!r} of {gtin}")
    units = [(unit_key(gtin, s), _unit(state, gtin, s)) for s in serials]
    eid = op.record("recall", gtin=gtin, lot=lot, serials=serials or None, reason=reason, **extra)
    if lot_record is not None:
        lot_record["recall"] = eid
        _put(state, _lot_key(gtin, lot), lot_record)  # type: ignore[arg-type]
    for key, unit in units:
        unit["r"] = eid
        unit["e"].append(eid)
        _put(state, key, unit)


def _recall_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org, regulator = _supply_or_regulator(ctx)
    _recall(_Op(ctx, org, "recall", 0), payload["gtin"], payload.get("lot"), payload.get("serials", []),
            payload["reason"], regulator)
    _clock(ctx)


def _suspect(op: _Op, items: _Items, reason: str, by_regulator: bool, **extra: Any) -> None:
    items.check_top(op.org, allow=("active", "in_transit"), holder=not by_regulator)
    eid = op.record("suspect", reason=reason, n=len(items.top), **extra)
    pairs = items.everything()
    for _, record in pairs:
        record["q"] = [op.org, record["s"]]
        record["s"] = "suspect"
        record["e"].append(eid)
    items.save(pairs)


def _suspect_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org, regulator = _supply_or_regulator(ctx)
    _suspect(_Op(ctx, org, "suspect", 0), _items(ctx, payload), payload["reason"], regulator)
    _clock(ctx)


def _clear(op: _Op, items: _Items, reason: str, by_regulator: bool) -> None:
    for key in items.top:
        record = items.records[key]
        if record["s"] != "suspect":
            raise Rejected("not_suspect", f"{items.labels[key]} is {record['s']}, not suspect")
        if not by_regulator and record["q"][0] != op.org:
            raise Rejected("not_allowed_to_clear", f"{items.labels[key]} was quarantined by "
                                                   f"{record['q'][0]!r}; only it or a regulator may clear it")
    eid = op.record("clear", reason=reason, n=len(items.top))
    pairs = items.everything()
    for _, record in pairs:
        record["s"] = record.pop("q")[1]
        record["e"].append(eid)
    items.save(pairs)


def _clear_tx(ctx: TxContext, payload: dict[str, Any]) -> None:
    org, regulator = _supply_or_regulator(ctx)
    _clear(_Op(ctx, org, "clear", 0), _items(ctx, payload), payload["reason"], regulator)
    _clock(ctx)


# --- EPCIS 2.0 capture -------------------------------------------------------------------------------


def _split_epcs(keys: Iterable[str]) -> tuple[list[dict[str, str]], list[str]]:
    units: list[dict[str, str]] = []
    containers: list[str] = []
    for key in keys:
        epc = gs1.parse_epc(key)
        if epc.kind == "sgtin":
            units.append({"gtin": epc.gtin or "", "serial": epc.serial or ""})
        else:
            containers.append(epc.sscc or "")
    return units, containers


def _party(event: epcis.TraceEvent) -> str:
    """The organisation a shipment goes to: a destination ``urn:hcnode:org:<id>`` (owning or possessing party)."""
    for kind, ident in event.destinations:
        if kind in ("owning_party", "possessing_party") and ident.startswith("urn:hcnode:org:"):
            return ident[len("urn:hcnode:org:"):]
    raise Rejected("bad_epcis", "a shipping event needs a destinationList entry of type owning_party or "
                                "possessing_party naming the organisation as urn:hcnode:org:<org-id>")


def _apply_trace_event(ctx: TxContext, org: str, regulator: bool, event: epcis.TraceEvent, index: int,
                       raw: dict[str, Any]) -> None:
    state = ctx.state
    existing = state.get(_epcis_key(event.event_hash))
    if event.error_declaration is not None:
        if existing is None:
            raise Rejected("unknown_event", f"errorDeclaration for {event.event_hash}, which was never captured")
        target = _get(state, _event_key(existing))
        if "err" in target:
            raise Rejected("already_declared", f"event {event.event_hash} is already declared erroneous")
        if target["o"] != org and not regulator:
            raise Rejected("not_holder", f"only {target['o']!r} (who captured it) or a regulator may declare "
                                         "this event erroneous")
        op = _Op(ctx, org, "error_declaration", index)
        eid = op.record("error_declaration", declares=existing, epcis=event.event_hash, raw=raw,
                        reason=event.error_declaration.reason)
        target["err"] = eid
        _put(state, _event_key(existing), target)
        return
    if existing is not None:
        raise Rejected("duplicate_event", f"EPCIS event {event.event_hash} was already captured (event "
                                          f"{existing.hex()[:16]}…); a correction is a new event with an "
                                          "errorDeclaration")
    op = _Op(ctx, org, event.kind, index)
    extra = {"epcis": event.event_hash, "raw": raw, "when": event.event_time,
             "where": event.biz_location or event.read_point}
    try:
        units, containers = _split_epcs(event.epcs)
        parent = gs1.parse_epc(event.parent).sscc if event.parent else None
    except gs1.GS1Error as exc:
        raise Rejected("bad_epcis", str(exc)) from None
    kind = event.kind
    if kind == "commission":
        if containers or not units:
            raise Rejected("bad_epcis", "a commissioning event lists serialized items (SGTINs) only")
        if event.lot is None or event.expiry is None:
            raise Rejected("bad_epcis", "a commissioning event needs ilmd cbvmda:lotNumber and "
                                        "cbvmda:itemExpirationDate")
        gtins = sorted({u["gtin"] for u in units})
        if len(gtins) != 1:
            raise Rejected("bad_epcis", "a commissioning event names one GTIN (one lot)")
        if not 0 < len(units) <= MAX_SERIALS_PER_TX:
            raise Rejected("bad_epcis", f"at most {MAX_SERIALS_PER_TX} serials per event")
        _commission(op, gtins[0], event.lot, event.expiry, [u["serial"] for u in units], **extra)
    elif kind == "aggregate":
        _aggregate(op, parent or "", units, containers, **extra)
    elif kind == "disaggregate":
        _disaggregate(op, parent or "", units, containers, **extra)
    elif kind == "ship":
        _ship(op, _party(event), _Items(state, units, containers if not parent else [parent]), **extra)
    elif kind == "receive":
        _receive(op, _Items(state, units if not parent else [], containers if not parent else [parent]),
                 **extra)
    elif kind == "dispense":
        if containers or len(units) != 1:
            raise Rejected("bad_epcis", "a dispensing event names exactly one serialized item")
        _dispense(op, units[0]["gtin"], units[0]["serial"], None, None, None, None, **extra)
    elif kind == "return":
        _return(op, units, False, **extra)
    elif kind == "decommission":
        reason = event.disposition if event.disposition in DECOMMISSION_REASONS else (
            "destroyed" if event.disposition in (None, "destroyed", "disposed") else "other")
        _decommission(op, _Items(state, units, containers), reason, **extra)
    elif kind == "recall":
        gtins = sorted({u["gtin"] for u in units})
        if containers or len(gtins) != 1:
            raise Rejected("bad_epcis", "a recall event names serialized items of one GTIN")
        _recall(op, gtins[0], None, [u["serial"] for u in units], "EPCIS recall", regulator, **extra)
    elif kind == "suspect":
        _suspect(op, _Items(state, units, containers), f"EPCIS {event.biz_step}", regulator, **extra)
    else:  # pragma: no cover - epcis.KINDS is closed
        raise Rejected("bad_epcis", f"event kind {kind!r} is not handled")
    state.put(_epcis_key(event.event_hash), op.eid)


def _epcis_import(ctx: TxContext, payload: dict[str, Any]) -> None:
    """Re-read every event from its JSON on chain (never trust the wallet's conversion), then apply all.

    Any failure rejects the transaction, and a rejected transaction writes nothing: a
    document is captured whole or not at all.
    """
    org, regulator = _supply_or_regulator(ctx)
    events = []
    for i, item in enumerate(payload["events"]):
        namespaces = dict(pair for pair in item.get("namespaces", ()))
        try:
            raw = json.loads(item["event"])
        except ValueError as exc:
            raise Rejected("bad_epcis", f"event {i}: invalid JSON: {exc}") from None
        try:
            event = epcis.parse_event(raw, namespaces, where=f"event {i} ")
        except epcis.EpcisError as exc:
            raise Rejected("bad_epcis", str(exc)) from None
        events.append((event, {"event": event.raw, "ns": [list(p) for p in event.namespaces]}))
    for i, (event, raw) in enumerate(events):
        try:
            _apply_trace_event(ctx, org, regulator, event, i, raw)
        except Rejected as exc:
            raise Rejected(exc.code, f"event {i}: {exc.message}") from None
    _clock(ctx)


# --- verdicts ---------------------------------------------------------------------------------------


_FAILURE_REASON = {
    (True, False): "No_match_GTIN_Serial_Lot",
    (False, True): "No_match_GTIN_Serial_Expiry",
    (True, True): "No_match_GTIN_Serial_Lot_Expiry",
}
_ADDITIONAL_INFO = {"RECALLED": "Recalled", "EXPIRED": "Expired", "SUSPECT": "Suspect",
                    "ALREADY_DISPENSED": "Suspect", "DECOMMISSIONED": "Suspect", "CUSTODY_BROKEN": "Suspect"}


def _findings(state: Overlay | StateReader, gtin: str, unit: dict[str, Any], lot: str | None,
              expiry: str | None, today: str) -> list[str]:
    """Every verdict that applies to a commissioned unit, most serious first (empty: VERIFIED)."""
    lot_record = _get(state, _lot_key(gtin, unit["l"]))
    found = []
    if (lot is not None and lot != unit["l"]) or (expiry is not None and expiry != lot_record["expiry"]):
        found.append("LOT_OR_EXPIRY_MISMATCH")
    if unit["s"] == "decommissioned":
        found.append("DECOMMISSIONED")
    if unit["s"] == "dispensed":
        found.append("ALREADY_DISPENSED")
    if "r" in unit or "recall" in lot_record:
        found.append("RECALLED")
    if unit["s"] == "suspect":
        found.append("SUSPECT")
    if lot_record["expiry"] < today:
        found.append("EXPIRED")
    return found


def _judge(state: Overlay | StateReader, gtin: str, unit: dict[str, Any], lot: str | None,
           expiry: str | None, today: str) -> str:
    found = _findings(state, gtin, unit, lot, expiry, today)
    return found[0] if found else "VERIFIED"


def query_proof(query: str, params: dict[str, Any], as_height: int) -> bytes:
    """What a caller signs (purpose ``drugs-query``) to prove who asks: the query, its params, a height."""
    rest = {k: v for k, v in params.items() if k not in ("as_key", "as_sig", "as_height")}
    return codec.encode([query, rest, as_height])


def _caller(state: StateReader, query: str, params: dict[str, Any], height: int) -> dict[str, Any] | None:
    """The organisation proven by ``as_key``/``as_sig``/``as_height``, or None when no proof is given."""
    given = [name for name in ("as_key", "as_sig", "as_height") if name in params]
    if not given:
        return None
    if len(given) != 3:
        raise Rejected("bad_params", "a caller proof needs all of as_key, as_sig and as_height")
    as_height = params["as_height"]
    if as_height > height or height - as_height > AS_PROOF_WINDOW:
        raise Rejected("stale_proof", f"as_height {as_height} must be within {AS_PROOF_WINDOW} blocks at or "
                                      f"below the current height {height}")
    chain_id = state.get(b"drugs/chain_id")
    message = query_proof(query, params, as_height)
    if chain_id is None or not crypto.verify(params["as_key"], params["as_sig"], chain_id.decode(), AS_PURPOSE,
                                             message):
        raise Rejected("bad_proof", "as_sig is not as_key's signature over [query, params, as_height]")
    member = registry.member_org(state, params["as_key"], height)
    if member is None:
        raise Rejected("bad_proof", "as_key is not an active member of an active organisation")
    return member


def _today(state: StateReader, params: dict[str, Any]) -> str:
    if "today" in params:
        return _check_date(params["today"], "today")
    raw = state.get(b"drugs/clock")
    return _date_of(int.from_bytes(raw, "big")) if raw is not None else "0001-01-01"


def _event_view(eid: bytes, event: dict[str, Any]) -> dict[str, Any]:
    """An event as people read it: what, who, when, where, height, tx hash, and the details."""
    details = {k: v for k, v in event.items() if k not in ("k", "o", "tm", "h", "tx", "raw", "where", "when")}
    view = {"event": eid, "what": event["k"], "who": event["o"], "when": event.get("when") or _iso_time(event["tm"]),
            "recorded": _iso_time(event["tm"]), "where": event.get("where"), "height": event["h"],
            "tx": event["tx"], "details": details}
    if "raw" in event:
        view["epcis"] = event["raw"]
    return view


def _trail(state: StateReader, gtin: str, unit: dict[str, Any]) -> list[dict[str, Any]]:
    eids = list(unit["e"]) + list(unit.get("a", ()))
    lot_record = _get(state, _lot_key(gtin, unit["l"]))
    if "recall" in lot_record and lot_record["recall"] not in eids:
        eids.append(lot_record["recall"])
    views = []
    for eid in eids:
        event = _get(state, _event_key(eid))
        view = _event_view(eid, event)
        if "err" in event:
            view["declared_erroneous_by"] = event["err"]
        views.append(view)
    views.sort(key=lambda v: (v["height"], v["event"]))
    return views


def _q_verify(state: StateReader, params: dict[str, Any], height: int) -> Any:
    today = _today(state, params)
    if "scan" in params:
        if any(name in params for name in ("gtin", "serial", "lot", "expiry")):
            raise Rejected("bad_params", "give either scan or gtin + serial (+ lot, expiry), not both")
        try:
            scan = gs1.parse_scan(params["scan"], reference_year=int(today[:4]))
        except gs1.GS1Error as exc:
            raise Rejected("bad_params", str(exc)) from None
        gtin, serial, lot, expiry = scan.gtin, scan.serial, scan.lot, scan.expiry
    elif "gtin" in params and "serial" in params:
        try:
            gtin = gs1.gtin14(params["gtin"])
        except gs1.GS1Error as exc:
            raise Rejected("bad_params", str(exc)) from None
        serial, lot, expiry = params["serial"], params.get("lot"), params.get("expiry")
    else:
        raise Rejected("bad_params", "give scan (a GS1 element string or DataMatrix text) or gtin and serial")
    caller = _caller(state, "drugs.verify", params, height)
    answer: dict[str, Any] = {"gtin": gtin, "serial": serial, "checked": {"height": height, "date": today}}
    unit = _get(state, unit_key(gtin, serial))
    product = _get(state, _product_key(gtin))
    if unit is None:
        answer.update({"verdict": "UNKNOWN_SERIAL", "verified": False,
                       "verificationFailureReason": "No_match_GTIN_Serial", "trail_visible": False})
        if product is not None:
            answer["product"] = _product_view(product)
        return answer
    lot_record = _get(state, _lot_key(gtin, unit["l"]))
    findings = _findings(state, gtin, unit, lot, expiry, today)
    holders = _holders(state, unit)
    if caller is not None and caller["kind"] != "regulator" and caller["org"] not in (
            unit["h"], unit.get("t"), product["m"]) and unit["s"] in ("active", "in_transit"):
        findings.append("CUSTODY_BROKEN")
    verdict = findings[0] if findings else "VERIFIED"
    answer["verdict"] = verdict
    answer["findings"] = findings
    answer["product"] = _product_view(product)
    if verdict == "LOT_OR_EXPIRY_MISMATCH":
        answer["verified"] = False
        answer["verificationFailureReason"] = _FAILURE_REASON[(lot is not None and lot != unit["l"],
                                                               expiry is not None and expiry != lot_record["expiry"])]
    else:
        answer["verified"] = True
        info = next((_ADDITIONAL_INFO[f] for f in findings if f in _ADDITIONAL_INFO), None)
        if info is not None:
            answer["additionalInfo"] = info
    visible = caller is not None and (caller["kind"] == "regulator" or caller["org"] == product["m"]
                                      or caller["org"] in holders)
    answer["trail_visible"] = visible
    if visible:
        trail = _trail(state, gtin, unit)
        answer.update({"lot": unit["l"], "expiry": lot_record["expiry"], "status": unit["s"], "holder": unit["h"],
                       "trail": trail, "alerts": [v for v in trail if v["what"] == "clone_alert"]})
        if "p" in unit:
            answer["container"] = unit["p"]
        if "t" in unit:
            answer["addressee"] = unit["t"]
        latest = max(trail, key=lambda v: v["height"])
        answer[TX_PROOF_REQUEST] = latest["tx"]
    return answer


def _holders(state: StateReader, unit: dict[str, Any]) -> set[str]:
    """Every organisation that held the unit: whoever commissioned, received or took back a return."""
    orgs = {unit["h"]}
    for eid in unit["e"]:
        event = _get(state, _event_key(eid))
        if event["k"] in ("commission", "receive", "return"):
            orgs.add(event["o"])
    return orgs


def _product_view(product: dict[str, Any]) -> dict[str, Any]:
    return {"gtin": product["gtin"], "name": product["name"], "form": product["form"],
            "strength": product["strength"], "manufacturer": product["m"]}


def _q_product(state: StateReader, params: dict[str, Any], height: int) -> Any:
    product = _get(state, _product_key(params["gtin"]))
    if product is None:
        raise Rejected("not_found", f"no product with GTIN {params['gtin']}")
    return {**_product_view(product), "since": product["since"]}


def _q_alerts(state: StateReader, params: dict[str, Any], height: int) -> Any:
    """Clone alerts for a product: for its manufacturer and regulators (a signed caller proof is required)."""
    caller = _caller(state, "drugs.alerts", params, height)
    product = _get(state, _product_key(params["gtin"]))
    if product is None:
        raise Rejected("not_found", f"no product with GTIN {params['gtin']}")
    if caller is None or (caller["kind"] != "regulator" and caller["org"] != product["m"]):
        raise Rejected("not_visible", "clone alerts are visible to the product's manufacturer and regulators; "
                                      "sign the query (as_key, as_sig, as_height)")
    alerts = []
    for key, raw in state.scan(b"drugs/a/" + params["gtin"].encode() + b"/"):
        alert = cbor2.loads(raw)
        alerts.append({"event": key.rsplit(b"/", 1)[1], "gtin": alert["gtin"], "serial": alert["serial"],
                       "attempted_by": alert["o"], "first_dispense": alert["first"], "height": alert["h"],
                       "tx": alert["tx"]})
    return alerts


def _q_container(state: StateReader, params: dict[str, Any], height: int) -> Any:
    record = read_value(state, _container_key(params["sscc"]))
    if record is None:
        raise Rejected("not_found", f"no container {params['sscc']}")
    return {"sscc": params["sscc"], "status": record["s"], "holder": record["h"], "parent": record.get("p"),
            "units": [{"gtin": u[:14], "serial": u[14:]} for u in record["u"]], "containers": record["c"]}


# --- genesis and the app value -------------------------------------------------------------------


_PROOF_PARAMS = {"as_key": Optional(Bytes(size=33)), "as_sig": Optional(Bytes(size=64)),
                 "as_height": Optional(Int())}
_ITEMS = {"units": UNITS, "containers": CONTAINERS}

APP = App(
    name="drugs",
    tx_types=(
        TxType("drugs.product_register", Record({"gtin": GTIN, "name": Text(max_len=128),
                                                 "form": Text(max_len=64), "strength": Text(max_len=64)}),
               _product_register, "A manufacturer registers (or updates) a product; the first to register a GTIN "
                                  "owns it."),
        TxType("drugs.commission", Record({"gtin": GTIN, "lot": LOT, "expiry": DATE,
                                           "serials": ListOf(SERIAL, min_items=1, max_items=MAX_SERIALS_PER_TX,
                                                             unique=True)}),
               _commission_tx, "The product's manufacturer commissions serialized units of one lot."),
        TxType("drugs.aggregate", Record({"container": SSCC, **_ITEMS}), _aggregate_tx,
               "The holder packs units and containers into a case or pallet (SSCC)."),
        TxType("drugs.disaggregate", Record({"container": SSCC, **_ITEMS}), _disaggregate_tx,
               "The holder unpacks the named items (or everything) from a container."),
        TxType("drugs.ship", Record({"to": registry.ORG_ID, **_ITEMS}), _ship_tx,
               "The holder ships units or containers (with their contents) to another organisation."),
        TxType("drugs.receive", Record(_ITEMS), _receive_tx,
               "The addressee receives what was shipped to it and becomes the holder."),
        TxType("drugs.return", Record({"units": ListOf(Record({"gtin": GTIN, "serial": SERIAL,
                                                               "lot": Optional(LOT), "expiry": Optional(DATE)}),
                                                       min_items=1, max_items=1000, unique=True),
                                       "saleable": Bool()}),
               _return_tx, "The addressee takes back returned units; a saleable return must verify first."),
        TxType("drugs.dispense", Record({"gtin": GTIN, "serial": SERIAL, "lot": Optional(LOT),
                                         "expiry": Optional(DATE), "patient": PATIENT,
                                         "prescription": Bytes(size=32)}),
               _dispense_tx, "A pharmacy dispenses a unit to a pseudonymous patient for a prescription hash."),
        TxType("drugs.decommission", Record({**_ITEMS, "reason": Text(choices=DECOMMISSION_REASONS)}),
               _decommission_tx, "The holder takes units out of the supply chain (destroyed, stolen, sample...)."),
        TxType("drugs.recall", Record({"gtin": GTIN, "lot": Optional(LOT),
                                       "serials": Optional(ListOf(SERIAL, min_items=1,
                                                                  max_items=MAX_SERIALS_PER_TX, unique=True)),
                                       "reason": REASON}),
               _recall_tx, "The manufacturer or a regulator recalls a lot or serials."),
        TxType("drugs.suspect", Record({**_ITEMS, "reason": REASON}), _suspect_tx,
               "The holder or a regulator quarantines units as suspect."),
        TxType("drugs.clear", Record({**_ITEMS, "reason": REASON}), _clear_tx,
               "Whoever raised the suspicion, or a regulator, clears a quarantine."),
        TxType("drugs.epcis_import",
               Record({"events": ListOf(Record({"event": Text(max_len=MAX_EPCIS_EVENT_CHARS),
                                                "namespaces": Optional(ListOf(ListOf(Text(max_len=512),
                                                                                     min_items=2, max_items=2),
                                                                              max_items=16))}),
                                        min_items=1, max_items=MAX_EPCIS_EVENTS_PER_TX)}),
               _epcis_import, "An organisation captures EPCIS 2.0 events it performed (all or nothing)."),
    ),
    queries=(
        Query("drugs.verify", Record({"scan": Optional(Text(max_len=gs1.MAX_SCAN_CHARS)),
                                      "gtin": Optional(Text(max_len=14, pattern=r"[0-9]{8,14}")),
                                      "serial": Optional(SERIAL), "lot": Optional(LOT),
                                      "expiry": Optional(DATE), "today": Optional(DATE), **_PROOF_PARAMS}),
              _q_verify, "Is this pack genuine? A verdict, the GS1 LVMS fields and (to entitled callers) the "
                         "trail with a proof request for its latest transaction."),
        Query("drugs.product", Record({"gtin": GTIN}), _q_product, "A registered product."),
        Query("drugs.container", Record({"sscc": SSCC}), _q_container, "A container and its direct contents."),
        Query("drugs.alerts", Record({"gtin": GTIN, **_PROOF_PARAMS}), _q_alerts,
              "Clone alerts of a product (manufacturer and regulators only, signed query)."),
    ),
)
