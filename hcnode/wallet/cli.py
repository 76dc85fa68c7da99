"""The ``hcwallet`` command: keys, signed transactions, receipts, proofs and queries.

Owns: the command line, passphrase prompts, turning JSON payloads into the
transaction's CBOR values, and printing results (aligned ``key: value`` lines,
or one JSON document with ``--json``). Must not know what a transaction means:
payload shapes come from the apps' schemas and rules from the node's receipts.
It speaks to the node only over the Unix-socket RPC (``RpcClient``).

    hcwallet [--keystore DIR] [--socket PATH] [--json] [--chain-id ID] COMMAND ...

Exit codes: 0 done (a transaction committed ok); 1 the chain said no (a
rejected transaction, one not committed in time, a proof that does not verify,
nothing found); 2 the command could not run (usage, payload, keystore,
passphrase, connection). Errors are one line on stderr, never a traceback.

Adding a command (e.g. for a new app) is one function and one registration::

    @command("drug verify", "is this pack genuine?", arg("serial"))
    def cmd_drug_verify(ctx: Context, args: argparse.Namespace) -> Output:
        return Output(ctx.call("drugs.verify", serial=args.serial))

A name with a space ("key new") puts the command in a group; the parser is
built from ``COMMANDS``, so nothing else changes.
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import getpass
import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hcnode import codec, crypto
from hcnode.apps import default_apps
from hcnode.apps.registry import rotation_proof
from hcnode.chain import AppSet, Rejected, build_tx
from hcnode.chain.schema import Bool, Bytes, Int, ListOf, OneOf, Optional, Record, Spec
from hcnode.wallet import reports
from hcnode.wallet.client import RpcCallError, RpcClient
from hcnode.wallet.proofs import verify_tx_proof
from hcnode.wallet.keystore import NAME as KEY_NAME
from hcnode.wallet.keystore import Keystore, KeystoreError

__all__ = ["COMMANDS", "Command", "Context", "Output", "WalletError", "arg", "command", "main",
           "payload_from_json", "render"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DEFAULT_KEYSTORE = "~/.hcnode/keys"
DEFAULT_TIMEOUT_MS = 10_000

# JSON-RPC error codes from hcnode.node.rpc (protocols/rpc.md) that mean "the request was wrong".
_RPC_USAGE_CODES = {-32700, -32600, -32601, -32602}


class WalletError(Exception):
    """A failure to report as one line on stderr, with the exit code to return."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass
class Output:
    """What a command produced: JSON-able ``data`` (bytes already hex), readable ``lines``, exit code.

    ``lines`` None means "render ``data``"; ``note`` is an extra line for stderr
    (e.g. why a transaction did not commit), printed in both output modes.
    """

    data: Any
    exit_code: int = EXIT_OK
    lines: list[str] | None = None
    note: str | None = None


# --- the command table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    flags: tuple[str, ...]
    options: dict[str, Any]


def arg(*flags: str, **options: Any) -> Arg:
    """An argument of a command, as for ``ArgumentParser.add_argument``."""
    return Arg(flags, options)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[Context, argparse.Namespace], Output]
    args: tuple[Arg, ...] = ()
    json_flag: bool = True  # also accept --json after the command (submit uses --json for its payload)


COMMANDS: dict[str, Command] = {}
GROUP_HELP: dict[str, str] = {"key": "create, list, show and import keys in the keystore"}


def command(name: str, help: str, *args: Arg, json_flag: bool = True) -> Callable[
        [Callable[[Context, argparse.Namespace], Output]], Callable[[Context, argparse.Namespace], Output]]:
    """Register a command; the decorated function gets the context and the parsed arguments."""

    def register(run: Callable[[Context, argparse.Namespace], Output]) -> Callable[
            [Context, argparse.Namespace], Output]:
        if name in COMMANDS:
            raise ValueError(f"hcwallet command {name!r} is registered twice")
        COMMANDS[name] = Command(name, help, run, args, json_flag)
        return run

    return register


TIMEOUT_ARG = arg("--timeout-ms", type=int, default=DEFAULT_TIMEOUT_MS, metavar="MS",
                  help=f"how long to wait for the block (default {DEFAULT_TIMEOUT_MS})")


# --- context: keystore, passphrase, node connection ------------------------------------------------


