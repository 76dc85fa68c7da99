"""Registry app: organisations, members, keys, roles, validators and pseudonymous patients.

Owns: who may do what. Every other app asks this module whether a key holds a
role (``require_role``) and never reads registry state itself.
Must not know any other app's rules.

Governance. The consortium admins and their threshold M come from genesis.
Adding, suspending and reinstating organisations and validators takes a
proposal by one admin and approvals until M admins agree; a proposal not
approved within its expiry (in blocks) can no longer be approved.

Members. An organisation's admins (members holding the role "admin" in it)
add members (a name, a public key, roles), change their roles and revoke them.
A member rotates its own key (the transaction is signed by the old key and
carries a signature by the new one), keeping its identity, roles and history;
an admin can revoke a lost or stolen key and install a replacement.

Patients register themselves: a key and nothing else; their id is derived
from the key, so the chain holds no name and no PHI.

Revocations apply from the next block: a key, member or organisation revoked
at height h still acts at h and stops at h + 1 (``revoked_from``), so a block's
outcome never depends on the order of transactions inside it for revocations.

State keys (values canonical CBOR):
    registry/admins                 {keys, threshold}
    registry/org/<org>              {id, name, kind, since, revoked_from?}
    registry/member/<org>/<name>    {id, org, name, roles, key, keys: [history], since, revoked_from?}
    registry/key/<pubkey>           {identity, kind: member|patient|consortium_admin, since, revoked_from?, reason?}
    registry/patient/<id>           {id, key, since, keys: [history]}
    registry/proposal/<id>          {id, action, proposer, approvals, height, expires, status}
    registry/validator/<pubkey>     {key, since, revoked_from?}
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import cbor2

from hcnode import codec, crypto
from hcnode.chain.app import App, Query, TxContext, TxType
from hcnode.chain.errors import Rejected
from hcnode.chain.genesis import Genesis
from hcnode.chain.schema import Bytes, Int, ListOf, OneOf, Optional, Record, Text
from hcnode.chain.state import Overlay, StateReader, peek_value, read_value

__all__ = [
    "APP",
    "ORG_KINDS",
    "ROTATE_PURPOSE",
    "require_role",
    "require_consortium_admin",
    "require_identity",
    "is_validator",
    "identity_of",
    "member_org",
    "active_org",
    "patient_id",
    "rotation_proof",
]

ORG_KINDS: Final = (
    "manufacturer",
    "wholesaler",
    "pharmacy",
    "hospital",
    "clinic",
    "insurer",
    "sponsor",
    "lab",
    "research",
    "regulator",
    "device_maker",
    "other",
)
ROTATE_PURPOSE: Final = "key-rotate"
DEFAULT_EXPIRY_BLOCKS: Final = 10_000

ORG_ID = Text(max_len=48, pattern=r"[a-z0-9][a-z0-9-]*")
MEMBER_NAME = Text(max_len=48, pattern=r"[a-z0-9][a-z0-9._-]*")
MEMBER_ID = Text(max_len=97, pattern=r"[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9._-]*")
ROLE = Text(max_len=32, pattern=r"[a-z][a-z0-9_]*")
KEY = Bytes(size=33)
REASON = Text(max_len=200)
PROPOSAL_ID = Text(min_len=32, max_len=32, pattern=r"[0-9a-f]{32}")


def _k(*parts: str | bytes) -> bytes:
    out = b"registry"
    for part in parts:
        out += b"/" + (part.encode() if isinstance(part, str) else part)
    return out


def _active(record: dict[str, Any] | None, height: int) -> bool:
    if record is None:
        return False
    revoked_from = record.get("revoked_from")
    return revoked_from is None or height < revoked_from


def patient_id(key: bytes) -> str:
    """A patient's pseudonymous id: derived from the key, so it reveals nothing else."""
    return "pt-" + hashlib.sha256(b"hcnode-patient/1" + key).hexdigest()[:24]


def rotation_proof(new_key: crypto.PrivateKey, chain_id: str, old_key: bytes) -> bytes:
    """The new key's signature agreeing to take over ``old_key``'s identity."""
    return new_key.sign(chain_id, ROTATE_PURPOSE, codec.encode([old_key, new_key.public]))


