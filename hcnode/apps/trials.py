"""Clinical trials app: registration, amendments, consent, withdrawal, data commitments, results.

Owns: a trial's conduct on chain and the flags that make outcome switching and
unreported results visible, with results due dates as FDAAA 801 trackers
compute them. Must not know registry state (it asks ``registry.require_role`` /
``require_identity``), any other app, the wall clock or any I/O. No PHI: a
participant is the pseudonymous patient id the registry derives from a key.

Who may do what (registry roles):
    trial_sponsor   member of a sponsor, research or hospital organisation: registers a trial;
                    in the trial's sponsor organisation: amends it, certifies a delay, posts results
    investigator    member of one of the trial's sites (or of the sponsor): records consent,
                    commits dataset hashes
    the participant their own registered key: withdraws; everyone can read a trial's status,
                    amendments and results

Rules and flags (flags never block; they are on the receipt and in queries):
  * a trial is registered before anyone is enrolled (enrolment names a registered trial);
    ``registered_after_primary_completion`` when the primary completion date has already passed;
  * amendments are versioned with a reason; changing a pre-specified outcome after the first
    enrolment is flagged ``outcome_switch`` with the old and new outcomes;
  * results are posted against the outcomes: ``unreported_outcome`` for a pre-specified outcome
    left out, ``outcome_added_silently`` / ``outcome_added_declared`` (with the declared reason
    and date) for one that was not pre-specified, ``results_late`` after the due date;
  * due date (FDAAA 801, 42 CFR 11.44): primary completion + 1 year + 30 days; a certificate of
    delay, filed before that, postpones it to the requested date but never beyond primary
    completion + 3 years + 30 days (``delay_capped``); a month-only primary completion date
    counts as the month's last day (``month_only_date``).

Time. Handlers use the block's date only. Queries get a height, not a time, so
the app keeps the time of the last block that carried a trials transaction
(``trials/clock``) and queries judge "overdue" as of that date, or as of an
``as_of`` date the caller gives (``hcwallet trials report`` passes the head
block's date). Either way the answer is a function of chain state and
parameters, identical on every node.

State keys (values canonical CBOR):
    trials/clock                             block time (ms) of the last trials transaction
    trials/trial/<registry id>               the trial, its current outcomes, switches, results
    trials/amendment/<registry id>/<v:04>    {version, reason, changes, previous, height, date, by}
    trials/participant/<registry id>/<pid>   {participant, consent_version, status, ...}
    trials/dataset/<registry id>/<n:06>      {seq, hash, label, height, date, by}
    trials/dataset_hash/<registry id>/<hex>  sequence number of the commitment with that hash
"""

from __future__ import annotations

import datetime
from typing import Any

import cbor2

from hcnode.apps.dates import CalendarDate, add_years, block_day, parse_date, resolve_month
from hcnode.apps.registry import ORG_ID, require_identity, require_role
from hcnode.chain.app import App, Query, TxContext, TxType
from hcnode.chain.errors import Rejected
from hcnode.chain.schema import Bytes, Int, ListOf, Optional, Record, Text
from hcnode.chain.state import StateReader, read_value

__all__ = ["APP", "SPONSOR_KINDS", "due_dates", "trial_status"]

SPONSOR_KINDS = ("sponsor", "research", "hospital")
SPONSOR_ROLE = "trial_sponsor"
INVESTIGATOR_ROLE = "investigator"
GRACE = datetime.timedelta(days=30)

TRIAL_ID = Text(min_len=3, max_len=40, pattern=r"[A-Za-z0-9][A-Za-z0-9-]*")
PATIENT_ID = Text(min_len=27, max_len=27, pattern=r"pt-[0-9a-f]{24}")
HASH = Bytes(size=32)
OUTCOME = Record({"measure": Text(max_len=500), "time_frame": Text(max_len=200)})
DATE = CalendarDate()
MONTH_OR_DATE = CalendarDate(allow_month=True)
REASON = Text(max_len=1000)
CHANGES = Record({
    "title": Optional(Text(max_len=300)),
    "protocol_hash": Optional(HASH),
    "primary_outcomes": Optional(ListOf(OUTCOME, min_items=1, max_items=20)),
    "secondary_outcomes": Optional(ListOf(OUTCOME, max_items=50)),
    "planned_enrolment": Optional(Int(min=1, max=10_000_000)),
    "primary_completion": Optional(MONTH_OR_DATE),
    "sites": Optional(ListOf(ORG_ID, min_items=1, max_items=100, unique=True)),
})
RESULT = Record({
    "measure": Text(max_len=500),
    "time_frame": Text(max_len=200),
    "summary": Text(max_len=2000),
    "added_reason": Optional(Text(max_len=1000)),
    "added_date": Optional(DATE),
})