class Context:
    """What commands share: the keystore, the passphrase, one lazy node connection, the apps."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.keystore = Keystore(Path(args.keystore).expanduser())
        self.socket: str | None = args.socket or None
        self._client: RpcClient | None = None
        self._chain_id: str | None = args.chain_id
        self._passphrase: str | None = None
        self._apps: AppSet | None = None

    # node

    def client(self) -> RpcClient:
        if self._client is None:
            if not self.socket:
                raise WalletError("no node socket: give --socket PATH or set HCNODE_SOCKET")
            timeout_ms = getattr(self.args, "timeout_ms", 0) or 0
            self._client = RpcClient(self.socket, timeout=30 + timeout_ms / 1000)
        return self._client

    def call(self, method: str, **params: Any) -> Any:
        """One RPC call; a JSON-RPC error becomes a ``WalletError`` naming the method."""
        try:
            return self.client().call(method, **params)
        except RpcCallError as exc:
            reason = f" ({exc.reason})" if exc.reason else ""
            exit_code = EXIT_USAGE if exc.code in _RPC_USAGE_CODES else EXIT_FAILED
            raise WalletError(f"{method}: {exc.message}{reason}", exit_code) from None

    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = self.call("node.info")["chain_id"]
        return self._chain_id

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def apps(self) -> AppSet:
        if self._apps is None:
            self._apps = default_apps()
        return self._apps

    # keys

    def passphrase(self, prompt: str = "passphrase: ", *, confirm: bool = False, fresh: bool = False) -> str:
        """``$HCWALLET_PASSPHRASE``, else asked once per run (twice with ``confirm``)."""
        from_env = os.environ.get("HCWALLET_PASSPHRASE")
        if from_env is not None:
            return from_env
        if self._passphrase is not None and not fresh:
            return self._passphrase
        try:
            first = getpass.getpass(prompt)
            if confirm and first != getpass.getpass("again: "):
                raise WalletError("the two passphrases differ; nothing was written")
        except EOFError:
            raise WalletError("no passphrase given (set HCWALLET_PASSPHRASE or run in a terminal)") from None
        if confirm and not first:
            raise WalletError("an empty passphrase would leave the key unprotected; choose one")
        self._passphrase = first
        return first

    def public(self, name: str) -> bytes:
        try:
            return self.keystore.public(name)
        except KeystoreError as exc:
            raise WalletError(f"key {name!r}: {_keystore_message(exc, self.keystore)}") from None

    def key_path(self, name: str) -> Path:
        """Where the key file for ``name`` is (or would be); a bad name is a usage error."""
        if not KEY_NAME.fullmatch(name):
            raise WalletError(f"key name {name!r}: use lower-case letters, digits, '.', '_' or '-' (at most 64)")
        return self.keystore.directory / f"{name}.json"

    def load_key(self, name: str) -> crypto.PrivateKey:
        self.public(name)  # a missing key is reported before any prompt
        try:
            return self.keystore.load(name, self.passphrase(f"passphrase for key {name!r}: "))
        except KeystoreError as exc:
            if self._passphrase is None or os.environ.get("HCWALLET_PASSPHRASE") is not None:
                raise WalletError(f"key {name!r}: {exc}") from None
        try:  # a second key in one run may have its own passphrase
            return self.keystore.load(name, self.passphrase(f"passphrase for key {name!r}: ", fresh=True))
        except KeystoreError as exc:
            raise WalletError(f"key {name!r}: {exc}") from None


def _keystore_message(exc: KeystoreError, keystore: Keystore) -> str:
    message = str(exc)
    if message.startswith("no key file"):
        return f"not in the keystore {keystore.directory} (see: hcwallet key list)"
    return message


# --- readable output -------------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value) if value else "(none)"
    return str(value)


def _inline(value: Any) -> bool:
    if isinstance(value, dict):
        return False
    if isinstance(value, list):
        return all(not isinstance(v, (dict, list)) for v in value) and len(_scalar(value)) <= 100
    return True


def render(value: Any, indent: int = 0) -> list[str]:
    """Plain data as aligned ``key: value`` lines; nested maps and lists indented under their key."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "(empty)"]
        width = max(len(str(k)) for k in value) + 2
        lines = []
        for key, item in value.items():
            if _inline(item):
                lines.append(f"{pad}{(str(key) + ':').ljust(width)}{_scalar(item)}".rstrip())
            else:
                lines.append(f"{pad}{key}:")
                lines.extend(render(item, indent + 2))
        return lines
    if isinstance(value, list):
        if not value:
            return [pad + "(none)"]
        lines = []
        for item in value:
            if not isinstance(item, (dict, list)):
                lines.append(f"{pad}- {_scalar(item)}")
                continue
            nested = render(item, indent + 2)
            lines.append(f"{pad}- {nested[0][indent + 2:]}")
            lines.extend(nested[1:])
        return lines
    return [pad + _scalar(value)]