# --- what other apps call ---------------------------------------------------------------


def identity_of(state: StateReader | Overlay, key: bytes, height: int) -> dict[str, Any] | None:
    """The key's active identity record (member or patient) at ``height``, or None.

    Read with ``peek_value``, like the member and organisation records below: every transaction
    reads its sender's, so within a block the record is decoded once and shared; callers only
    inspect what these functions return (``require_role``'s member record included).
    """
    key_record = peek_value(state, _k("key", key))
    if not _active(key_record, height):
        return None
    return key_record  # type: ignore[no-any-return]


def member_org(state: StateReader | Overlay, key: bytes, height: int) -> dict[str, Any] | None:
    """Who an active member key speaks for: ``{member, org, kind, roles}``, or None.

    None for patients, unknown or revoked keys and members of suspended
    organisations. For apps that must know the sender's organisation kind (a
    regulator or a manufacturer) and for queries that check a caller's proof.
    """
    key_record = identity_of(state, key, height)
    if key_record is None or key_record["kind"] != "member":
        return None
    member = peek_value(state, _k("member", key_record["identity"]))
    if not _active(member, height):
        return None
    org = peek_value(state, _k("org", member["org"]))
    if not _active(org, height):
        return None
    return {"member": member["id"], "org": org["id"], "kind": org["kind"], "roles": member["roles"]}


def active_org(state: StateReader | Overlay, org_id: str, height: int) -> dict[str, Any] | None:
    """``{id, name, kind}`` of an active organisation, or None (unknown or suspended)."""
    org = peek_value(state, _k("org", org_id))
    if not _active(org, height):
        return None
    return {"id": org["id"], "name": org["name"], "kind": org["kind"]}


def is_validator(state: StateReader | Overlay, key: bytes, height: int) -> bool:
    """Is ``key`` an active validator at ``height``? (For checking block proposers.)"""
    return _active(peek_value(state, _k("validator", key)), height)


def require_identity(ctx: TxContext) -> dict[str, Any]:
    record = identity_of(ctx.state, ctx.sender, ctx.block.height)
    if record is None:
        raise Rejected("unknown_sender", "the sender's key is not an active registered member or patient")
    return record


