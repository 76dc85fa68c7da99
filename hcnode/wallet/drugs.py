"""``hcwallet drugs ...``: verify a pack, show, draw and export its trail, import EPCIS documents.

Owns: the drug-traceability commands of the wallet (registered in the wallet's
command table), the signed caller proof that entitles a query to a unit's trail,
and the client-side check of the Merkle proof that comes with it. The wall
clock is read here (today's date for expiry), never in the pure app.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hcnode.apps.drugs import epcis
from hcnode.apps.drugs.app import AS_PURPOSE, MAX_EPCIS_EVENTS_PER_TX, query_proof
from hcnode.apps.drugs.export import trail_document, trail_dot
from hcnode.wallet.cli import (
    EXIT_FAILED, EXIT_OK, TIMEOUT_ARG, Context, Output, WalletError, _submit, arg, command, render,
)
from hcnode.wallet.proofs import verify_tx_proof

__all__ = ["MAX_IMPORT_BYTES", "signed_params", "verify_answer_proof"]

MAX_IMPORT_BYTES = 8 * 1024 * 1024
"""Largest EPCIS file accepted: far above a real shipment's document, far below what could hurt."""
TX_BUDGET_BYTES = 48 * 1024
"""Events per transaction are packed to stay under the node's default 64 KiB transaction limit."""

AS_ARG = arg("--as", dest="as_key", metavar="NAME",
             help="sign the query with this member key: entitled organisations get the full trail and proof")


