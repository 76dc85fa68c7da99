"""Billing app: payers' fee schedules, providers' encounters and claims, adjudication, payment, disputes.

Owns: the life of a claim and the flags that make overbilling visible. Must not
know registry state (it asks ``registry.require_role`` / ``require_identity`` / ``active_org``),
any other app, the clock (dates come from block time) or any I/O. No PHI: a
patient is the pseudonymous id the registry derives from their key, an
encounter is a hash of a record kept off chain.

Who may do what (registry roles; the organisation's kind is checked too):

    fee_schedule_manager  member of an insurer            publishes its fee schedule versions
    claims_adjuster       member of an insurer            adjudicates and pays claims addressed to
                                                          its organisation, resolves their disputes,
                                                          records a member's deregistration
    billing_clerk         member of a hospital or clinic  anchors encounters, submits claims,
                                                          resolves disputes on its claims
    clinician             member of a hospital or clinic  anchors the encounters they hold (the
                                                          record is theirs; billing staff may not
                                                          have seen it)
    the patient           their own registered key        disputes a claim billed in their name,
                                                          deregisters

Money is integer minor units (cents) with an ISO 4217 currency code; a float or
a negative amount is refused with a message saying so.

Flags, computed when a claim is submitted, never block it; each is on the
receipt (``ctx.flag`` with details), on the claim and counted in the totals:
    duplicate_claim             the same patient, provider, code and date of service was billed
                                before (one index key per patient, provider and date: O(1), whatever
                                the number of claims)
    above_schedule              unit price above the payer's maximum for the code on that date
                                (the excess per unit and in total)
    no_anchored_encounter       no encounter named, unknown, or anchored for another patient
    unbundled_codes             two or more codes of one bundling rule billed on one date of
                                service (in this claim or earlier claims of the same provider)
    billed_after_deregistration a date of service after the patient's deregistration
    code_not_in_schedule, no_fee_schedule, currency_mismatch   the comparison could not be made

Fee schedules are versioned: version n+1 takes effect on a later date than
version n; a code's maximum in a version is written once (a change needs a
new version), so a claim is always judged by a schedule nobody rewrote later.
Large schedules are published in parts (``billing.schedule_entries``, up to
1,000 codes a transaction).

State keys (values canonical CBOR; the claim, written for every claim, is a positional array
(CLAIM_LAYOUT) because canonical encoding of maps costs a sort per map and a claim is written at
>= 10,000 a second; the running totals are counters (``Overlay.add_counts``), added up per block
and written once per block rather than once per claim; queries return maps):
    billing/schedule/<payer>                             [{version, effective_from, currency, ...}]
    billing/fee/<payer>/<version:06>/<code>              max per unit, or [max, [bundling rule names]]
    billing/rules/<payer>/<version:06>                   {rule name: [codes]}
    billing/bundle/<payer>/<version:06>/<code>           [names of the rules holding the code]
    billing/encounter/<provider>/<reference hex>         {patient, date, provider, height}
    billing/claim/<id>                                   the claim, its flags and history
    billing/day/<patient>/<provider>/<date>              [code, first claim id, ...] billed that day
                                                         (duplicates and bundling rules)
    billing/patient/<patient>/<id>                       index of a patient's claims
    billing/deregistered/<patient>                       {date, by, reason, height}
    billing/totals/<provider|payer>/<org>/<currency>     running totals for the report: counters
                                                         {TOTALS_FIELDS name or "flag:" + flag: n}
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

import cbor2

from hcnode.apps.dates import CalendarDate, block_day
from hcnode.apps.registry import ORG_ID, active_org, require_identity, require_role
from hcnode.chain.app import App, Query, TxContext, TxType
from hcnode.chain.errors import Rejected
from hcnode.chain.schema import Bytes, Int, ListOf, Optional, Record, Spec, Text
from hcnode.chain.state import Overlay, StateReader, read_value

__all__ = ["APP", "PROVIDER_KINDS", "PAYER_KINDS", "Money", "CodeText"]

PROVIDER_KINDS: Final = ("hospital", "clinic")
PAYER_KINDS: Final = ("insurer",)
PROVIDER_ROLE: Final = "billing_clerk"
ENCOUNTER_ROLES: Final = (PROVIDER_ROLE, "clinician")
PAYER_ROLE: Final = "claims_adjuster"
SCHEDULE_ROLE: Final = "fee_schedule_manager"

MAX_AMOUNT: Final = 10**12  # minor units: ten billion in a two-decimal currency, far above any real line item
MAX_ITEMS: Final = 50
MAX_SCHEDULE_ENTRIES: Final = 1000
TOP_FLAGS: Final = 10


# --- payload shapes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Money(Spec):
    """An amount in integer minor units: floats, fractions and negatives are refused by name."""

    max: int = MAX_AMOUNT

    def check(self, value: Any, path: str) -> None:
        if type(value) is float:
            raise Rejected("bad_payload", f"{path}: amounts are whole minor units (1250 for 12.50), "
                                          f"not a decimal number like {value!r}")
        if type(value) is not int:
            raise Rejected("bad_payload", f"{path}: expected an amount in integer minor units, "
                                          f"got {type(value).__name__}")
        if value < 0:
            raise Rejected("bad_payload", f"{path}: an amount cannot be negative, got {value}")
        if value > self.max:
            raise Rejected("bad_payload", f"{path}: {value} exceeds the limit of {self.max} minor units")

    def describe(self) -> str:
        return f"uint .le {self.max}"


@dataclass(frozen=True)
class CodeText(Text):
    """A coded value whose error says which code system it must belong to."""

    what: str = ""

    def check(self, value: Any, path: str) -> None:
        try:
            super().check(value, path)
        except Rejected:
            if type(value) is not str:
                raise
            raise Rejected("bad_payload", f"{path}: {value[:40]!r} is not {self.what}") from None


PATIENT_ID = CodeText(min_len=27, max_len=27, pattern=r"pt-[0-9a-f]{24}",
                      what="a pseudonymous patient id (pt- and 24 hex digits, see registry.patient)")
PROCEDURE_CODE = CodeText(min_len=5, max_len=5, pattern=r"[0-9]{4}[0-9FT]|[A-V][0-9]{4}",
                          what="a CPT/HCPCS procedure code (4 digits then a digit, F or T; "
                               "or a letter A-V and 4 digits)")
DIAGNOSIS_CODE = CodeText(min_len=3, max_len=8, pattern=r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?",
                          what="an ICD-10 code (a letter, a digit, a digit or letter, then "
                               "optionally a dot and 1-4 characters, e.g. E11.9)")
CURRENCY = CodeText(min_len=3, max_len=3, pattern=r"[A-Z]{3}", what="an ISO 4217 currency code like USD")
REASON_CODE = CodeText(max_len=12, pattern=r"[A-Z0-9][A-Z0-9-]*",
                       what="a claim adjustment reason code (e.g. CO-45, N130)")
RULE_NAME = Text(max_len=48, pattern=r"[a-z0-9][a-z0-9_.-]*")
CLAIM_ID = Text(min_len=32, max_len=32, pattern=r"[0-9a-f]{32}")
DATE = CalendarDate()
NOTE = Text(max_len=500)

SCHEDULE_ENTRY = Record({"code": PROCEDURE_CODE, "max_amount": Money()})
BUNDLING_RULE = Record({"name": RULE_NAME, "codes": ListOf(PROCEDURE_CODE, min_items=2, max_items=20, unique=True)})
CLAIM_ITEM = Record({
    "sequence": Int(min=1, max=MAX_ITEMS),
    "code": PROCEDURE_CODE,
    "quantity": Int(min=1, max=10_000),
    "unit_price": Money(),
    "date_of_service": DATE,
})


# --- small helpers ------------------------------------------------------------------------------------


def _k(*parts: str) -> bytes:
    return ("billing/" + "/".join(parts)).encode()


def _version_key(version: int) -> str:
    return str(version).zfill(6)  # f"{version:06d}" for the schema's positive versions, at half the cost


def _today(ctx: TxContext) -> str:
    return block_day(ctx.block.time_ms)


def _not_in_future(ctx: TxContext, date: str, what: str) -> None:
    today = _today(ctx)
    if date > today:
        raise Rejected("date_in_future", f"{what} {date} is after the block's date {today}")


CLAIM_LAYOUT: Final = ("id", "status", "provider", "submitted_by", "payer", "patient", "encounter", "currency",
                "diagnoses", "items", "total", "allowed", "paid", "excess_over_schedule", "flags", "height",
                "date", "disputes", "history", "reason_codes")
ITEM_LAYOUT: Final = ("sequence", "code", "quantity", "unit_price", "date_of_service", "net")
TOTALS_FIELDS: Final = ("claims", "billed", "flagged_claims", "flagged_billed", "above_schedule_excess", "allowed",
                 "paid", "disputes", "approved_claims", "partial_claims", "denied_claims", "withdrawn_claims")


# Maps inside a claim written at submission (a flag's details, the history entry) and the events of
# its receipt are built with their keys in canonical order (shorter first, then bytewise) where the
# names allow it, so that the encoder takes its fast path; the bytes are the same either way.


def _pack_claim(claim: dict[str, Any]) -> list[Any]:
    packed = list(map(claim.get, CLAIM_LAYOUT))
    packed[9] = [list(map(item.__getitem__, ITEM_LAYOUT)) for item in claim["items"]]
    packed[14] = [[f["flag"], {k: v for k, v in f.items() if k != "flag"}] for f in claim["flags"]]
    return packed


def _unpack_claim(packed: list[Any]) -> dict[str, Any]:
    claim = dict(zip(CLAIM_LAYOUT, packed))
    claim["items"] = [dict(zip(ITEM_LAYOUT, item)) for item in claim["items"]]
    claim["flags"] = [{"flag": name, **details} for name, details in claim["flags"]]
    return claim


def _save_claim(state: Overlay, claim: dict[str, Any]) -> None:
    state.put_value(_k("claim", claim["id"]), _pack_claim(claim))


def _load_claim(state: Overlay | StateReader, claim_id: str) -> dict[str, Any]:
    packed = read_value(state, _k("claim", claim_id))
    if packed is None:
        raise Rejected("unknown_claim", f"no claim {claim_id!r}")
    return _unpack_claim(packed)


def _version_in_effect(versions: list[dict[str, Any]], date: str) -> dict[str, Any] | None:
    """The schedule version in force on ``date``: the last one effective on or before it."""
    for entry in versions[::-1]:  # not reversed(): mypyc cannot compile it over this list type
        if entry["effective_from"] <= date:
            return entry
    return None


def _totals_key(side: str, org: str, currency: str) -> bytes:
    return _k("totals", side, org, currency)


def _bump_totals(state: Overlay, claim: dict[str, Any], changes: dict[str, int]) -> None:
    """Add ``changes`` (a TOTALS_FIELDS name or "flag:" + flag -> delta) to the provider's and the
    payer's running totals. (A dict, not keyword arguments: compiled, a call with ``**`` goes
    through the generic argument parser, and every claim makes one.)"""
    for side, org in (("provider", claim["provider"]), ("payer", claim["payer"])):
        state.add_counts(_totals_key(side, org, claim["currency"]), changes)


# --- fee schedules ---------------------------------------------------------------------------------------


def _write_entries(state: Overlay, payer: str, version: int, entries: list[dict[str, Any]]) -> None:
    """Each code's maximum, written once; with the names of its bundling rules, so that a claim
    finds both in one read."""
    vkey = _version_key(version)
    for entry in entries:
        key = _k("fee", payer, vkey, entry["code"])
        if state.get(key) is not None:
            raise Rejected("entry_exists", f"code {entry['code']} already has a maximum in version {version} "
                                           f"of {payer}'s schedule; publish a new version to change it")
        rules = state.get_value(_k("bundle", payer, vkey, entry["code"]))
        state.put_value(key, [entry["max_amount"], rules] if rules else entry["max_amount"])


def _fee(state: Overlay, payer: str, vkey: str, code: str) -> tuple[int | None, list[str]]:
    """(maximum per unit or None, bundling rule names) for a code in a schedule version.

    Schedules are read with ``peek_value``, shared within a block: a code's maximum is written
    once and claims only compare against it."""
    value = state.peek_value(f"billing/fee/{payer}/{vkey}/{code}".encode())  # _k's key, built in one step
    if value is None:
        return None, state.peek_value(_k("bundle", payer, vkey, code)) or []
    return (value, []) if type(value) is int else (value[0], value[1])


def _schedule_publish(ctx: TxContext, payload: dict[str, Any]) -> None:
    member = require_role(ctx, SCHEDULE_ROLE, org_kinds=PAYER_KINDS)
    payer = member["org"]
    versions = ctx.state.get_value(_k("schedule", payer)) or []
    expected = len(versions) + 1
    if payload["version"] != expected:
        raise Rejected("bad_version", f"the next version of {payer}'s fee schedule is {expected}, "
                                      f"not {payload['version']}")
    if versions and payload["effective_from"] <= versions[-1]["effective_from"]:
        raise Rejected("dates_out_of_order", f"version {expected} must take effect after version "
                                             f"{expected - 1} ({versions[-1]['effective_from']}), "
                                             f"not on {payload['effective_from']}")
    rules = {rule["name"]: sorted(rule["codes"]) for rule in payload.get("bundling_rules", [])}
    if len(rules) != len(payload.get("bundling_rules", [])):
        raise Rejected("bad_payload", "payload.bundling_rules: rule names must be unique")
    vkey = _version_key(expected)
    memberships: dict[str, list[str]] = {}
    for name, codes in rules.items():
        for code in codes:
            memberships.setdefault(code, []).append(name)
    for code, names in memberships.items():
        ctx.state.put_value(_k("bundle", payer, vkey, code), sorted(names))
    if rules:
        ctx.state.put_value(_k("rules", payer, vkey), rules)
    entries = payload.get("entries", [])
    _write_entries(ctx.state, payer, expected, entries)
    versions.append({"version": expected, "effective_from": payload["effective_from"],
                     "currency": payload["currency"], "published_by": member["id"],
                     "height": ctx.block.height, "entries": len(entries), "bundling_rules": len(rules)})
    ctx.state.put_value(_k("schedule", payer), versions)
    ctx.emit("billing.schedule_published", payer=payer, version=expected,
             effective_from=payload["effective_from"], entries=len(entries))


def _schedule_entries(ctx: TxContext, payload: dict[str, Any]) -> None:
    member = require_role(ctx, SCHEDULE_ROLE, org_kinds=PAYER_KINDS)
    payer = member["org"]
    versions = ctx.state.get_value(_k("schedule", payer)) or []
    version = payload["version"]
    if not 1 <= version <= len(versions):
        raise Rejected("unknown_version", f"{payer} has no fee schedule version {version} "
                                          f"(it has {len(versions)}; publish one first)")
    _write_entries(ctx.state, payer, version, payload["entries"])
    versions[version - 1]["entries"] += len(payload["entries"])
    ctx.state.put_value(_k("schedule", payer), versions)
    ctx.emit("billing.schedule_entries", payer=payer, version=version, added=len(payload["entries"]))


# --- encounters and deregistration --------------------------------------------------------------------------


def _encounter_anchor(ctx: TxContext, payload: dict[str, Any]) -> None:
    member = require_role(ctx, ENCOUNTER_ROLES, org_kinds=PROVIDER_KINDS)
    _not_in_future(ctx, payload["date"], "the encounter date")
    key = _k("encounter", member["org"], payload["encounter"].hex())
    if ctx.state.get(key) is not None:
        raise Rejected("encounter_exists", "this encounter reference is already anchored by "
                                           f"{member['org']}")
    ctx.state.put_value(key, {"patient": payload["patient"], "date": payload["date"], "provider": member["org"],
                              "by": member["id"], "height": ctx.block.height})
    ctx.emit("billing.encounter_anchored", provider=member["org"], encounter=payload["encounter"])


def _patient_deregister(ctx: TxContext, payload: dict[str, Any]) -> None:
    """The patient deregisters with their own key (from the block's date), or a payer records it
    (a death or the end of membership) with the date it took effect."""
    identity = require_identity(ctx)
    if identity["kind"] == "patient":
        if payload:
            raise Rejected("bad_payload", "a patient deregisters themselves with an empty payload "
                                          "(patient, date and reason are for a payer's record)")
        patient, date, by, reason = identity["identity"], _today(ctx), "the patient", "deregistered by the patient"
    else:
        member = require_role(ctx, PAYER_ROLE, org_kinds=PAYER_KINDS)
        missing = [name for name in ("patient", "date", "reason") if name not in payload]
        if missing:
            raise Rejected("bad_payload", f"payload: missing field {missing[0]!r} (a payer records "
                                          "patient, date and reason)")
        patient, date, by, reason = payload["patient"], payload["date"], member["id"], payload["reason"]
        _not_in_future(ctx, date, "the deregistration date")
    key = _k("deregistered", patient)
    if ctx.state.get(key) is not None:
        raise Rejected("already_deregistered", f"patient {patient} is already deregistered")
    ctx.state.put_value(key, {"patient": patient, "date": date, "by": by, "reason": reason,
                              "height": ctx.block.height})
    ctx.emit("billing.patient_deregistered", patient=patient, date=date)


# --- claims -----------------------------------------------------------------------------------------------------


class _Flags:
    """Flags for one claim: on the receipt (via ``ctx.flag``) and kept for the claim record."""

    __slots__ = ("ctx", "found")

    def __init__(self, ctx: TxContext) -> None:
        self.ctx = ctx
        self.found: list[list[Any]] = []  # [name, details]: as the claim record stores a flag (_pack_claim)

    def add(self, name: str, **details: Any) -> None:
        self.ctx.flag(name, **details)
        self.found.append([name, details])


def _check_encounter(ctx: TxContext, payload: dict[str, Any], provider: str, flags: _Flags) -> None:
    reference = payload.get("encounter")
    if reference is None:
        flags.add("no_anchored_encounter", reason="the claim names no encounter")
        return
    encounter = ctx.state.get_value(_k("encounter", provider, reference.hex()))
    if encounter is None:
        flags.add("no_anchored_encounter", reason=f"{provider} anchored no encounter with this reference")
    elif encounter["patient"] != payload["patient"]:
        flags.add("no_anchored_encounter", reason="the encounter was anchored for another patient")


def _check_schedule(ctx: TxContext, payer: str, currency: str, items: list[dict[str, Any]],
                    flags: _Flags) -> tuple[int, dict[str, dict[str, Any] | None], dict[str, list[str]]]:
    """Above-schedule items; returns the total excess, the version in force per date of service,
    and the bundling rules of each code (read with its maximum)."""
    versions = ctx.state.peek_value(_k("schedule", payer)) or []
    in_force: dict[str, dict[str, Any] | None] = {}
    rules_of: dict[str, list[str]] = {}
    excess_total = 0
    vkeys: dict[int, str] = {}
    for item in items:
        date = item["date_of_service"]
        if date not in in_force:
            in_force[date] = _version_in_effect(versions, date)
        version = in_force[date]
        if version is None:
            flags.add("no_fee_schedule", payer=payer, date_of_service=date)
            continue
        number = version["version"]
        vkey = vkeys.get(number)
        if vkey is None:
            vkey = vkeys[number] = _version_key(number)
        maximum, rules_of[item["code"]] = _fee(ctx.state, payer, vkey, item["code"])
        if version["currency"] != currency:
            flags.add("currency_mismatch", claim_currency=currency, schedule_currency=version["currency"])
        elif maximum is None:
            flags.add("code_not_in_schedule", sequence=item["sequence"], code=item["code"],
                      schedule_version=version["version"])
        elif item["unit_price"] > maximum:
            excess = (item["unit_price"] - maximum) * item["quantity"]
            excess_total += excess
            flags.add("above_schedule", code=item["code"], excess=excess, sequence=item["sequence"],
                      unit_price=item["unit_price"], max_allowed=maximum)
    return excess_total, in_force, rules_of


def _check_day(ctx: TxContext, claim_id: str, payer: str, patient: str, provider: str,
               items: list[dict[str, Any]], in_force: dict[str, dict[str, Any] | None],
               rules_of: dict[str, list[str]], flags: _Flags) -> None:
    """Duplicates and unbundling, from one index key per (patient, provider, date of service).

    The key holds the codes billed that day with the claim that billed each first, so the
    duplicate check is one read and one write per date of service: it costs the same with
    ten claims in state or a million (its size is bounded by one day's codes, not by claims).
    """
    by_date: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_date.setdefault(item["date_of_service"], []).append(item)
    for date in sorted(by_date):
        day_key = _k("day", patient, provider, date)
        earlier = ctx.state.get_value(day_key) or []
        first_claim = dict(zip(earlier[0::2], earlier[1::2]))
        for item in by_date[date]:
            first = first_claim.get(item["code"])
            if first is None:
                first_claim[item["code"]] = claim_id
            else:
                flags.add("duplicate_claim", code=item["code"], sequence=item["sequence"], first_claim=first,
                          date_of_service=date)
        ctx.state.put_value(day_key, [v for pair in sorted(first_claim.items()) for v in pair])
        version = in_force.get(date)
        if version is None or len(first_claim) < 2:
            continue
        rules: dict[str, list[str]] | None = None
        reported: set[str] = set()
        # Only codes in some bundling rule (most codes are in none): each rule of theirs, in code order.
        for code in sorted({item["code"] for item in by_date[date] if rules_of.get(item["code"])}):
            for name in rules_of[code]:
                if rules is None:
                    rules = ctx.state.peek_value(_k("rules", payer, _version_key(version["version"]))) or {}
                together = sorted(set(first_claim).intersection(rules.get(name, ())))
                if len(together) >= 2 and name not in reported:
                    reported.add(name)
                    flags.add("unbundled_codes", rule=name, codes=together, date_of_service=date,
                              schedule_version=version["version"])


_SEQUENCE: Final = itemgetter("sequence")


def _require_payer(ctx: TxContext, payer: str) -> None:
    """A claim is addressed to an active insurer: one nobody could adjudicate would sit unanswered."""
    org = active_org(ctx.state, payer, ctx.block.height)
    if org is None:
        raise Rejected("unknown_payer", f"payer {payer!r} is not a registered, active organisation")
    if org["kind"] not in PAYER_KINDS:
        raise Rejected("unknown_payer", f"payer {payer!r} is a {org['kind']}, not an "
                                        f"{' or '.join(PAYER_KINDS)}")


def _claim_submit(ctx: TxContext, payload: dict[str, Any]) -> None:
    member = require_role(ctx, PROVIDER_ROLE, org_kinds=PROVIDER_KINDS)
    provider, payer, patient, currency = member["org"], payload["payer"], payload["patient"], payload["currency"]
    _require_payer(ctx, payer)
    items = payload["items"]
    sequences = [item["sequence"] for item in items]
    if len(set(sequences)) != len(sequences):
        raise Rejected("bad_payload", "payload.items: each item needs its own sequence number")
    today = _today(ctx)
    for item in items:
        if item["date_of_service"] > today:
            raise Rejected("date_in_future", f"item {item['sequence']}: date of service "
                                             f"{item['date_of_service']} is after the block's date {today}")
    claim_id = ctx.tx.hash[:16].hex()
    flags = _Flags(ctx)
    excess, in_force, rules_of = _check_schedule(ctx, payer, currency, items, flags)
    _check_day(ctx, claim_id, payer, patient, provider, items, in_force, rules_of, flags)
    _check_encounter(ctx, payload, provider, flags)
    deregistered = ctx.state.get_value(_k("deregistered", patient))
    if deregistered is not None:
        after = sorted({i["date_of_service"] for i in items if i["date_of_service"] > deregistered["date"]})
        if after:
            flags.add("billed_after_deregistration", deregistered=deregistered["date"], dates_of_service=after)
    # The record is built packed (CLAIM_LAYOUT, ITEM_LAYOUT: what _pack_claim makes of a claim), not as
    # a claim to be packed: every claim in the chain passes here once.
    lines = [[item["sequence"], item["code"], item["quantity"], item["unit_price"], item["date_of_service"],
              item["quantity"] * item["unit_price"]] for item in sorted(items, key=_SEQUENCE)]
    total = sum(line[5] for line in lines)
    height = ctx.block.height
    ctx.state.put_value(_k("claim", claim_id), [
        claim_id, "submitted", provider, member["id"], payer, patient, payload.get("encounter"), currency,
        payload["diagnoses"], lines, total, None, 0, excess, flags.found, height, today, [],
        [{"by": member["id"], "action": "submitted", "height": height}], None])
    ctx.state.put(_k("patient", patient, claim_id), b"")
    changes = {"claims": 1, "billed": total}
    if flags.found:
        changes.update(flagged_claims=1, flagged_billed=total, above_schedule_excess=excess)
        for name in ctx.flags:
            changes["flag:" + name] = 1
    _bump_totals(ctx.state, {"provider": provider, "payer": payer, "currency": currency}, changes)
    ctx.emit("billing.claim_submitted", claim=claim_id, flags=sorted(ctx.flags), total=total, currency=currency)


# --- adjudication, payment, disputes ----------------------------------------------------------------------------


def _payer_of(ctx: TxContext, claim: dict[str, Any]) -> dict[str, Any]:
    member = require_role(ctx, PAYER_ROLE, org_kinds=PAYER_KINDS)
    if member["org"] != claim["payer"]:
        raise Rejected("missing_role", f"needs role {PAYER_ROLE!r} in organisation {claim['payer']!r}, "
                                       f"the claim's payer; member {member['id']} belongs to {member['org']!r}")
    return member


def _adjudicate(ctx: TxContext, payload: dict[str, Any]) -> None:
    claim = _load_claim(ctx.state, payload["claim"])
    member = _payer_of(ctx, claim)
    if claim["status"] != "submitted":
        raise Rejected("bad_status", f"claim {claim['id']} is {claim['status']}; only a submitted claim "
                                     "is adjudicated")
    decision, reasons = payload["decision"], payload.get("reason_codes", [])
    if decision == "approve":
        allowed = payload.get("allowed_amount", claim["total"])
        if allowed != claim["total"]:
            raise Rejected("bad_amount", f"approve allows the billed total {claim['total']}; use partial "
                                         f"for {allowed}")
        status = "approved"
    elif decision == "partial":
        if "allowed_amount" not in payload:
            raise Rejected("bad_payload", "payload: a partial decision needs allowed_amount")
        allowed = payload["allowed_amount"]
        if not 0 < allowed < claim["total"]:
            raise Rejected("bad_amount", f"a partial allowance is between 1 and {claim['total'] - 1}, "
                                         f"got {allowed}")
        status = "partial"
    else:
        if payload.get("allowed_amount", 0) != 0:
            raise Rejected("bad_amount", "a denial allows nothing; leave allowed_amount out")
        allowed, status = 0, "denied"
    if status != "approved" and not reasons:
        raise Rejected("bad_payload", f"payload.reason_codes: a {decision} decision needs at least one reason code")
    claim.update(status=status, allowed=allowed, reason_codes=reasons)
    claim["history"].append({"action": status, "by": member["id"], "height": ctx.block.height,
                             "allowed": allowed, "reason_codes": reasons})
    _save_claim(ctx.state, claim)
    _bump_totals(ctx.state, claim, {"allowed": allowed, f"{status}_claims": 1})
    ctx.emit("billing.claim_adjudicated", claim=claim["id"], status=status, allowed=allowed)


def _pay(ctx: TxContext, payload: dict[str, Any]) -> None:
    claim = _load_claim(ctx.state, payload["claim"])
    member = _payer_of(ctx, claim)
    if claim["status"] not in ("approved", "partial"):
        raise Rejected("bad_status", f"claim {claim['id']} is {claim['status']}; only an approved or partly "
                                     "approved claim is paid")
    amount = payload["amount"]
    owed = claim["allowed"] - claim["paid"]
    if not 0 < amount <= owed:
        raise Rejected("bad_amount", f"payment of {amount} exceeds what is owed ({owed}) or is zero")
    claim["paid"] += amount
    if claim["paid"] == claim["allowed"]:
        claim["status"] = "paid"
    claim["history"].append({"action": "paid", "by": member["id"], "height": ctx.block.height, "amount": amount,
                             "reference": payload.get("reference")})
    _save_claim(ctx.state, claim)
    _bump_totals(ctx.state, claim, {"paid": amount})
    ctx.emit("billing.claim_paid", claim=claim["id"], amount=amount, owed=claim["allowed"] - claim["paid"])


def _dispute(ctx: TxContext, payload: dict[str, Any]) -> None:
    claim = _load_claim(ctx.state, payload["claim"])
    identity = require_identity(ctx)
    if identity["kind"] != "patient" or identity["identity"] != claim["patient"]:
        raise Rejected("missing_role", "only the patient named on the claim disputes it, with their own key")
    if claim["disputes"] and claim["disputes"][-1]["status"] == "open":
        raise Rejected("dispute_open", f"claim {claim['id']} already has an open dispute")
    if claim["status"] == "withdrawn":
        raise Rejected("bad_status", f"claim {claim['id']} was withdrawn")
    claim["disputes"].append({"status": "open", "reason": payload["reason"], "height": ctx.block.height,
                              "date": _today(ctx)})
    claim["history"].append({"action": "disputed", "by": claim["patient"], "height": ctx.block.height})
    _save_claim(ctx.state, claim)
    _bump_totals(ctx.state, claim, {"disputes": 1})
    ctx.emit("billing.claim_disputed", claim=claim["id"])


def _resolver(ctx: TxContext, claim: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The provider's billing clerk or the payer's claims adjuster; otherwise say who may resolve."""
    try:
        member = require_role(ctx, PROVIDER_ROLE, org=claim["provider"])
        return "provider", member
    except Rejected:
        pass
    try:
        return "payer", _payer_of(ctx, claim)
    except Rejected:
        raise Rejected("missing_role", f"needs role {PROVIDER_ROLE!r} in {claim['provider']!r} (the provider) "
                                       f"or {PAYER_ROLE!r} in {claim['payer']!r} (the payer)") from None


def _resolve(ctx: TxContext, payload: dict[str, Any]) -> None:
    claim = _load_claim(ctx.state, payload["claim"])
    side, member = _resolver(ctx, claim)
    if not claim["disputes"] or claim["disputes"][-1]["status"] != "open":
        raise Rejected("no_open_dispute", f"claim {claim['id']} has no open dispute")
    outcome = payload["outcome"]
    if outcome == "adjusted":
        if side != "payer" or "allowed_amount" not in payload:
            raise Rejected("bad_payload", "an adjusted resolution is the payer's, with allowed_amount")
        allowed = payload["allowed_amount"]
        if allowed > claim["total"] or allowed < claim["paid"]:
            raise Rejected("bad_amount", f"the adjusted allowance must be between what was paid "
                                         f"({claim['paid']}) and the billed total ({claim['total']})")
        _bump_totals(ctx.state, claim, {"allowed": allowed - (claim["allowed"] or 0)})
        claim["allowed"] = allowed
        if allowed == 0:
            claim["status"] = "denied"
        elif allowed == claim["paid"]:
            claim["status"] = "paid"
        else:
            claim["status"] = "approved" if allowed == claim["total"] else "partial"
    elif "allowed_amount" in payload:
        raise Rejected("bad_payload", "allowed_amount belongs only to an adjusted resolution")
    if outcome == "withdrawn":
        if side != "provider":
            raise Rejected("missing_role", f"only the provider ({claim['provider']}) withdraws its claim")
        claim["status"] = "withdrawn"
        _release_duplicate_keys(ctx.state, claim)
        _bump_totals(ctx.state, claim, {"withdrawn_claims": 1})
    dispute = claim["disputes"][-1]
    dispute.update(status="resolved", outcome=outcome, note=payload["note"], resolved_by=member["id"],
                   resolved_height=ctx.block.height)
    claim["history"].append({"action": f"dispute_{outcome}", "by": member["id"], "height": ctx.block.height})
    _save_claim(ctx.state, claim)
    ctx.emit("billing.dispute_resolved", claim=claim["id"], outcome=outcome, by=side)


def _release_duplicate_keys(state: Overlay, claim: dict[str, Any]) -> None:
    """A withdrawn claim no longer counts: its corrected successor is not a duplicate of it."""
    for date in sorted({item["date_of_service"] for item in claim["items"]}):
        day_key = _k("day", claim["patient"], claim["provider"], date)
        earlier = state.get_value(day_key) or []
        kept = [v for code, first in zip(earlier[0::2], earlier[1::2]) if first != claim["id"] for v in (code, first)]
        if kept:
            state.put_value(day_key, kept)
        else:
            state.delete(day_key)


# --- queries -------------------------------------------------------------------------------------------------


def _q_claim(state: StateReader, params: dict[str, Any], height: int) -> Any:
    return _load_claim(state, params["claim"])


def _q_patient_claims(state: StateReader, params: dict[str, Any], height: int) -> Any:
    patient, limit = params["patient"], params.get("limit", 100)
    prefix = _k("patient", patient) + b"/"
    after = params.get("after")
    claims = []
    for key, _ in state.scan(prefix):
        claim_id = key[len(prefix):].decode()
        if after is not None and claim_id <= after:
            continue
        claims.append(_load_claim(state, claim_id))
        if len(claims) >= limit:
            break
    deregistered = read_value(state, _k("deregistered", patient))
    return {"patient": patient, "claims": claims, "deregistered": deregistered,
            "more": len(claims) >= limit}


def _q_schedule(state: StateReader, params: dict[str, Any], height: int) -> Any:
    payer = params["payer"]
    versions = read_value(state, _k("schedule", payer)) or []
    if not versions:
        raise Rejected("not_found", f"{payer} has published no fee schedule")
    out: dict[str, Any] = {"payer": payer, "versions": versions}
    if "date" in params:
        version = _version_in_effect(versions, params["date"])
        out["in_force"] = None if version is None else version["version"]
    if "code" in params and "date" in params and out["in_force"] is not None:
        vkey = _version_key(out["in_force"])
        out["code"] = params["code"]
        out["max_amount"] = read_value(state, _k("fee", payer, vkey, params["code"]))
        out["bundling_rules"] = read_value(state, _k("bundle", payer, vkey, params["code"])) or []
    return out


def _q_encounter(state: StateReader, params: dict[str, Any], height: int) -> Any:
    found = read_value(state, _k("encounter", params["provider"], params["encounter"].hex()))
    if found is None:
        raise Rejected("not_found", f"{params['provider']} anchored no such encounter")
    return found


def _q_report(state: StateReader, params: dict[str, Any], height: int) -> Any:
    """Per provider and per payer totals (from running totals: cost grows with organisations, not claims)."""
    sides: dict[str, list[dict[str, Any]]] = {"provider": [], "payer": []}
    flag_counts: dict[str, int] = {}
    for side in sides:
        prefix = _k("totals", side) + b"/"
        for key, raw in state.scan(prefix):
            org, currency = key[len(prefix):].decode().split("/")
            counters = cbor2.loads(raw)
            totals = {"org": org, "currency": currency, **{name: counters.get(name, 0) for name in TOTALS_FIELDS},
                      "flags": {name[5:]: n for name, n in counters.items() if name.startswith("flag:")}}
            sides[side].append(totals)
            if side == "provider":
                for name, count in totals["flags"].items():
                    flag_counts[name] = flag_counts.get(name, 0) + count
    top = sorted(flag_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FLAGS]
    return {"height": height, "providers": sides["provider"], "payers": sides["payer"],
            "top_flags": [{"flag": name, "claims": count} for name, count in top]}


def _q_deregistration(state: StateReader, params: dict[str, Any], height: int) -> Any:
    found = read_value(state, _k("deregistered", params["patient"]))
    return {"patient": params["patient"], "deregistered": found}


APP = App(
    name="billing",
    tx_types=(
        TxType("billing.schedule_publish",
               Record({"version": Int(min=1, max=1_000_000), "effective_from": DATE, "currency": CURRENCY,
                       "entries": Optional(ListOf(SCHEDULE_ENTRY, max_items=MAX_SCHEDULE_ENTRIES)),
                       "bundling_rules": Optional(ListOf(BUNDLING_RULE, max_items=200))}),
               _schedule_publish,
               "An insurer's fee_schedule_manager publishes the next version of its fee schedule."),
        TxType("billing.schedule_entries",
               Record({"version": Int(min=1, max=1_000_000),
                       "entries": ListOf(SCHEDULE_ENTRY, min_items=1, max_items=MAX_SCHEDULE_ENTRIES)}),
               _schedule_entries, "More codes for a published version (each code's maximum is written once)."),
        TxType("billing.encounter_anchor",
               Record({"patient": PATIENT_ID, "encounter": Bytes(size=32), "date": DATE}),
               _encounter_anchor, "A provider's billing_clerk or clinician anchors an encounter (a hash; no PHI)."),
        TxType("billing.claim_submit",
               Record({"patient": PATIENT_ID, "payer": ORG_ID, "encounter": Optional(Bytes(size=32)),
                       "currency": CURRENCY,
                       "diagnoses": ListOf(DIAGNOSIS_CODE, min_items=1, max_items=12, unique=True),
                       "items": ListOf(CLAIM_ITEM, min_items=1, max_items=MAX_ITEMS)}),
               _claim_submit, "A provider's billing_clerk submits a claim (FHIR Claim shape); flags computed."),
        TxType("billing.claim_adjudicate",
               Record({"claim": CLAIM_ID, "decision": Text(choices=("approve", "partial", "deny")),
                       "allowed_amount": Optional(Money()),
                       "reason_codes": Optional(ListOf(REASON_CODE, max_items=10, unique=True))}),
               _adjudicate, "The payer's claims_adjuster approves, partly approves or denies a submitted claim."),
        TxType("billing.claim_pay",
               Record({"claim": CLAIM_ID, "amount": Money(), "reference": Optional(Text(max_len=64))}),
               _pay, "The payer's claims_adjuster records a payment (never more than allowed)."),
        TxType("billing.claim_dispute", Record({"claim": CLAIM_ID, "reason": NOTE}), _dispute,
               "The patient named on the claim disputes it, with their own key."),
        TxType("billing.dispute_resolve",
               Record({"claim": CLAIM_ID, "outcome": Text(choices=("upheld", "adjusted", "withdrawn")),
                       "note": NOTE, "allowed_amount": Optional(Money())}),
               _resolve, "The provider (upheld, withdrawn) or the payer (upheld, adjusted) resolves a dispute."),
        TxType("billing.patient_deregister",
               Record({"patient": Optional(PATIENT_ID), "date": Optional(DATE), "reason": Optional(NOTE)}),
               _patient_deregister,
               "A patient deregisters (own key, empty payload) or a payer records it (patient, date, reason)."),
    ),
    queries=(
        Query("billing.claim", Record({"claim": CLAIM_ID}), _q_claim, "One claim with its flags and history."),
        Query("billing.patient_claims",
              Record({"patient": PATIENT_ID, "limit": Optional(Int(min=1, max=1000)), "after": Optional(CLAIM_ID)}),
              _q_patient_claims, "Every claim billed in a patient's name (pages of up to 1000, by claim id)."),
        Query("billing.schedule",
              Record({"payer": ORG_ID, "date": Optional(DATE), "code": Optional(PROCEDURE_CODE)}),
              _q_schedule, "A payer's fee schedule versions; with date (and code) the one in force (and the maximum)."),
        Query("billing.encounter", Record({"provider": ORG_ID, "encounter": Bytes(size=32)}), _q_encounter,
              "An anchored encounter."),
        Query("billing.report", Record({}), _q_report,
              "Totals per provider and per payer (billed, flagged, allowed, paid) and the most frequent flags."),
        Query("billing.deregistration", Record({"patient": PATIENT_ID}), _q_deregistration,
              "Whether and since when a patient is deregistered."),
    ),
)
