"""The one config loader: a TOML file (stdlib ``tomllib``) into a checked ``Config``.

Owns: the config file's keys, types, defaults and the resolution of relative
paths (relative to the file's directory). Must not create anything: dev keys
referenced as ``dev:NAME`` are resolved by the node at start-up.

Every unknown key and every wrong type is rejected with ``ConfigError`` naming
the key (``block.max_txs: expected an integer, got "100"``), so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import multiaddr

__all__ = ["Config", "ConfigError", "BlockParams", "Limits", "P2PParams", "ConsensusParams", "GenesisSpec", "OrgSpec", "load_config",
           "parse_config"]

DEV_REF = re.compile(r"dev:[a-z0-9][a-z0-9-]*")
HEX_KEY = re.compile(r"0[23][0-9a-f]{64}")
ORG_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
CHAIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class ConfigError(ValueError):
    """A config file that cannot be used, with the key that is wrong."""


@dataclass(frozen=True)
class BlockParams:
    max_txs: int = 5000
    max_bytes: int = 8 * 1024 * 1024
    interval_ms: int = 100


@dataclass(frozen=True)
class Limits:
    max_tx_bytes: int = 64 * 1024
    mempool_txs: int = 200_000
    rpc_line_bytes: int = 32 * 1024 * 1024
    rpc_connections: int = 64
    rpc_batch_txs: int = 20_000
    tx_wait_max_ms: int = 60_000


@dataclass(frozen=True)
class P2PParams:
    """The ``[p2p]`` table: where to listen, whom to dial, and the limits on what peers may send.

    Without a ``[p2p]`` table the node runs without networking (a one-node chain).
    """

    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    bootstrap: tuple[str, ...] = ()
    mdns: bool = False
    max_frame_bytes: int = 16 * 1024 * 1024
    validators_only_raft: bool = True
    send_queue_frames: int = 4096
    sync_max_blocks: int = 64
    request_timeout_ms: int = 10_000
    gossip_max_batch_txs: int = 2000
    gossip_max_batch_bytes: int = 768 * 1024
    gossip_max_msgs_per_s: int = 500
    gossip_inbound_batches: int = 1024


@dataclass(frozen=True)
class ConsensusParams:
    """The ``[consensus]`` table (used only with ``[p2p]``). 50 ms ticks and a 10-tick election
    timeout make a follower campaign 0.5..1 s after its leader dies, so a new leader commits within 2 s.
    ``log_keep_entries`` applied Raft entries are kept for slow followers; one further behind
    catches up by block sync."""

    tick_ms: int = 50
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    log_keep_entries: int = 1000


@dataclass(frozen=True)
class OrgSpec:
    id: str
    name: str
    kind: str
    admins: tuple[str, ...]


@dataclass(frozen=True)
class GenesisSpec:
    """Genesis as written in the file: keys may still be ``dev:NAME`` references."""

    time_ms: int
    admin_threshold: int
    admins: tuple[str, ...]
    validators: tuple[str, ...]
    orgs: tuple[OrgSpec, ...]


@dataclass(frozen=True)
class Config:
    path: Path
    chain_id: str
    data_dir: Path
    socket: Path
    key_file: Path
    verify_workers: int
    dev_keys: bool
    log_level: str
    block: BlockParams
    limits: Limits
    genesis: GenesisSpec
    p2p: P2PParams | None = None
    consensus: ConsensusParams = ConsensusParams()
    extra: dict[str, Any] = field(default_factory=dict)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", str: "a string", list: "a list", dict: "a table",
            float: "a float"}.get(type(value), type(value).__name__)


class _Table:
    """Reads one TOML table, remembering which keys were used so the rest can be reported."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where or 'file'}: expected a table, got {_type_name(data)}")
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type, default: Any = ..., *, check: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise ConfigError(f"{self._name(key)}: missing (required)")
            return default
        value = self.data[key]
        if type(value) is not kind:
            raise ConfigError(f"{self._name(key)}: expected {_type_name(kind())}, got {_type_name(value)} {value!r}")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(f"{self._name(key)}: {problem}")
        return value

    def table(self, key: str) -> _Table:
        self.used.add(key)
        return _Table(self.data.get(key, {}), self._name(key))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self._name(unknown[0])}: unknown key (allowed here: {', '.join(sorted(self.used))})")