def _receipt_view(outcome: dict[str, Any], tx_hash: str) -> dict[str, Any]:
    """A tx.get / tx.wait answer flattened for reading: the receipt's fields in a fixed order."""
    receipt = outcome.get("receipt")
    if outcome.get("status") != "committed" or receipt is None:
        return {"tx": tx_hash, "status": outcome.get("status", "unknown")}
    view: dict[str, Any] = {"tx": tx_hash, "status": receipt["status"], "height": receipt["height"],
                            "index": receipt["index"]}
    if receipt["status"] != "ok":
        view["code"] = receipt.get("code")
        view["message"] = receipt.get("message")
    view["flags"] = receipt.get("flags", [])
    view["events"] = receipt.get("events", [])
    return view


def _outcome_output(outcome: dict[str, Any], tx_hash: str, waited_ms: int | None = None) -> Output:
    """Exit 0 for an ok receipt, 1 for a rejected or uncommitted transaction."""
    data = {"tx": tx_hash, **outcome}
    lines = render(_receipt_view(outcome, tx_hash))
    if outcome.get("status") == "committed":
        code = EXIT_OK if outcome["receipt"]["status"] == "ok" else EXIT_FAILED
        return Output(data, code, lines)
    within = f" within {waited_ms} ms" if waited_ms is not None else ""
    state = "still pending" if outcome.get("status") == "pending" else "not known to the node"
    note = f"not committed{within} ({state}); check later with: hcwallet tx wait {tx_hash}"
    return Output(data, EXIT_FAILED, lines, note)


# --- payloads: JSON in, CBOR values out -------------------------------------------------------------


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
            bool: "a boolean"}.get(type(value), "null" if value is None else type(value).__name__)