def _k(*parts: str) -> bytes:
    return ("trials/" + "/".join(parts)).encode()


# --- dates -------------------------------------------------------------------------------------------


def due_dates(trial: dict[str, Any]) -> dict[str, str]:
    """The FDAAA 801 results due date: standard, latest possible, and the one in force."""
    completion, _ = resolve_month(trial["primary_completion"])
    standard = add_years(completion, 1) + GRACE
    latest = add_years(completion, 3) + GRACE
    due = standard
    delay = trial.get("delay")
    if delay is not None:
        due = min(parse_date(delay["requested_due"]), latest)
    return {"standard": standard.isoformat(), "latest": latest.isoformat(), "due": due.isoformat()}


def trial_status(trial: dict[str, Any], as_of: str) -> dict[str, Any]:
    """Where a trial stands on ``as_of`` (YYYY-MM-DD): a status and the labels a reader needs."""
    dates = due_dates(trial)
    completion = resolve_month(trial["primary_completion"])[0].isoformat()
    results = trial["results"]
    if results:
        status = "results_posted"
    elif as_of > dates["due"]:
        status = "overdue"
    elif as_of > completion:
        status = "completed"
    elif trial["enrolled"] > 0:
        status = "recruiting"
    else:
        status = "registered"
    labels = [status]
    if trial["outcome_switches"]:
        labels.append("outcome_switched")
    if results and results[0]["late"]:
        labels.append("results_late")
    if trial["month_only"]:
        labels.append("month_only_date")
    return {"status": status, "labels": labels, "as_of": as_of, "primary_completion_date": completion,
            **{f"due_{name}" if name != "due" else "due": value for name, value in dates.items()}}


def _today(ctx: TxContext) -> str:
    return block_day(ctx.block.time_ms)


# --- permissions and loading ------------------------------------------------------------------------------


def _load(ctx: TxContext, trial_id: str) -> dict[str, Any]:
    ctx.state.put_value(_k("clock"), ctx.block.time_ms)
    trial = ctx.state.get_value(_k("trial", trial_id))
    if trial is None:
        raise Rejected("unknown_trial", f"no trial {trial_id!r} is registered")
    return trial  # type: ignore[no-any-return]


def _save(ctx: TxContext, trial: dict[str, Any]) -> None:
    ctx.state.put_value(_k("trial", trial["id"]), trial)


def _sponsor(ctx: TxContext, trial: dict[str, Any]) -> dict[str, Any]:
    return require_role(ctx, SPONSOR_ROLE, org=trial["sponsor"])


def _investigator(ctx: TxContext, trial: dict[str, Any]) -> dict[str, Any]:
    member = require_role(ctx, INVESTIGATOR_ROLE)
    allowed = [trial["sponsor"], *trial["sites"]]
    if member["org"] not in allowed:
        raise Rejected("missing_role", f"needs role {INVESTIGATOR_ROLE!r} at one of the trial's sites "
                                       f"({', '.join(allowed)}); member {member['id']} belongs to {member['org']!r}")
    return member


# --- registration and amendments --------------------------------------------------------------------------


def _register(ctx: TxContext, payload: dict[str, Any]) -> None:
    member = require_role(ctx, SPONSOR_ROLE, org_kinds=SPONSOR_KINDS)
    ctx.state.put_value(_k("clock"), ctx.block.time_ms)
    trial_id = payload["registry_id"]
    if ctx.state.get(_k("trial", trial_id)) is not None:
        raise Rejected("trial_exists", f"trial {trial_id!r} is already registered")
    completion, month_only = resolve_month(payload["primary_completion"])
    today = _today(ctx)
    trial = {
        "id": trial_id, "title": payload["title"], "sponsor": member["org"], "registered_by": member["id"],
        "protocol_hash": payload["protocol_hash"], "primary_outcomes": payload["primary_outcomes"],
        "secondary_outcomes": payload.get("secondary_outcomes", []),
        "planned_enrolment": payload["planned_enrolment"], "primary_completion": payload["primary_completion"],
        "month_only": month_only, "sites": payload.get("sites", []), "version": 1,
        "registered": {"height": ctx.block.height, "date": today}, "first_enrolment": None,
        "enrolled": 0, "withdrawn": 0, "outcome_switches": [], "delay": None, "results": [], "datasets": 0,
        "flags": [],
    }
    if month_only:
        ctx.flag("month_only_date", primary_completion=payload["primary_completion"],
                 counted_as=completion.isoformat())
        trial["flags"].append({"flag": "month_only_date", "counted_as": completion.isoformat()})
    if completion.isoformat() < today:
        ctx.flag("registered_after_primary_completion", primary_completion=completion.isoformat(),
                 registered=today)
        trial["flags"].append({"flag": "registered_after_primary_completion", "registered": today})
    _save(ctx, trial)
    ctx.emit("trials.registered", trial=trial_id, sponsor=member["org"], due=due_dates(trial)["due"])