def require_role(
    ctx: TxContext,
    role: str | tuple[str, ...],
    *,
    org: str | None = None,
    org_kinds: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The sender's member record if it holds ``role`` (or one of several roles) in ``org``, or in an
    org of one of ``org_kinds``.

    Otherwise the transaction is rejected with ``missing_role`` naming the role(s) needed. The record
    is shared by the block's transactions (see ``identity_of``): read it, never change it.
    """
    height = ctx.block.height
    roles = (role,) if isinstance(role, str) else role
    key_record = identity_of(ctx.state, ctx.sender, height)
    if key_record is None or key_record["kind"] != "member":
        raise _missing_role(roles, org, org_kinds, "the sender is not an active member")
    member = peek_value(ctx.state, _k("member", key_record["identity"]))
    if not _active(member, height) or not any(map(member["roles"].__contains__, roles)):
        raise _missing_role(roles, org, org_kinds, f"member {key_record['identity']} does not hold it")
    if org is not None and member["org"] != org:
        raise _missing_role(roles, org, org_kinds, f"member {member['id']} belongs to {member['org']!r}")
    org_record = peek_value(ctx.state, _k("org", member["org"]))
    if not _active(org_record, height):
        raise _missing_role(roles, org, org_kinds, f"organisation {member['org']!r} is suspended")
    if org_kinds is not None and org_record["kind"] not in org_kinds:
        raise _missing_role(roles, org, org_kinds, f"{member['org']!r} is a {org_record['kind']}")
    return member  # type: ignore[no-any-return]


def _missing_role(roles: tuple[str, ...], org: str | None, org_kinds: tuple[str, ...] | None, why: str) -> Rejected:
    # A function, not a closure in require_role: that ran for every transaction and allocated one each time.
    where = f" in organisation {org!r}" if org else ""
    if org_kinds:
        where += f" in an organisation of kind {' or '.join(org_kinds)}"
    return Rejected("missing_role", f"needs role {' or '.join(map(repr, roles))}{where}; {why}")


def require_consortium_admin(ctx: TxContext) -> None:
    admins = ctx.state.get_value(_k("admins"))
    if ctx.sender not in admins["keys"]:
        raise Rejected("missing_role", "needs role 'consortium_admin' (a consortium admin key from genesis)")


# --- genesis ------------------------------------------------------------------------------


def _genesis(state: Overlay, genesis: Genesis) -> None:
    state.put_value(_k("admins"), {"keys": list(genesis.admins), "threshold": genesis.admin_threshold})
    for i, key in enumerate(genesis.admins):
        # Recorded like any other key, so an admin key is never reused as a member or patient key.
        _claim_key(state, key, f"consortium/admin-{i + 1}", "consortium_admin", 0)
    for key in genesis.validators:
        state.put_value(_k("validator", key), {"key": key, "since": 0})
    for org in genesis.orgs:
        _create_org(state, org.id, org.name, org.kind, list(org.admins), 0)


def _create_org(state: Overlay, org_id: str, name: str, kind: str, admins: list[bytes], height: int) -> None:
    state.put_value(_k("org", org_id), {"id": org_id, "name": name, "kind": kind, "since": height})
    for i, key in enumerate(admins):
        _create_member(state, org_id, f"admin-{i + 1}", key, ["admin"], height)


def _create_member(state: Overlay, org: str, name: str, key: bytes, roles: list[str], height: int) -> str:
    member_id = f"{org}/{name}"
    if state.get(_k("member", member_id)) is not None:
        raise Rejected("member_exists", f"member {member_id!r} already exists")
    _claim_key(state, key, member_id, "member", height)
    state.put_value(
        _k("member", member_id),
        {"id": member_id, "org": org, "name": name, "roles": sorted(roles), "key": key, "since": height,
         "keys": [{"key": key, "from": height}]},
    )
    return member_id


def _claim_key(state: Overlay, key: bytes, identity: str, kind: str, height: int, *, verified: bool = False) -> None:
    """Bind ``key`` to an identity; ``verified`` when the key just signed this transaction."""
    if not verified and not crypto.public_key_ok(key):
        raise Rejected("bad_key", "not a valid compressed secp256k1 public key")
    if state.get(_k("key", key)) is not None:
        raise Rejected("key_in_use", f"key {key.hex()[:16]}… is already registered (keys are never reused)")
    state.put_value(_k("key", key), {"kind": kind, "since": height, "identity": identity})


def _retire_key(state: Overlay, key: bytes, height: int, reason: str) -> None:
    record = state.get_value(_k("key", key))
    record["revoked_from"] = height + 1
    record["reason"] = reason
    state.put_value(_k("key", key), record)


# --- governance by M-of-N consortium admins --------------------------------------------------

ACTION = OneOf(
    {
        "org_add": Record({"org": ORG_ID, "name": Text(max_len=128), "org_kind": Text(choices=ORG_KINDS),
                           "admins": ListOf(KEY, min_items=1, max_items=16, unique=True)}),
        "org_suspend": Record({"org": ORG_ID, "reason": REASON}),
        "org_reinstate": Record({"org": ORG_ID}),
        "validator_add": Record({"key": KEY}),
        "validator_suspend": Record({"key": KEY, "reason": REASON}),
    }
)


def _check_action(state: Overlay, action: dict[str, Any], height: int) -> None:
    """Is the action possible now? Checked when proposed and again when the threshold is met."""
    kind = action["kind"]
    if kind == "org_add":
        if state.get(_k("org", action["org"])) is not None:
            raise Rejected("org_exists", f"organisation {action['org']!r} already exists")
        for key in action["admins"]:
            if not crypto.public_key_ok(key):
                raise Rejected("bad_key", f"admin key {key.hex()[:16]}… is not a valid compressed secp256k1 key")
            if state.get(_k("key", key)) is not None:
                raise Rejected("key_in_use", f"admin key {key.hex()[:16]}… is already registered")
    elif kind in ("org_suspend", "org_reinstate"):
        org = state.get_value(_k("org", action["org"]))
        if org is None:
            raise Rejected("unknown_org", f"no organisation {action['org']!r}")
        if kind == "org_suspend" and org.get("revoked_from") is not None:
            raise Rejected("already_suspended", f"organisation {action['org']!r} is already suspended")
        if kind == "org_reinstate" and org.get("revoked_from") is None:
            raise Rejected("not_suspended", f"organisation {action['org']!r} is not suspended")
    elif kind == "validator_add":
        if not crypto.public_key_ok(action["key"]):
            raise Rejected("bad_key", "the validator key is not a valid compressed secp256k1 public key")
        validator = state.get_value(_k("validator", action["key"]))
        if validator is not None and validator.get("revoked_from") is None:
            raise Rejected("validator_exists", "this key is already an active validator")
    elif kind == "validator_suspend":
        if not _active(state.get_value(_k("validator", action["key"])), height):
            raise Rejected("unknown_validator", "this key is not an active validator")


def _carry_out(ctx: TxContext, action: dict[str, Any]) -> None:
    state, height = ctx.state, ctx.block.height
    kind = action["kind"]
    if kind == "org_add":
        _create_org(state, action["org"], action["name"], action["org_kind"], action["admins"], height)
    elif kind == "org_suspend":
        org = state.get_value(_k("org", action["org"]))
        org["revoked_from"] = height + 1
        org["reason"] = action["reason"]
        state.put_value(_k("org", action["org"]), org)
    elif kind == "org_reinstate":
        org = state.get_value(_k("org", action["org"]))
        org.pop("revoked_from", None)
        org.pop("reason", None)
        state.put_value(_k("org", action["org"]), org)
    elif kind == "validator_add":
        state.put_value(_k("validator", action["key"]), {"key": action["key"], "since": height})
    elif kind == "validator_suspend":
        validator = state.get_value(_k("validator", action["key"]))
        validator["revoked_from"] = height + 1
        validator["reason"] = action["reason"]
        state.put_value(_k("validator", action["key"]), validator)
    ctx.emit("registry.action_applied", action=action["kind"])


def _record_approval(ctx: TxContext, proposal: dict[str, Any]) -> None:
    proposal["approvals"].append(ctx.sender)
    threshold = ctx.state.get_value(_k("admins"))["threshold"]
    if len(proposal["approvals"]) >= threshold:
        _check_action(ctx.state, proposal["action"], ctx.block.height)
        _carry_out(ctx, proposal["action"])
        proposal["status"] = "applied"
        proposal["applied"] = ctx.block.height
    ctx.state.put_value(_k("proposal", proposal["id"]), proposal)
    ctx.emit("registry.approval", proposal=proposal["id"], approvals=len(proposal["approvals"]),
             threshold=threshold, status=proposal["status"])


def _propose(ctx: TxContext, payload: dict[str, Any]) -> None:
    require_consortium_admin(ctx)
    action = payload["action"]
    _check_action(ctx.state, action, ctx.block.height)
    proposal_id = ctx.tx.hash[:16].hex()
    proposal = {
        "id": proposal_id,
        "action": action,
        "proposer": ctx.sender,
        "approvals": [],
        "height": ctx.block.height,
        "expires": ctx.block.height + payload.get("expires_in", DEFAULT_EXPIRY_BLOCKS),
        "status": "open",
    }
    ctx.emit("registry.proposed", proposal=proposal_id, action=action["kind"])
    _record_approval(ctx, proposal)


def _approve(ctx: TxContext, payload: dict[str, Any]) -> None:
    require_consortium_admin(ctx)
    proposal = ctx.state.get_value(_k("proposal", payload["proposal"]))
    if proposal is None:
        raise Rejected("unknown_proposal", f"no proposal {payload['proposal']!r}")
    if proposal["status"] != "open":
        raise Rejected("proposal_closed", f"proposal {proposal['id']} is already {proposal['status']}")
    if ctx.block.height > proposal["expires"]:
        raise Rejected("proposal_expired", f"proposal {proposal['id']} expired at height {proposal['expires']}")
    if ctx.sender in proposal["approvals"]:
        raise Rejected("already_approved", "this admin has already approved the proposal")
    _record_approval(ctx, proposal)


# --- members, keys and patients ----------------------------------------------------------------


def _member_of_admins_org(ctx: TxContext, member_id: str) -> dict[str, Any]:
    member = ctx.state.get_value(_k("member", member_id))
    if member is None:
        raise Rejected("unknown_member", f"no member {member_id!r}")
    require_role(ctx, "admin", org=member["org"])
    return member  # type: ignore[no-any-return]


def _member_add(ctx: TxContext, payload: dict[str, Any]) -> None:
    require_role(ctx, "admin", org=payload["org"])
    member_id = _create_member(ctx.state, payload["org"], payload["name"], payload["key"], payload["roles"],
                               ctx.block.height)
    ctx.emit("registry.member_added", member=member_id, roles=sorted(payload["roles"]))


def _member_roles(ctx: TxContext, payload: dict[str, Any]) -> None:
    member = _member_of_admins_org(ctx, payload["member"])
    if not _active(member, ctx.block.height):
        raise Rejected("member_revoked", f"member {member['id']} is revoked")
    member["roles"] = sorted(payload["roles"])
    ctx.state.put_value(_k("member", member["id"]), member)
    ctx.emit("registry.roles_set", member=member["id"], roles=member["roles"])


def _member_revoke(ctx: TxContext, payload: dict[str, Any]) -> None:
    member = _member_of_admins_org(ctx, payload["member"])
    if member.get("revoked_from") is not None:
        raise Rejected("member_revoked", f"member {member['id']} is already revoked")
    member["revoked_from"] = ctx.block.height + 1
    member["reason"] = payload["reason"]
    ctx.state.put_value(_k("member", member["id"]), member)
    _retire_key(ctx.state, member["key"], ctx.block.height, payload["reason"])
    ctx.emit("registry.member_revoked", member=member["id"], effective_from=ctx.block.height + 1)


def _switch_key(state: Overlay, record_key: bytes, record: dict[str, Any], new_key: bytes, height: int,
                reason: str, kind: str) -> None:
    """Move an identity to ``new_key``; the old key stops at the next block."""
    old_key = record["key"]
    _retire_key(state, old_key, height, reason)
    _claim_key(state, new_key, record["id"], kind, height)
    for entry in record["keys"]:
        if entry["key"] == old_key:
            entry["until"] = height + 1
            entry["reason"] = reason
    record["keys"].append({"key": new_key, "from": height})
    record["key"] = new_key
    state.put_value(record_key, record)


def _key_rotate(ctx: TxContext, payload: dict[str, Any]) -> None:
    identity = require_identity(ctx)
    if identity["kind"] == "consortium_admin":
        raise Rejected("not_rotatable", "consortium admin keys are set in genesis and change only by governance")
    new_key = payload["new_key"]
    message = codec.encode([ctx.sender, new_key])
    if not crypto.verify(new_key, payload["proof"], ctx.block.chain_id, ROTATE_PURPOSE, message):
        raise Rejected("bad_rotation_proof", "proof is not the new key's signature over [old key, new key]")
    key_record = ctx.state.get_value(_k("key", ctx.sender))
    if key_record.get("revoked_from") is not None:
        # Even while a revoked key may still act in its last block, it must not move the identity:
        # otherwise a thief's rotation placed after the admin's revocation would win.
        raise Rejected("key_revoked", "this key is revoked or rotated away; it cannot rotate the identity")
    table = "member" if identity["kind"] == "member" else "patient"
    record_key = _k(table, identity["identity"])
    record = ctx.state.get_value(record_key)
    if record["key"] != ctx.sender or record.get("revoked_from") is not None:
        raise Rejected("key_revoked", f"{identity['identity']} is revoked or no longer uses this key")
    _switch_key(ctx.state, record_key, record, new_key, ctx.block.height, "rotated", identity["kind"])
    ctx.emit("registry.key_rotated", identity=identity["identity"], effective_from=ctx.block.height + 1)


def _key_revoke(ctx: TxContext, payload: dict[str, Any]) -> None:
    member = _member_of_admins_org(ctx, payload["member"])
    if not _active(identity_of(ctx.state, member["key"], ctx.block.height), ctx.block.height):
        raise Rejected("key_revoked", f"member {member['id']}'s current key is already revoked")
    record_key = _k("member", member["id"])
    if "new_key" in payload:
        _switch_key(ctx.state, record_key, member, payload["new_key"], ctx.block.height, payload["reason"],
                    "member")
    else:
        _retire_key(ctx.state, member["key"], ctx.block.height, payload["reason"])
        for entry in member["keys"]:
            if entry["key"] == member["key"]:
                entry["until"] = ctx.block.height + 1
                entry["reason"] = payload["reason"]
        ctx.state.put_value(record_key, member)
    ctx.emit("registry.key_revoked", member=member["id"], effective_from=ctx.block.height + 1,
             replaced="new_key" in payload)


def _patient_register(ctx: TxContext, payload: dict[str, Any]) -> None:
    pid = patient_id(ctx.sender)
    _claim_key(ctx.state, ctx.sender, pid, "patient", ctx.block.height, verified=True)
    ctx.state.put_value(_k("patient", pid), {"id": pid, "key": ctx.sender, "keys": [{"key": ctx.sender,
                                             "from": ctx.block.height}], "since": ctx.block.height})
    ctx.emit("registry.patient_registered", patient=pid)


# --- queries -------------------------------------------------------------------------------------


def _status(record: dict[str, Any], height: int) -> str:
    revoked_from = record.get("revoked_from")
    if revoked_from is None:
        return "active"
    return "revoked" if height >= revoked_from else f"active until height {revoked_from - 1}"


def _q_org(state: StateReader, params: dict[str, Any], height: int) -> Any:
    org = read_value(state, _k("org", params["org"]))
    if org is None:
        raise Rejected("not_found", f"no organisation {params['org']!r}")
    return {**org, "status": _status(org, height),
            "members": _records_with_status(state, _k("member", params["org"] + "/"), height)}


def _with_status(raw: bytes, height: int) -> dict[str, Any]:
    record = cbor2.loads(raw)
    record["status"] = _status(record, height)
    return record  # type: ignore[no-any-return]


def _records_with_status(state: StateReader, prefix: bytes, height: int) -> list[dict[str, Any]]:
    return [_with_status(raw, height) for _, raw in state.scan(prefix)]


def _identity_by_key(state: StateReader, key: bytes, kind: str) -> str:
    """The id of the member or patient that holds or held ``key`` (it follows rotations)."""
    record = read_value(state, _k("key", key))
    if record is None or record["kind"] != kind:
        raise Rejected("not_found", f"no {kind} holds or held this key")
    return record["identity"]  # type: ignore[no-any-return]


def _q_orgs(state: StateReader, params: dict[str, Any], height: int) -> Any:
    return _records_with_status(state, _k("org") + b"/", height)


def _q_member(state: StateReader, params: dict[str, Any], height: int) -> Any:
    if "member" in params:
        member_id = params["member"]
    elif "key" in params:
        member_id = _identity_by_key(state, params["key"], "member")
    else:
        raise Rejected("bad_params", "give 'member' (org/name) or 'key'")
    raw = state.get(_k("member", member_id))
    if raw is None:
        raise Rejected("not_found", f"no member {member_id!r}")
    return _with_status(raw, height)


def _q_key(state: StateReader, params: dict[str, Any], height: int) -> Any:
    record = read_value(state, _k("key", params["key"]))
    if record is None:
        return {"key": params["key"], "status": "unregistered"}
    return {"key": params["key"], **record, "status": _status(record, height)}


def _q_proposal(state: StateReader, params: dict[str, Any], height: int) -> Any:
    proposal = read_value(state, _k("proposal", params["proposal"]))
    if proposal is None:
        raise Rejected("not_found", f"no proposal {params['proposal']!r}")
    return _with_expiry(proposal, height)


def _with_expiry(proposal: dict[str, Any], height: int) -> dict[str, Any]:
    if proposal["status"] == "open" and height > proposal["expires"]:
        proposal["status"] = "expired"
    return proposal


def _q_proposals(state: StateReader, params: dict[str, Any], height: int) -> Any:
    return [_with_expiry(cbor2.loads(raw), height) for _, raw in state.scan(_k("proposal") + b"/")]


def _q_validators(state: StateReader, params: dict[str, Any], height: int) -> Any:
    return _records_with_status(state, _k("validator") + b"/", height)


def _q_patient(state: StateReader, params: dict[str, Any], height: int) -> Any:
    if "patient" in params:
        pid = params["patient"]
    elif "key" in params:
        pid = _identity_by_key(state, params["key"], "patient")
    else:
        raise Rejected("bad_params", "give 'patient' (id) or 'key'")
    record = read_value(state, _k("patient", pid))
    if record is None:
        raise Rejected("not_found", f"no patient {pid!r}")
    return record


def _q_admins(state: StateReader, params: dict[str, Any], height: int) -> Any:
    return read_value(state, _k("admins"))


APP = App(
    name="registry",
    genesis=_genesis,
    tx_types=(
        TxType("registry.propose", Record({"action": ACTION, "expires_in": Optional(Int(min=1, max=1_000_000))}),
               _propose, "A consortium admin proposes an organisation or validator change (counts as one approval)."),
        TxType("registry.approve", Record({"proposal": PROPOSAL_ID}), _approve,
               "A consortium admin approves an open proposal; it applies when the threshold is met."),
        TxType("registry.member_add", Record({"org": ORG_ID, "name": MEMBER_NAME, "key": KEY,
                                              "roles": ListOf(ROLE, min_items=1, max_items=16, unique=True)}),
               _member_add, "An organisation's admin adds a member with roles."),
        TxType("registry.member_roles", Record({"member": MEMBER_ID,
                                                "roles": ListOf(ROLE, min_items=1, max_items=16, unique=True)}),
               _member_roles, "An organisation's admin replaces a member's roles."),
        TxType("registry.member_revoke", Record({"member": MEMBER_ID, "reason": REASON}), _member_revoke,
               "An organisation's admin revokes a member (from the next block)."),
        TxType("registry.key_rotate", Record({"new_key": KEY, "proof": Bytes(size=64)}), _key_rotate,
               "A member or patient moves its identity to a new key (signed by both keys)."),
        TxType("registry.key_revoke", Record({"member": MEMBER_ID, "reason": REASON, "new_key": Optional(KEY)}),
               _key_revoke, "An organisation's admin revokes a member's lost or stolen key, optionally replacing it."),
        TxType("registry.patient_register", Record({}), _patient_register,
               "A patient registers its own key pseudonymously (no name, no PHI)."),
    ),
    queries=(
        Query("registry.org", Record({"org": ORG_ID}), _q_org, "An organisation with its members."),
        Query("registry.orgs", Record({}), _q_orgs, "Every organisation."),
        Query("registry.member", Record({"member": Optional(MEMBER_ID), "key": Optional(KEY)}), _q_member,
              "A member by id (org/name) or by any key it holds or held."),
        Query("registry.key", Record({"key": KEY}), _q_key, "Which identity a key belongs to and its status."),
        Query("registry.proposal", Record({"proposal": PROPOSAL_ID}), _q_proposal, "One governance proposal."),
        Query("registry.proposals", Record({}), _q_proposals, "Every governance proposal."),
        Query("registry.validators", Record({}), _q_validators, "The validator set."),
        Query("registry.patient", Record({"patient": Optional(Text(max_len=64)), "key": Optional(KEY)}),
              _q_patient, "A pseudonymous patient by id or key."),
        Query("registry.admins", Record({}), _q_admins, "The consortium admins and the approval threshold."),
    ),
)