def payload_from_json(spec: Spec, value: Any, path: str = "payload") -> Any:
    """Walk ``spec`` and turn the hex strings of bytes fields into bytes; the rest stays as given.

    Shapes the schema does not expect are left alone for ``spec.check`` to name.
    """
    if isinstance(spec, Optional):
        spec = spec.spec
    if isinstance(spec, Bytes):
        if not isinstance(value, str):
            raise WalletError(f"{path}: expected bytes as a hex string, got {_json_kind(value)}")
        text = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise WalletError(f"{path}: {value!r} is not valid hex") from None
    if isinstance(spec, ListOf) and isinstance(value, list):
        return [payload_from_json(spec.item, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(spec, Record) and isinstance(value, dict):
        return {k: payload_from_json(spec.fields[k], v, f"{path}.{k}") if k in spec.fields else v
                for k, v in value.items()}
    if isinstance(spec, OneOf) and isinstance(value, dict):
        kind = value.get("kind")
        variant = spec.variants.get(kind) if isinstance(kind, str) else None
        if variant is None:
            return value
        rest = payload_from_json(variant, {k: v for k, v in value.items() if k != "kind"}, path)
        return {"kind": kind, **rest}
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _read_payload(text: str) -> Any:
    where = "--json"
    if text.startswith("@"):
        where = text[1:]
        try:
            text = Path(where).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise WalletError(f"cannot read the payload file {where}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise WalletError(f"the payload file {where} is not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise WalletError(f"{where}: the payload is not valid JSON: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}") from None
    except ValueError as exc:
        raise WalletError(f"{where}: the payload is not valid JSON: {exc}") from None


def _tx_type(ctx: Context, name: str) -> Record:
    found = ctx.apps.tx_types.get(name)
    if found is None:
        known = sorted(ctx.apps.tx_types)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        shown = close or known[:6]
        more = "" if close or len(known) <= 6 else f", ... ({len(known)} in all)"
        hint = "did you mean" if close else "known types include"
        raise WalletError(f"unknown transaction type {name!r}; {hint}: {', '.join(shown)}{more}")
    return found.schema


def _submit(ctx: Context, key_name: str, tx_type: str, payload: dict[str, Any], timeout_ms: int,
            key: crypto.PrivateKey | None = None) -> Output:
    """Sign ``payload`` with the named key, submit it and wait for its receipt."""
    public = ctx.public(key_name)
    chain_id = ctx.chain_id()
    nonce = ctx.call("account.nonce", key=public.hex())["next"]
    if key is None:
        key = ctx.load_key(key_name)
    raw = build_tx(key, chain_id, tx_type, nonce, payload)
    try:
        submitted = ctx.client().call("tx.submit", tx=raw.hex())
    except RpcCallError as exc:
        reason = f"{exc.reason}: " if exc.reason else ""
        exit_code = EXIT_USAGE if exc.code in _RPC_USAGE_CODES else EXIT_FAILED
        raise WalletError(f"the node refused the transaction: {reason}{exc.message}", exit_code) from None
    outcome = ctx.call("tx.wait", tx=submitted["tx"], timeout_ms=timeout_ms)
    return _outcome_output(outcome, submitted["tx"], timeout_ms)


# --- keys ---------------------------------------------------------------------------------------------


@command("key new", "create a key (prints its name and public key)", arg("name"))
def cmd_key_new(ctx: Context, args: argparse.Namespace) -> Output:
    if ctx.key_path(args.name).exists():
        raise WalletError(f"a key named {args.name!r} already exists in {ctx.keystore.directory}")
    passphrase = ctx.passphrase(f"passphrase for the new key {args.name!r}: ", confirm=True)
    try:
        stored = ctx.keystore.create(args.name, passphrase)
    except KeystoreError as exc:
        raise WalletError(str(exc)) from None
    return Output({"name": stored.name, "public": stored.public.hex(), "path": str(stored.path)})


@command("key list", "list the keys in the keystore (no passphrase needed)")
def cmd_key_list(ctx: Context, args: argparse.Namespace) -> Output:
    try:
        keys = ctx.keystore.list()
    except KeystoreError as exc:
        raise WalletError(str(exc)) from None
    data = [{"name": k.name, "public": k.public.hex(), "path": str(k.path)} for k in keys]
    if not keys:
        return Output(data, lines=[f"no keys in {ctx.keystore.directory}"])
    width = max(len(k.name) for k in keys) + 2
    return Output(data, lines=[f"{k.name.ljust(width)}{k.public.hex()}" for k in keys])


@command("key show", "a key's public key, file, and (if the node answers) its identity on chain",
         arg("name"))
def cmd_key_show(ctx: Context, args: argparse.Namespace) -> Output:
    public = ctx.public(args.name)
    data: dict[str, Any] = {"name": args.name, "public": public.hex(),
                            "path": str(ctx.key_path(args.name)), "identity": None}
    if not ctx.socket:
        shown = "(no node socket given)"
    else:
        try:
            record = ctx.call("registry.key", key=public.hex())
        except (OSError, WalletError) as exc:
            shown = f"(node not reachable: {exc})"
        else:
            data["identity"] = record
            if record.get("status") == "unregistered":
                shown = "unregistered"
            else:
                shown = f"{record.get('identity')} ({record.get('kind')}, {record.get('status')})"
    view = {"name": data["name"], "public": data["public"], "path": data["path"], "identity": shown}
    return Output(data, lines=render(view))


@command("key import", "import a 32-byte secret key (hex, or raw bytes) from a file",
         arg("name"), arg("--secret-file", required=True, metavar="FILE"))
def cmd_key_import(ctx: Context, args: argparse.Namespace) -> Output:
    try:
        raw = Path(args.secret_file).expanduser().read_bytes()
    except OSError as exc:
        raise WalletError(f"cannot read {args.secret_file}: {exc.strerror or exc}") from None
    secret = raw if len(raw) == 32 else None
    if secret is None:
        text = raw.decode("ascii", "replace").strip().removeprefix("0x")
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            secret = b""
    if len(secret) != 32:
        raise WalletError(f"{args.secret_file}: expected a 32-byte secret key (64 hex digits or 32 raw bytes)")
    try:
        key = crypto.PrivateKey(secret)
    except crypto.CryptoError as exc:
        raise WalletError(f"{args.secret_file}: {exc}") from None
    passphrase = ctx.passphrase(f"passphrase for the imported key {args.name!r}: ", confirm=True)
    try:
        stored = ctx.keystore.save(args.name, key, passphrase)
    except KeystoreError as exc:
        raise WalletError(str(exc)) from None
    return Output({"name": stored.name, "public": stored.public.hex(), "path": str(stored.path)})


# --- transactions --------------------------------------------------------------------------------------


@command("submit", "sign a transaction, submit it and wait for its receipt",
         arg("type", metavar="TYPE", help="transaction type, e.g. registry.member_add"),
         arg("--key", required=True, metavar="NAME", help="the signing key"),
         arg("--json", dest="payload", required=True, metavar="PAYLOAD",
             help="the payload as a JSON object (bytes as hex strings), or @FILE"),
         TIMEOUT_ARG, json_flag=False)
def cmd_submit(ctx: Context, args: argparse.Namespace) -> Output:
    schema = _tx_type(ctx, args.type)
    value = _read_payload(args.payload)
    if not isinstance(value, dict):
        raise WalletError(f"the payload must be a JSON object, got {_json_kind(value)}")
    payload = payload_from_json(schema, value)
    try:
        schema.check(payload, "payload")
    except Rejected as exc:
        raise WalletError(f"payload does not fit {args.type}: {exc.message}") from None
    return _submit(ctx, args.key, args.type, payload, args.timeout_ms)


@command("rotate", "move a key's identity (roles, history) to a new key, created if absent",
         arg("--key", required=True, metavar="NAME", help="the current key"),
         arg("--new", dest="new_name", required=True, metavar="NAME2", help="the new key"),
         TIMEOUT_ARG)
def cmd_rotate(ctx: Context, args: argparse.Namespace) -> Output:
    if args.new_name == args.key:
        raise WalletError("--new must name a different key than --key")
    ctx.public(args.key)
    old = ctx.load_key(args.key)
    created = not ctx.key_path(args.new_name).exists()
    if created:
        try:  # the passphrase that just opened the old key protects the new one
            ctx.keystore.save(args.new_name, crypto.PrivateKey.generate(), ctx.passphrase())
        except KeystoreError as exc:
            raise WalletError(str(exc)) from None
    new = ctx.load_key(args.new_name)
    payload = {"new_key": new.public, "proof": rotation_proof(new, ctx.chain_id(), old.public)}
    out = _submit(ctx, args.key, "registry.key_rotate", payload, args.timeout_ms, key=old)
    out.data["new_key"] = {"name": args.new_name, "public": new.public.hex(), "created": created}
    assert out.lines is not None
    out.lines += render({"new key": f"{args.new_name} {new.public.hex()}" + (" (created)" if created else "")})
    if out.exit_code == EXIT_OK:
        out.lines.append(f"from the next block, sign with --key {args.new_name}")
    return out


@command("register-patient", "register a key as a pseudonymous patient (no name, no PHI)",
         arg("--key", required=True, metavar="NAME"), TIMEOUT_ARG)
def cmd_register_patient(ctx: Context, args: argparse.Namespace) -> Output:
    out = _submit(ctx, args.key, "registry.patient_register", {}, args.timeout_ms)
    receipt = out.data.get("receipt") or {}
    for event in receipt.get("events", []):
        if event.get("kind") == "registry.patient_registered":
            out.data["patient"] = event["patient"]
            assert out.lines is not None
            out.lines += render({"patient": event["patient"]})
    return out


def _tx_hash(text: str) -> str:
    value = text.lower().removeprefix("0x")
    try:
        if len(bytes.fromhex(value)) == 32:
            return value
    except ValueError:
        pass
    raise WalletError(f"{text!r} is not a transaction hash (64 hex digits)")


def _tx_get(ctx: Context, tx_hash: str, args: argparse.Namespace) -> Output:
    return _outcome_output(ctx.call("tx.get", tx=tx_hash), tx_hash)


def _tx_wait(ctx: Context, tx_hash: str, args: argparse.Namespace) -> Output:
    return _outcome_output(ctx.call("tx.wait", tx=tx_hash, timeout_ms=args.timeout_ms), tx_hash, args.timeout_ms)


def _tx_proof(ctx: Context, tx_hash: str, args: argparse.Namespace) -> Output:
    proof = ctx.call("tx.proof", tx=tx_hash)
    checks = _checked_proof(proof, tx_hash)
    failed = [name for name, ok in checks.items() if not ok]
    header = proof["header"]
    data = {**proof, "checks": checks, "verified": not failed}
    view = {"tx": tx_hash, "height": proof["height"], "index": f"{proof['index']} of {proof['size']}",
            "block": header["hash"], "tx_root": header["tx_root"], "proposer": header["proposer"],
            "path": proof["path"] or "(empty: the only transaction in its block)",
            "checks": {name: "ok" if ok else "FAILED" for name, ok in checks.items()}}
    lines = render(view)
    if failed:
        return Output(data, EXIT_FAILED, lines + ["proof does NOT verify"],
                      note=f"proof does not verify: {', '.join(failed)} failed")
    return Output(data, EXIT_OK, lines + ["proof verified"])


def _checked_proof(proof: dict[str, Any], tx_hash: str) -> dict[str, bool]:
    try:
        return verify_tx_proof(proof, tx_hash)
    except (KeyError, TypeError, ValueError, codec.CodecError) as exc:
        raise WalletError(f"tx.proof: malformed answer from the node ({type(exc).__name__}: {exc})",
                          EXIT_FAILED) from None


_TX_ACTIONS: dict[str, Callable[[Context, str, argparse.Namespace], Output]] = {
    "get": _tx_get, "wait": _tx_wait, "proof": _tx_proof,
}


@command("tx", "a transaction: tx HASH (status and receipt), tx wait HASH, tx proof HASH",
         arg("words", nargs="+", metavar="[get|wait|proof] HASH"), TIMEOUT_ARG)
def cmd_tx(ctx: Context, args: argparse.Namespace) -> Output:
    words = args.words
    if len(words) == 1:
        action, target = "get", words[0]
    elif len(words) == 2 and words[0] in _TX_ACTIONS:
        action, target = words
    else:
        raise WalletError(f"usage: hcwallet tx [{'|'.join(_TX_ACTIONS)}] HASH (got {' '.join(words)!r})")
    return _TX_ACTIONS[action](ctx, _tx_hash(target), args)


# --- blocks and the node ------------------------------------------------------------------------------


@command("block", "a block header and its transaction hashes: block [HEIGHT|HASH|head]",
         arg("ref", nargs="?", default="head", metavar="HEIGHT|HASH|head"))
def cmd_block(ctx: Context, args: argparse.Namespace) -> Output:
    ref = args.ref.lower().removeprefix("0x")
    if ref == "head":
        height = ctx.call("block.head")["height"]
        return Output(ctx.call("block.get", height=height))
    if ref.isdigit():
        return Output(ctx.call("block.get", height=int(ref)))
    try:
        if len(bytes.fromhex(ref)) == 32:
            return Output(ctx.call("block.get", hash=ref))
    except ValueError:
        pass
    raise WalletError(f"{args.ref!r} is not a height, a block hash (64 hex digits) or 'head'")


@command("info", "the node's chain, height, head and role")
def cmd_info(ctx: Context, args: argparse.Namespace) -> Output:
    return Output(ctx.call("node.info"))


# --- queries ------------------------------------------------------------------------------------------


def _param_value(spec: Spec | None, name: str, text: str) -> Any:
    """A ``k=v`` value typed by the query's schema; without a schema, JSON if it parses, else text."""
    if isinstance(spec, Optional):
        spec = spec.spec
    if spec is None or isinstance(spec, (Int, Bool, ListOf, Record, OneOf)):
        try:
            return json.loads(text)
        except ValueError:
            if spec is None:
                return text
            raise WalletError(f"{name}={text}: expected {spec.describe()} (as JSON)") from None
    return text  # text, and bytes as hex: the RPC takes both as strings


@command("query", "any app query or RPC method: query METHOD [k=v ...], e.g. query registry.org org=st-mary",
         arg("method"), arg("params", nargs="*", metavar="k=v"))
def cmd_query(ctx: Context, args: argparse.Namespace) -> Output:
    known = ctx.apps.queries.get(args.method)
    fields = known.params.fields if known is not None else {}
    params: dict[str, Any] = {}
    for item in args.params:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise WalletError(f"query parameters are name=value, got {item!r}")
        if known is not None and name not in fields:
            allowed = ", ".join(fields) or "none"
            raise WalletError(f"{args.method} has no parameter {name!r} (allowed: {allowed})")
        params[name] = _param_value(fields.get(name), name, text)
    return Output(ctx.call(args.method, **params))


@command("org", "an organisation and its members", arg("id"))
def cmd_org(ctx: Context, args: argparse.Namespace) -> Output:
    return Output(ctx.call("registry.org", org=args.id))


@command("member", "a member by id (org/name) or by any key it holds or held", arg("id", metavar="ID|KEY"))
def cmd_member(ctx: Context, args: argparse.Namespace) -> Output:
    if "/" in args.id:
        return Output(ctx.call("registry.member", member=args.id))
    return Output(ctx.call("registry.member", key=args.id))


@command("orgs", "every organisation")
def cmd_orgs(ctx: Context, args: argparse.Namespace) -> Output:
    return Output(ctx.call("registry.orgs"))


@command("proposals", "every governance proposal")
def cmd_proposals(ctx: Context, args: argparse.Namespace) -> Output:
    return Output(ctx.call("registry.proposals"))


# --- billing and trials (apps/billing, apps/trials) ------------------------------------------------------

GROUP_HELP["billing"] = "claims in a patient's name, disputes, and the billing report"
GROUP_HELP["trials"] = "trial status, withdrawal, dataset verification, and the trials report"


def _patient_of(ctx: Context, args: argparse.Namespace) -> str:
    if bool(args.patient) == bool(args.key):
        raise WalletError("give exactly one of --patient ID or --key NAME")
    if args.patient:
        return args.patient  # type: ignore[no-any-return]
    # Asked of the chain, not derived from the key: a patient's id comes from their first key and
    # stays when they rotate to a new one, so only the chain knows whose id a rotated key holds.
    public = ctx.public(args.key)
    try:
        return ctx.call("registry.patient", key=public.hex())["id"]  # type: ignore[no-any-return]
    except WalletError as exc:
        raise WalletError(f"key {args.key!r} is not a registered patient's key on this chain "
                          f"(hcwallet register-patient --key {args.key}); {exc}", exc.exit_code) from None


def _csv_output(data: Any, tables: list[Any], choice: str | None) -> Output:
    if choice is None:
        return Output(data, lines=reports.to_text(tables))
    table = next(t for t in tables if t[0].split()[0] == choice or (choice == "league" and "league" in t[0]))
    return Output(data, lines=reports.to_csv(table).rstrip("\n").split("\n"))


@command("billing claims", "every claim billed in a patient's name (by --patient ID or your --key)",
         arg("--patient", metavar="ID"), arg("--key", metavar="NAME"),
         arg("--limit", type=int, default=100), arg("--after", metavar="CLAIM"))
def cmd_billing_claims(ctx: Context, args: argparse.Namespace) -> Output:
    params: dict[str, Any] = {"patient": _patient_of(ctx, args), "limit": args.limit}
    if args.after:
        params["after"] = args.after
    return Output(ctx.call("billing.patient_claims", **params))


@command("billing claim", "one claim with its flags, adjudication, payments and disputes", arg("claim"))
def cmd_billing_claim(ctx: Context, args: argparse.Namespace) -> Output:
    return Output(ctx.call("billing.claim", claim=args.claim))


@command("billing dispute", "dispute a claim billed in your name (signed with your patient key)",
         arg("claim"), arg("--key", required=True, metavar="NAME"), arg("--reason", required=True),
         TIMEOUT_ARG)
def cmd_billing_dispute(ctx: Context, args: argparse.Namespace) -> Output:
    return _submit(ctx, args.key, "billing.claim_dispute", {"claim": args.claim, "reason": args.reason},
                   args.timeout_ms)


@command("billing report", "totals per provider and per payer, flagged amounts and counts, top flags",
         arg("--csv", nargs="?", const="totals", choices=("totals", "top"), metavar="totals|top",
             help="print one table as CSV (default: totals)"))
def cmd_billing_report(ctx: Context, args: argparse.Namespace) -> Output:
    report = ctx.call("billing.report")
    return _csv_output(report, reports.billing_tables(report), args.csv)


def _head_date(ctx: Context) -> str:
    """The head block's date: "now" for a report, as the chain sees it (never this machine's clock)."""
    time_ms = ctx.call("block.head")["time_ms"]
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=time_ms // 86_400_000)).isoformat()


@command("trials report", "every trial's status, the share unreported, and the sponsor league table",
         arg("--as-of", metavar="YYYY-MM-DD", help="judge due dates on this day (default: the head block's date)"),
         arg("--csv", nargs="?", const="trials", choices=("trials", "league"), metavar="trials|league",
             help="print one table as CSV (default: trials)"))
def cmd_trials_report(ctx: Context, args: argparse.Namespace) -> Output:
    report = ctx.call("trials.report", as_of=args.as_of or _head_date(ctx))
    return _csv_output(report, reports.trials_tables(report), args.csv)


@command("trials show", "a trial's status, due date, amendments, outcome switches and results",
         arg("trial"), arg("--as-of", metavar="YYYY-MM-DD"))
def cmd_trials_show(ctx: Context, args: argparse.Namespace) -> Output:
    return Output(ctx.call("trials.trial", trial=args.trial, as_of=args.as_of or _head_date(ctx)))


@command("trials verify-dataset", "hash a file (SHA-256) and check it against the trial's commitments",
         arg("trial"), arg("file"))
def cmd_trials_verify_dataset(ctx: Context, args: argparse.Namespace) -> Output:
    digest = hashlib.sha256()
    try:
        with open(Path(args.file).expanduser(), "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise WalletError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    found = ctx.call("trials.verify_dataset", trial=args.trial, dataset_hash=digest.hexdigest())
    found["file"] = args.file
    if not found["committed"]:
        return Output(found, EXIT_FAILED, render(found) + ["NOT committed: this file is not a committed snapshot"])
    commitment = found["commitment"]
    return Output(found, lines=render(found) + [f"committed as snapshot {commitment['seq']} "
                                                f"({commitment['label']}) on {commitment['date']}"])


@command("trials withdraw", "withdraw from a trial (signed with your patient key)",
         arg("trial"), arg("--key", required=True, metavar="NAME"), TIMEOUT_ARG)
def cmd_trials_withdraw(ctx: Context, args: argparse.Namespace) -> Output:
    return _submit(ctx, args.key, "trials.withdraw", {"trial": args.trial}, args.timeout_ms)


# --- parser and main -------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # --key must never be taken for --keystore
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # one line on stderr, exit 2 (argparse would print the usage too)
        raise WalletError(f"{message} (see {self.prog} --help)")


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool, json_flag: bool = True) -> None:
    """The global options; after a command they are also accepted, without defaults of their own."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    parser.add_argument("--keystore", metavar="DIR",
                        default=default(os.environ.get("HCWALLET_KEYSTORE") or DEFAULT_KEYSTORE),
                        help="the keystore directory (default $HCWALLET_KEYSTORE or ~/.hcnode/keys)")
    parser.add_argument("--socket", metavar="PATH", default=default(os.environ.get("HCNODE_SOCKET")),
                        help="the node's RPC socket (default $HCNODE_SOCKET)")
    parser.add_argument("--chain-id", metavar="ID", default=default(None),
                        help="the chain to sign for (default: ask the node)")
    if json_flag:
        parser.add_argument("--json", dest="json_out", action="store_true", default=default(False),
                            help="print exactly one JSON document on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hcwallet", description="Keys, transactions, proofs and queries for an hcnode chain. "
                     "The passphrase comes from $HCWALLET_PASSPHRASE or a prompt.")
    _add_global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    groups: dict[str, Any] = {}
    for name, cmd in COMMANDS.items():
        *group, last = name.split()
        container = commands
        if group:
            key = " ".join(group)
            if key not in groups:
                group_parser = container.add_parser(key, help=GROUP_HELP.get(key, f"{key} commands"))
                groups[key] = group_parser.add_subparsers(dest=f"{key}_command", metavar="SUBCOMMAND",
                                                          required=True)
            container = groups[key]
        sub = container.add_parser(last, help=cmd.help, description=cmd.help)
        for a in cmd.args:
            sub.add_argument(*a.flags, **a.options)
        _add_global_options(sub, top=False, json_flag=cmd.json_flag)
        sub.set_defaults(command=cmd)
    return parser


def _emit(out: Output, json_out: bool) -> None:
    if json_out:
        print(json.dumps(out.data, indent=2))
    else:
        lines = out.lines if out.lines is not None else render(out.data)
        print("\n".join(lines))
    if out.note:
        print(f"hcwallet: {out.note}", file=sys.stderr)


def _fail(message: str, exit_code: int, json_out: bool) -> int:
    print(f"hcwallet: {message}", file=sys.stderr)
    if json_out:
        print(json.dumps({"error": message, "exit_code": exit_code}))
    return exit_code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except WalletError as exc:
        return _fail(exc.message, exc.exit_code, False)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    json_out = bool(args.json_out)
    ctx = Context(args)
    try:
        out = args.command.run(ctx, args)
    except WalletError as exc:
        return _fail(exc.message, exc.exit_code, json_out)
    except KeystoreError as exc:
        return _fail(str(exc), EXIT_USAGE, json_out)
    except RpcCallError as exc:
        return _fail(str(exc), EXIT_FAILED, json_out)
    except ConnectionError as exc:
        return _fail(str(exc), EXIT_USAGE, json_out)
    except TimeoutError:
        return _fail(f"the node at {ctx.socket} did not answer in time", EXIT_USAGE, json_out)
    except OSError as exc:
        return _fail(f"talking to the node at {ctx.socket} failed: {exc.strerror or exc}", EXIT_USAGE, json_out)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, json_out)
    finally:
        ctx.close()
    _emit(out, json_out)
    return int(out.exit_code)


# App command groups register themselves in COMMANDS when imported (after everything above exists).
from hcnode.wallet import drugs as _drugs_commands  # noqa: E402,F401

GROUP_HELP["drugs"] = "drug traceability: verify packs, trails, EPCIS import and export"

if __name__ == "__main__":
    # Run the imported module's main: app command groups registered into *its* COMMANDS table.
    from hcnode.wallet.cli import main as _imported_main

    raise SystemExit(_imported_main())