def _outcome_text(outcomes: list[dict[str, Any]]) -> list[str]:
    return [f"{o['measure']} [{o['time_frame']}]" for o in outcomes]


def _amend(ctx: TxContext, payload: dict[str, Any]) -> None:
    trial = _load(ctx, payload["trial"])
    member = _sponsor(ctx, trial)
    changes = payload["changes"]
    if not changes:
        raise Rejected("bad_payload", "payload.changes: an amendment changes at least one field")
    today = _today(ctx)
    if "primary_completion" in changes and today > due_dates(trial)["due"]:
        raise Rejected("too_late", f"the results were due on {due_dates(trial)['due']}; the primary completion "
                                   "date can no longer be moved")
    previous = {name: trial[name] for name in changes}
    version = trial["version"] + 1
    for kind in ("primary_outcomes", "secondary_outcomes"):
        if kind in changes and changes[kind] != trial[kind] and trial["first_enrolment"] is not None:
            switch = {"version": version, "outcomes": kind.split("_")[0], "old": _outcome_text(trial[kind]),
                      "new": _outcome_text(changes[kind]), "reason": payload["reason"], "date": today,
                      "height": ctx.block.height}
            trial["outcome_switches"].append(switch)
            ctx.flag("outcome_switch", outcomes=switch["outcomes"], old=switch["old"], new=switch["new"],
                     version=version, first_enrolment=trial["first_enrolment"]["date"])
    trial.update(changes)
    if "primary_completion" in changes:
        trial["month_only"] = resolve_month(changes["primary_completion"])[1]
        if trial["month_only"]:
            ctx.flag("month_only_date", primary_completion=changes["primary_completion"])
    trial["version"] = version
    ctx.state.put_value(_k("amendment", trial["id"], f"{version:04d}"), {
        "version": version, "reason": payload["reason"], "changes": changes, "previous": previous,
        "height": ctx.block.height, "date": today, "by": member["id"]})
    _save(ctx, trial)
    ctx.emit("trials.amended", trial=trial["id"], version=version, fields=sorted(changes))


def _certify_delay(ctx: TxContext, payload: dict[str, Any]) -> None:
    trial = _load(ctx, payload["trial"])
    member = _sponsor(ctx, trial)
    today = _today(ctx)
    dates = due_dates(trial)
    if trial["delay"] is not None:
        raise Rejected("delay_exists", f"trial {trial['id']} already has a certificate of delay")
    if trial["results"]:
        raise Rejected("results_posted", "results are posted; there is nothing to delay")
    if today > dates["due"]:
        raise Rejected("too_late", f"a certificate of delay is filed before the results are due ({dates['due']}), "
                                   f"not on {today}")
    if payload["requested_due"] <= dates["standard"]:
        raise Rejected("dates_out_of_order", f"the requested due date {payload['requested_due']} must be after "
                                             f"the standard due date {dates['standard']}")
    trial["delay"] = {"requested_due": payload["requested_due"], "reason": payload["reason"], "date": today,
                      "height": ctx.block.height, "by": member["id"]}
    if payload["requested_due"] > dates["latest"]:
        ctx.flag("delay_capped", requested_due=payload["requested_due"], due=dates["latest"])
    _save(ctx, trial)
    ctx.emit("trials.delay_certified", trial=trial["id"], due=due_dates(trial)["due"])


# --- participants and data ---------------------------------------------------------------------------------