def _positive(value: int) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _key_ref(value: str) -> str | None:
    if DEV_REF.fullmatch(value):
        return None
    if HEX_KEY.fullmatch(value):
        from hcnode.crypto import public_key_ok

        return None if public_key_ok(bytes.fromhex(value)) else f"{value!r} is not a point on secp256k1"
    return f"{value!r} is neither a 33-byte compressed public key in hex nor a dev:NAME reference"


def _key_list(table: _Table, key: str, *, min_items: int) -> tuple[str, ...]:
    values = table.get(key, list)
    if len(values) < min_items:
        raise ConfigError(f"{table._name(key)}: needs at least {min_items} key(s)")
    for i, value in enumerate(values):
        if type(value) is not str:
            raise ConfigError(f"{table._name(key)}[{i}]: expected a string, got {_type_name(value)}")
        problem = _key_ref(value)
        if problem:
            raise ConfigError(f"{table._name(key)}[{i}]: {problem}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{table._name(key)}: a key is listed twice")
    return tuple(values)


def _multiaddr_list(table: _Table, key: str, *, need_peer_id: bool) -> tuple[str, ...]:
    values = table.get(key, list, [])
    for i, value in enumerate(values):
        name = f"{table._name(key)}[{i}]"
        if type(value) is not str:
            raise ConfigError(f"{name}: expected a string, got {_type_name(value)}")
        try:
            addr = multiaddr.Multiaddr(value)
        except Exception as exc:  # the multiaddr package raises several types; all mean "not an address"
            raise ConfigError(f"{name}: {value!r} is not a multiaddr ({exc})") from None
        protocols = [p.name for p in addr.protocols()]
        if "tcp" not in protocols:
            raise ConfigError(f"{name}: {value!r} has no /tcp/PORT (only TCP is supported)")
        if need_peer_id and "p2p" not in protocols:
            raise ConfigError(f"{name}: {value!r} needs the peer's id at the end (/p2p/<peer id>)")
        if not need_peer_id and "p2p" in protocols:
            raise ConfigError(f"{name}: {value!r}: a listen address has no /p2p/ part")
    if len(set(values)) != len(values):
        raise ConfigError(f"{table._name(key)}: an address is listed twice")
    return tuple(values)


def _parse_p2p(root: _Table, block: BlockParams) -> P2PParams | None:
    if "p2p" not in root.data:
        root.used.add("p2p")
        return None
    p2p = root.table("p2p")
    ints = {name: p2p.get(name, int, getattr(P2PParams, name), check=_positive)
            for name in ("max_frame_bytes", "send_queue_frames", "sync_max_blocks", "request_timeout_ms",
                         "gossip_max_batch_txs", "gossip_max_batch_bytes", "gossip_max_msgs_per_s",
                         "gossip_inbound_batches")}
    listen = _multiaddr_list(p2p, "listen", need_peer_id=False) if "listen" in p2p.data else P2PParams.listen
    if not listen:
        raise ConfigError("p2p.listen: needs at least one address")
    params = P2PParams(
        listen=listen,
        bootstrap=_multiaddr_list(p2p, "bootstrap", need_peer_id=True),
        mdns=p2p.get("mdns", bool, False),
        validators_only_raft=p2p.get("validators_only_raft", bool, True),
        **ints,
    )
    p2p.done()
    if params.max_frame_bytes < block.max_bytes + 64 * 1024:
        raise ConfigError(f"p2p.max_frame_bytes: must be at least block.max_bytes + 64 KiB "
                          f"({block.max_bytes + 64 * 1024}) so that one block fits in a sync frame")
    if params.gossip_max_batch_bytes > 960 * 1024:
        raise ConfigError("p2p.gossip_max_batch_bytes: at most 983040 (960 KiB): gossipsub drops RPCs over 1 MiB")
    return params


def _parse_time(value: Any, name: str) -> int:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ConfigError(f"{name}: give a time zone (e.g. 2026-01-01T00:00:00Z)")
        # integer arithmetic: float seconds * 1000 loses a millisecond for some times
        return (value - EPOCH) // datetime.timedelta(milliseconds=1)
    raise ConfigError(f"{name}: expected an offset date-time like 2026-01-01T00:00:00Z, got {_type_name(value)}")