def signed_params(ctx: Context, query: str, key_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` plus the caller proof (as_key, as_sig, as_height) over them, hex-encoded for the RPC."""
    key = ctx.load_key(key_name)
    height = ctx.call("block.head")["height"]
    signed = {**params, "as_key": key.public, "as_height": height}
    signature = key.sign(ctx.chain_id(), AS_PURPOSE, query_proof(query, signed, height))
    return {**params, "as_key": key.public.hex(), "as_height": height, "as_sig": signature.hex()}


def verify_answer_proof(answer: dict[str, Any]) -> dict[str, bool] | None:
    """Check the tx_proof of the latest trail event without trusting the node (None when absent)."""
    proof = answer.get("tx_proof")
    if proof is None:
        return None
    latest = max(answer["trail"], key=lambda v: v["height"])["tx"]
    return verify_tx_proof(proof, latest)


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _verify(ctx: Context, params: dict[str, Any], as_key: str | None) -> dict[str, Any]:
    params = {"today": _today(), **params}
    if as_key:
        params = signed_params(ctx, "drugs.verify", as_key, params)
    answer: dict[str, Any] = ctx.call("drugs.verify", **params)
    checks = verify_answer_proof(answer)
    if checks is not None:
        answer["proof_checks"] = checks
        if not all(checks.values()):
            raise WalletError(f"the node's proof does not verify: {checks}", EXIT_FAILED)
    return answer


def _verdict_lines(answer: dict[str, Any]) -> list[str]:
    head = {k: answer[k] for k in ("verdict", "verified", "verificationFailureReason", "additionalInfo", "gtin",
                                   "serial", "lot", "expiry", "status", "holder") if k in answer}
    if "product" in answer:
        p = answer["product"]
        head["product"] = f"{p['name']} {p['strength']} {p['form']} by {p['manufacturer']}"
    lines = render(head)
    for n, view in enumerate(answer.get("trail", []), 1):
        extra = ", ".join(f"{k}={v}" for k, v in view["details"].items() if k in ("to", "lot", "reason", "n"))
        lines.append(f"  {n}. {view['when']}  {view['what']:<14} by {view['who']:<16} block {view['height']:<6}"
                     f" tx {view['tx'][:16]}…  {extra}")
    if "proof_checks" in answer:
        ok = all(answer["proof_checks"].values())
        lines.append(f"proof: latest event's tx is in block {answer['tx_proof']['height']} "
                     f"({'verified' if ok else 'FAILED'}: Merkle path, header hash, proposer signature)")
    elif answer.get("trail_visible") is False:
        lines.append("trail: visible to the organisations that held the unit, its manufacturer and regulators "
                     "(sign with --as KEY)")
    return lines


@command("drugs verify", "is this pack genuine? a verdict from a scan or GTIN + serial",
         arg("scan", metavar="SCAN", help="the scanned GS1 element string, raw DataMatrix text or Digital Link"),
         AS_ARG)
def cmd_drugs_verify(ctx: Context, args: argparse.Namespace) -> Output:
    answer = _verify(ctx, {"scan": args.scan}, args.as_key)
    return Output(answer, EXIT_OK if answer["verdict"] == "VERIFIED" else EXIT_FAILED, _verdict_lines(answer))


@command("drugs trail", "a unit's chain of custody (optionally drawn with Graphviz)",
         arg("gtin"), arg("serial"), AS_ARG,
         arg("--graph", metavar="FILE", help="write the picture: FILE.dot (text) or FILE.svg/.png "
                                             "(needs Graphviz's dot program)"))
def cmd_drugs_trail(ctx: Context, args: argparse.Namespace) -> Output:
    if not args.as_key:
        raise WalletError("the trail is visible only to entitled organisations: give --as KEY")
    answer = _verify(ctx, {"gtin": args.gtin, "serial": args.serial}, args.as_key)
    if not answer.get("trail_visible"):
        raise WalletError("this organisation may see the verdict but not the trail", EXIT_FAILED)
    lines = _verdict_lines(answer)
    if args.graph:
        write_graph(answer, Path(args.graph))
        answer["graph"] = args.graph
        lines.append(f"graph: {args.graph}")
    return Output(answer, EXIT_OK, lines)


def write_graph(answer: dict[str, Any], path: Path) -> None:
    """DOT as text, or rendered by Graphviz's ``dot`` for any other suffix (svg, png, pdf)."""
    dot_text = trail_dot(answer)
    if path.suffix == ".dot":
        path.write_text(dot_text)
        return
    dot = shutil.which("dot")
    if dot is None:
        raise WalletError(f"rendering {path.name} needs Graphviz's 'dot' program, which is not installed "
                          "(Debian/Ubuntu: apt install graphviz); or write DOT text with --graph "
                          f"{path.with_suffix('.dot').name}")
    result = subprocess.run([dot, f"-T{path.suffix.lstrip('.')}", "-o", str(path)], input=dot_text.encode(),
                            capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        raise WalletError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")


@command("drugs export", "a unit's trail as an EPCIS 2.0 JSON-LD document",
         arg("gtin"), arg("serial"), AS_ARG, arg("--out", metavar="FILE", help="write here instead of stdout"))
def cmd_drugs_export(ctx: Context, args: argparse.Namespace) -> Output:
    if not args.as_key:
        raise WalletError("the trail is visible only to entitled organisations: give --as KEY")
    answer = _verify(ctx, {"gtin": args.gtin, "serial": args.serial}, args.as_key)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    try:
        document = trail_document(answer, creation_date=now)
    except epcis.EpcisError as exc:
        raise WalletError(f"cannot export: {exc}", EXIT_FAILED) from None
    text = json.dumps(document, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
        return Output({"out": args.out, "events": len(document["epcisBody"]["eventList"])})
    return Output(document, EXIT_OK, [text])


def pack_events(events: list[epcis.TraceEvent]) -> list[list[dict[str, Any]]]:
    """Events as drugs.epcis_import payload items, packed into transactions under the size budget."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for event in events:
        item: dict[str, Any] = {"event": event.raw}
        if event.namespaces:
            item["namespaces"] = [list(p) for p in event.namespaces]
        item_size = len(event.raw.encode()) + 64
        if batches[-1] and (size + item_size > TX_BUDGET_BYTES or len(batches[-1]) >= MAX_EPCIS_EVENTS_PER_TX):
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += item_size
    return batches


@command("drugs import", "capture an EPCIS 2.0 JSON/JSON-LD document, signed by your organisation",
         arg("file", metavar="FILE"), arg("--key", required=True, metavar="NAME", help="the signing key"),
         TIMEOUT_ARG)
def cmd_drugs_import(ctx: Context, args: argparse.Namespace) -> Output:
    path = Path(args.file).expanduser()
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise WalletError(f"{path} is {size:,} bytes; an EPCIS import is at most {MAX_IMPORT_BYTES:,}")
        with path.open("rb") as handle:
            data = handle.read(MAX_IMPORT_BYTES + 1)
    except OSError as exc:
        raise WalletError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:  # every event is checked and hashed before anything is submitted
        events = epcis.import_document(data, max_bytes=MAX_IMPORT_BYTES)
    except epcis.EpcisError as exc:
        raise WalletError(f"{path}: {exc}") from None
    if not events:
        raise WalletError(f"{path}: the document has no events")
    results = []
    lines = []
    for n, batch in enumerate(pack_events(events), 1):
        out = _submit(ctx, args.key, "drugs.epcis_import", {"events": batch}, args.timeout_ms)
        results.append(out.data)
        lines += [f"transaction {n}: {len(batch)} events"] + (out.lines or [])
        if out.exit_code != EXIT_OK:
            committed = sum(len(b) for b in pack_events(events)[: n - 1])
            note = (f"stopped: transaction {n} was not accepted; {committed} of {len(events)} events "
                    "were captured before it (each transaction is all or nothing)")
            return Output({"transactions": results, "captured": committed}, EXIT_FAILED, lines, note)
    return Output({"transactions": results, "captured": len(events)}, EXIT_OK, lines)