def _enrol(ctx: TxContext, payload: dict[str, Any]) -> None:
    trial = _load(ctx, payload["trial"])
    member = _investigator(ctx, trial)
    if trial["results"]:
        raise Rejected("trial_closed", f"trial {trial['id']} has posted results; it enrols no one")
    key = _k("participant", trial["id"], payload["participant"])
    record = ctx.state.get_value(key)
    today = _today(ctx)
    if record is not None:
        if record["status"] == "withdrawn":
            raise Rejected("withdrawn", f"participant {payload['participant']} withdrew from {trial['id']}")
        if record["consent_version"] == payload["consent_version"]:
            raise Rejected("already_enrolled", f"participant {payload['participant']} is already enrolled "
                                               "with this consent version")
        record["consents"].append({"consent_version": payload["consent_version"], "date": today,
                                   "height": ctx.block.height, "by": member["id"]})
        record["consent_version"] = payload["consent_version"]
        ctx.state.put_value(key, record)
        _save(ctx, trial)
        ctx.emit("trials.reconsented", trial=trial["id"], participant=payload["participant"])
        return
    ctx.state.put_value(key, {
        "trial": trial["id"], "participant": payload["participant"], "status": "enrolled",
        "consent_version": payload["consent_version"], "site": member["org"], "enrolled": today,
        "height": ctx.block.height,
        "consents": [{"consent_version": payload["consent_version"], "date": today, "height": ctx.block.height,
                      "by": member["id"]}]})
    if trial["first_enrolment"] is None:
        trial["first_enrolment"] = {"date": today, "height": ctx.block.height}
    trial["enrolled"] += 1
    _save(ctx, trial)
    ctx.emit("trials.enrolled", trial=trial["id"], participant=payload["participant"])


def _withdraw(ctx: TxContext, payload: dict[str, Any]) -> None:
    trial = _load(ctx, payload["trial"])
    identity = require_identity(ctx)
    if identity["kind"] != "patient":
        raise Rejected("missing_role", "a participant withdraws with their own patient key")
    key = _k("participant", trial["id"], identity["identity"])
    record = ctx.state.get_value(key)
    if record is None:
        raise Rejected("not_enrolled", f"{identity['identity']} is not enrolled in {trial['id']}")
    if record["status"] == "withdrawn":
        raise Rejected("withdrawn", f"{identity['identity']} has already withdrawn from {trial['id']}")
    record.update(status="withdrawn", withdrawn=_today(ctx), withdrawn_height=ctx.block.height)
    ctx.state.put_value(key, record)
    trial["withdrawn"] += 1
    _save(ctx, trial)
    ctx.emit("trials.withdrawn", trial=trial["id"], participant=identity["identity"])


def _commit_dataset(ctx: TxContext, payload: dict[str, Any]) -> None:
    trial = _load(ctx, payload["trial"])
    member = _investigator(ctx, trial)
    hash_key = _k("dataset_hash", trial["id"], payload["dataset_hash"].hex())
    if ctx.state.get(hash_key) is not None:
        raise Rejected("already_committed", "this dataset hash is already committed for the trial")
    trial["datasets"] += 1
    seq = trial["datasets"]
    ctx.state.put_value(_k("dataset", trial["id"], f"{seq:06d}"), {
        "seq": seq, "hash": payload["dataset_hash"], "label": payload["label"], "date": _today(ctx),
        "height": ctx.block.height, "by": member["id"]})
    ctx.state.put_value(hash_key, seq)
    _save(ctx, trial)
    ctx.emit("trials.dataset_committed", trial=trial["id"], seq=seq)


# --- results -------------------------------------------------------------------------------------------------