def parse_config(text: str, path: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    from hcnode.apps.registry import ORG_KINDS

    base = path.parent
    root = _Table(data, "")
    chain_id = root.get("chain_id", str, check=lambda v: None if CHAIN_ID.fullmatch(v) else
                        "use lower-case letters, digits, '.', '_' or '-' (at most 64)")
    data_dir = (base / root.get("data_dir", str)).resolve()
    socket = data_dir / root.get("socket", str, "hcnode.sock")
    if len(str(socket)) > 100:
        raise ConfigError(f"socket: path {socket} is longer than a Unix socket allows (100 characters)")
    log_level = root.get("log_level", str, "info",
                         check=lambda v: None if v in ("debug", "info", "warning", "error") else
                         "must be debug, info, warning or error")

    node = root.table("node")
    key_file = data_dir / node.get("key_file", str, "node.key")
    verify_workers = node.get("verify_workers", int, 1, check=lambda v: None if 0 <= v <= 64 else
                              "must be between 0 (verify in the main process) and 64")
    node.done()

    dev = root.table("dev")
    dev_keys = dev.get("keys", bool, False)
    dev.done()

    blk = root.table("block")
    block = BlockParams(
        max_txs=blk.get("max_txs", int, BlockParams.max_txs, check=_positive),
        max_bytes=blk.get("max_bytes", int, BlockParams.max_bytes, check=_positive),
        interval_ms=blk.get("interval_ms", int, BlockParams.interval_ms, check=_positive),
    )
    blk.done()

    lim = root.table("limits")
    limits = Limits(**{name: lim.get(name, int, getattr(Limits, name), check=_positive)
                       for name in Limits.__dataclass_fields__})
    lim.done()
    if limits.max_tx_bytes > block.max_bytes:
        raise ConfigError("limits.max_tx_bytes: larger than block.max_bytes, so such a transaction could never commit")

    gen = root.table("genesis")
    time_ms = _parse_time(gen.data.get("time"), "genesis.time")
    gen.used.add("time")
    admins = _key_list(gen, "admins", min_items=1)
    threshold = gen.get("admin_threshold", int, check=lambda v: None if 1 <= v <= len(admins) else
                        f"must be between 1 and the number of admins ({len(admins)})")
    validators = _key_list(gen, "validators", min_items=1)
    orgs = []
    raw_orgs = gen.get("orgs", list, [])
    for i, raw in enumerate(raw_orgs):
        org = _Table(raw, f"genesis.orgs[{i}]")
        orgs.append(OrgSpec(
            id=org.get("id", str, check=lambda v: None if ORG_ID.fullmatch(v) else
                       "use lower-case letters, digits and '-' (at most 48)"),
            name=org.get("name", str, check=lambda v: None if 0 < len(v) <= 128 else "1 to 128 characters"),
            kind=org.get("kind", str, check=lambda v: None if v in ORG_KINDS else
                         f"{v!r} is not one of {', '.join(ORG_KINDS)}"),
            admins=_key_list(org, "admins", min_items=1),
        ))
        org.done()
    if len({o.id for o in orgs}) != len(orgs):
        raise ConfigError("genesis.orgs: an organisation id is used twice")
    identity_keys = list(admins) + [key for org in orgs for key in org.admins]
    reused = sorted({key for key in identity_keys if identity_keys.count(key) > 1})
    if reused:
        raise ConfigError(f"genesis: key {reused[0]} is given to two identities (consortium admins and "
                          "organisation admins each need their own key)")
    gen.done()
    p2p = _parse_p2p(root, block)
    cons = root.table("consensus")
    consensus = ConsensusParams(**{name: cons.get(name, int, getattr(ConsensusParams, name), check=_positive)
                                   for name in ConsensusParams.__dataclass_fields__})
    cons.done()
    if consensus.heartbeat_ticks >= consensus.election_ticks:
        raise ConfigError("consensus.heartbeat_ticks: must be less than consensus.election_ticks")
    root.done()
    uses_dev = any(ref.startswith("dev:") for ref in admins + validators + tuple(a for o in orgs for a in o.admins))
    if uses_dev and not dev_keys:
        raise ConfigError("genesis: dev:NAME keys need [dev] keys = true (never on a real chain)")
    return Config(
        path=path,
        chain_id=chain_id,
        data_dir=data_dir,
        socket=socket,
        key_file=key_file,
        verify_workers=verify_workers,
        dev_keys=dev_keys,
        log_level=log_level,
        block=block,
        limits=limits,
        genesis=GenesisSpec(time_ms, threshold, admins, validators, tuple(orgs)),
        p2p=p2p,
        consensus=consensus,
    )


def load_config(path: str | Path) -> Config:
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(text, path)