def _post_results(ctx: TxContext, payload: dict[str, Any]) -> None:
    trial = _load(ctx, payload["trial"])
    member = _sponsor(ctx, trial)
    today = _today(ctx)
    measures = [r["measure"] for r in payload["outcomes"]]
    if len(set(measures)) != len(measures):
        raise Rejected("bad_payload", "payload.outcomes: each measure is reported once")
    prespecified = {o["measure"]: kind for kind in ("primary", "secondary") for o in trial[f"{kind}_outcomes"]}
    flags: list[dict[str, Any]] = []

    def flag(name: str, **details: Any) -> None:
        ctx.flag(name, **details)
        flags.append({"flag": name, **details})

    for i, result in enumerate(payload["outcomes"]):
        declared = ("added_reason" in result, "added_date" in result)
        if any(declared) and not all(declared):
            raise Rejected("bad_payload", f"payload.outcomes[{i}]: an added outcome is declared with both "
                                          "added_reason and added_date")
        if result["measure"] in prespecified:
            if any(declared):
                raise Rejected("bad_payload", f"payload.outcomes[{i}]: {result['measure']!r} is pre-specified; "
                                              "added_reason and added_date are for outcomes that were not")
            continue
        if all(declared):
            if result["added_date"] > today:
                raise Rejected("date_in_future", f"payload.outcomes[{i}].added_date {result['added_date']} is "
                                                 f"after the block's date {today}")
            flag("outcome_added_declared", measure=result["measure"], reason=result["added_reason"],
                 declared=result["added_date"])
        else:
            flag("outcome_added_silently", measure=result["measure"])
    for measure, kind in prespecified.items():
        if measure not in measures:
            flag("unreported_outcome", measure=measure, outcomes=kind)
    due = due_dates(trial)["due"]
    late = not trial["results"] and today > due
    if late:
        days = (parse_date(today) - parse_date(due)).days
        flag("results_late", due=due, posted=today, days_late=days)
    trial["results"].append({
        "version": len(trial["results"]) + 1, "date": today, "height": ctx.block.height, "by": member["id"],
        "outcomes": payload["outcomes"], "results_hash": payload.get("results_hash"), "late": late,
        "flags": flags})
    _save(ctx, trial)
    ctx.emit("trials.results_posted", trial=trial["id"], version=len(trial["results"]), late=late)


# --- queries ----------------------------------------------------------------------------------------------------


def _as_of(state: StateReader, params: dict[str, Any]) -> str:
    if "as_of" in params:
        return params["as_of"]  # type: ignore[no-any-return]
    clock = read_value(state, _k("clock"))
    if clock is None:
        raise Rejected("not_found", "no trials transaction yet, so no block time to judge by; give as_of")
    return block_day(clock)


def _read_trial(state: StateReader, trial_id: str) -> dict[str, Any]:
    trial = read_value(state, _k("trial", trial_id))
    if trial is None:
        raise Rejected("unknown_trial", f"no trial {trial_id!r} is registered")
    return trial  # type: ignore[no-any-return]


def _q_trial(state: StateReader, params: dict[str, Any], height: int) -> Any:
    trial = _read_trial(state, params["trial"])
    amendments = [cbor2.loads(raw) for _, raw in state.scan(_k("amendment", trial["id"]) + b"/")]
    return {**trial, **trial_status(trial, _as_of(state, params)), "amendments": amendments}


def _q_participant(state: StateReader, params: dict[str, Any], height: int) -> Any:
    trial = _read_trial(state, params["trial"])
    record = read_value(state, _k("participant", trial["id"], params["participant"]))
    if record is None:
        raise Rejected("not_found", f"{params['participant']} is not enrolled in {trial['id']}")
    return record


def _q_datasets(state: StateReader, params: dict[str, Any], height: int) -> Any:
    trial = _read_trial(state, params["trial"])
    return [cbor2.loads(raw) for _, raw in state.scan(_k("dataset", trial["id"]) + b"/")]


def _q_verify_dataset(state: StateReader, params: dict[str, Any], height: int) -> Any:
    """Is this hash (of a file the caller hashed) one the investigators committed, and when?"""
    trial = _read_trial(state, params["trial"])
    seq = read_value(state, _k("dataset_hash", trial["id"], params["dataset_hash"].hex()))
    commitment = None if seq is None else read_value(state, _k("dataset", trial["id"], f"{seq:06d}"))
    return {"trial": trial["id"], "dataset_hash": params["dataset_hash"], "committed": commitment is not None,
            "commitment": commitment, "commitments": trial["datasets"]}


def _q_report(state: StateReader, params: dict[str, Any], height: int) -> Any:
    """Every trial's status on ``as_of``, the count of due trials unreported, and a sponsor league table.

    A trial is due once its due date has passed or its results are posted (an early report counts,
    on time). The league ranks sponsors by their share of due trials reported on time.

    Counts only (no fractions): shares are for the reader to compute, so no float enters a pure core.
    """
    as_of = _as_of(state, params)
    rows = []
    sponsors: dict[str, dict[str, Any]] = {}
    for _, raw in state.scan(_k("trial") + b"/"):
        trial = cbor2.loads(raw)
        status = trial_status(trial, as_of)
        results = trial["results"]
        is_due = as_of > status["due"] or bool(results)  # reported early counts as due and on time
        on_time = bool(results) and not results[0]["late"]
        rows.append({"trial": trial["id"], "title": trial["title"], "sponsor": trial["sponsor"],
                     "status": status["status"], "labels": status["labels"],
                     "primary_completion": trial["primary_completion"], "due": status["due"],
                     "results_posted": results[0]["date"] if results else None,
                     "enrolled": trial["enrolled"], "withdrawn": trial["withdrawn"],
                     "outcome_switches": len(trial["outcome_switches"]), "results_due": is_due})
        league = sponsors.setdefault(trial["sponsor"], {"sponsor": trial["sponsor"], "trials": 0, "due": 0,
                                                        "reported_on_time": 0, "reported_late": 0,
                                                        "unreported": 0, "outcome_switched": 0})
        league["trials"] += 1
        league["outcome_switched"] += bool(trial["outcome_switches"])
        if is_due:
            league["due"] += 1
            if not results:
                league["unreported"] += 1
            elif on_time:
                league["reported_on_time"] += 1
            else:
                league["reported_late"] += 1
    due = sum(1 for row in rows if row["results_due"])
    unreported = sum(1 for row in rows if row["results_due"] and row["results_posted"] is None)
    table = sorted(sponsors.values(), key=lambda s: (-(s["reported_on_time"] * 1000 // max(s["due"], 1)),
                                                      -s["due"], s["sponsor"]))
    return {"as_of": as_of, "height": height, "trials": rows, "due": due, "unreported": unreported,
            "sponsors": table}


APP = App(
    name="trials",
    tx_types=(
        TxType("trials.register",
               Record({"registry_id": TRIAL_ID, "title": Text(max_len=300), "protocol_hash": HASH,
                       "primary_outcomes": ListOf(OUTCOME, min_items=1, max_items=20),
                       "secondary_outcomes": Optional(ListOf(OUTCOME, max_items=50)),
                       "planned_enrolment": Int(min=1, max=10_000_000), "primary_completion": MONTH_OR_DATE,
                       "sites": Optional(ListOf(ORG_ID, max_items=100, unique=True))}),
               _register, "A sponsor registers a trial with its pre-specified outcomes, before any enrolment."),
        TxType("trials.amend", Record({"trial": TRIAL_ID, "reason": REASON, "changes": CHANGES}), _amend,
               "The sponsor amends the trial (a new version with a reason); outcome switches are flagged."),
        TxType("trials.certify_delay",
               Record({"trial": TRIAL_ID, "reason": REASON, "requested_due": DATE}), _certify_delay,
               "The sponsor certifies a delay of results before they are due (capped at completion + 3y + 30d)."),
        TxType("trials.enrol", Record({"trial": TRIAL_ID, "participant": PATIENT_ID, "consent_version": HASH}),
               _enrol, "A site investigator records a participant's consent (pseudonymous id, consent form hash)."),
        TxType("trials.withdraw", Record({"trial": TRIAL_ID}), _withdraw,
               "A participant withdraws, signing with their own key."),
        TxType("trials.commit_dataset",
               Record({"trial": TRIAL_ID, "dataset_hash": HASH, "label": Text(max_len=200)}), _commit_dataset,
               "An investigator commits the SHA-256 of a dataset snapshot."),
        TxType("trials.post_results",
               Record({"trial": TRIAL_ID, "outcomes": ListOf(RESULT, min_items=1, max_items=70),
                       "results_hash": Optional(HASH)}),
               _post_results, "The sponsor posts results against the outcomes; omissions, additions, lateness flagged."),
    ),
    queries=(
        Query("trials.trial", Record({"trial": TRIAL_ID, "as_of": Optional(DATE)}), _q_trial,
              "A trial's registration, status, due date, amendments, outcome switches and results."),
        Query("trials.participant", Record({"trial": TRIAL_ID, "participant": PATIENT_ID}), _q_participant,
              "A participant's enrolment, consents and withdrawal."),
        Query("trials.datasets", Record({"trial": TRIAL_ID}), _q_datasets, "A trial's dataset commitments."),
        Query("trials.verify_dataset", Record({"trial": TRIAL_ID, "dataset_hash": HASH}), _q_verify_dataset,
              "Whether a dataset's SHA-256 was committed for the trial, and when."),
        Query("trials.report", Record({"as_of": Optional(DATE)}), _q_report,
              "Every trial's status, the due trials left unreported, and a sponsor league table."),
    ),
)
