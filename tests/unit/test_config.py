"""The TOML config loader: a good file, and every typo, wrong type and bad value named by its key."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcnode.config import BlockParams, ConfigError, Limits, load_config, parse_config
from tests.unit.chainkit import key

PATH = Path("/srv/hcnode/conf/node.toml")
K1, K2, K3, K4 = (key(n).public.hex() for n in (101, 102, 103, 104))

GOOD = f"""
chain_id = "hc-test.1"
data_dir = "../data"
socket = "node.sock"
log_level = "debug"

[node]
key_file = "keys/node.key"
verify_workers = 4

[block]
max_txs = 100
max_bytes = 1048576
interval_ms = 50

[limits]
max_tx_bytes = 65536
mempool_txs = 1000

[genesis]
time = 2026-01-01T00:00:00Z
admins = ["{K1}", "{K2}"]
admin_threshold = 2
validators = ["{K3}"]

[[genesis.orgs]]
id = "st-mary"
name = "St Mary's Hospital"
kind = "hospital"
admins = ["{K4}"]
"""


def parse(text: str) -> object:
    return parse_config(text, PATH)


def error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, PATH)
    return str(info.value)


def edit(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def add_after(header: str, line: str, text: str = GOOD) -> str:
    return edit(header + "\n", header + "\n" + line + "\n", text)


# --- the good file -----------------------------------------------------------------------------------


def test_good_config_parses_with_paths_relative_to_the_file() -> None:
    config = parse_config(GOOD, PATH)
    assert config.chain_id == "hc-test.1"
    assert config.data_dir == Path("/srv/hcnode/data")
    assert config.socket == Path("/srv/hcnode/data/node.sock")
    assert config.key_file == Path("/srv/hcnode/data/keys/node.key")
    assert (config.verify_workers, config.dev_keys, config.log_level) == (4, False, "debug")
    assert config.block == BlockParams(max_txs=100, max_bytes=1048576, interval_ms=50)
    assert config.limits == Limits(max_tx_bytes=65536, mempool_txs=1000)
    g = config.genesis
    assert g.time_ms == 1_767_225_600_000
    assert (g.admins, g.admin_threshold, g.validators) == ((K1, K2), 2, (K3,))
    assert [(o.id, o.name, o.kind, o.admins) for o in g.orgs] == [("st-mary", "St Mary's Hospital", "hospital", (K4,))]


def test_minimal_config_takes_the_defaults() -> None:
    text = f"""
chain_id = "c"
data_dir = "d"
[genesis]
time = 2026-01-01T00:00:00+01:00
admins = ["{K1}"]
admin_threshold = 1
validators = ["{K1}"]
"""
    config = parse_config(text, PATH)
    assert config.block == BlockParams() and config.limits == Limits()
    assert config.socket.name == "hcnode.sock" and config.key_file.name == "node.key"
    assert (config.verify_workers, config.dev_keys, config.log_level) == (1, False, "info")
    assert config.genesis.orgs == ()
    assert config.genesis.time_ms == 1_767_225_600_000 - 3_600_000


def test_the_shipped_dev_config_parses() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "configs" / "dev.toml")
    assert config.dev_keys is True and config.genesis.admins == ("dev:admin",)


# --- typos: unknown keys anywhere ---------------------------------------------------------------------


@pytest.mark.parametrize("header, line, name", [
    ("log_level = \"debug\"", "chain-id = \"x\"", "chain-id"),
    ("[node]", "verify_worker = 2", "node.verify_worker"),
    ("[block]", "max_tx = 5", "block.max_tx"),
    ("[block]", "interval = 5", "block.interval"),
    ("[limits]", "max_tx_size = 5", "limits.max_tx_size"),
    ("[limits]", "mempool = 5", "limits.mempool"),
    ("[genesis]", "threshold = 2", "genesis.threshold"),
    ("kind = \"hospital\"", "admin = [\"x\"]", "genesis.orgs[0].admin"),
])
def test_config_typo_is_rejected_naming_the_key(header: str, line: str, name: str) -> None:
    message = error(add_after(header, line))
    assert message.startswith(f"{name}: unknown key (allowed here: ")


def test_unknown_table_and_dev_typo_are_rejected() -> None:
    assert error(GOOD + "\n[blocks]\nmax_txs = 1\n").startswith("blocks: unknown key")
    assert error(GOOD + "\n[dev]\nkey = true\n").startswith("dev.key: unknown key (allowed here: keys)")


def test_unknown_key_lists_the_allowed_ones() -> None:
    message = error(add_after("[block]", "max_tx = 5"))
    assert message == "block.max_tx: unknown key (allowed here: interval_ms, max_bytes, max_txs)"


def test_typo_in_a_second_org_names_its_index() -> None:
    second = f'\n[[genesis.orgs]]\nid = "lab"\nname = "Lab"\nkind = "lab"\nadmins = ["{key(105).public.hex()}"]\nkindd = "x"\n'
    assert error(GOOD + second).startswith("genesis.orgs[1].kindd: unknown key")


# --- wrong types ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("old, new, expected", [
    ("max_txs = 100", 'max_txs = "100"', "block.max_txs: expected an integer, got a string '100'"),
    ("max_txs = 100", "max_txs = 100.0", "block.max_txs: expected an integer, got a float 100.0"),
    ("max_txs = 100", "max_txs = true", "block.max_txs: expected an integer, got a boolean True"),
    ("mempool_txs = 1000", "mempool_txs = [1]", "limits.mempool_txs: expected an integer, got a list [1]"),
    ("verify_workers = 4", "verify_workers = false", "node.verify_workers: expected an integer, got a boolean False"),
    ('chain_id = "hc-test.1"', "chain_id = 7", "chain_id: expected a string, got an integer 7"),
    ('data_dir = "../data"', "data_dir = 1", "data_dir: expected a string, got an integer 1"),
    ('log_level = "debug"', "log_level = 2", "log_level: expected a string, got an integer 2"),
    ("admin_threshold = 2", 'admin_threshold = "2"', "genesis.admin_threshold: expected an integer, got a string"),
    (f'validators = ["{K3}"]', f'validators = "{K3}"', "genesis.validators: expected a list, got a string"),
    (f'admins = ["{K1}", "{K2}"]', f'admins = ["{K1}", 2]', "genesis.admins[1]: expected a string, got an integer"),
    ('name = "St Mary\'s Hospital"', "name = 5", "genesis.orgs[0].name: expected a string, got an integer"),
    ("time = 2026-01-01T00:00:00Z", 'time = "2026-01-01T00:00:00Z"', "genesis.time: expected an offset date-time"),
    ("time = 2026-01-01T00:00:00Z", "time = 2026-01-01", "genesis.time: expected an offset date-time"),
    ("time = 2026-01-01T00:00:00Z", "time = 2026-01-01T00:00:00", "genesis.time: give a time zone"),
])
def test_wrong_type_is_rejected_naming_the_key(old: str, new: str, expected: str) -> None:
    assert error(edit(old, new)).startswith(expected)


def test_tables_that_are_not_tables_are_rejected() -> None:
    without_block = edit("[block]\nmax_txs = 100\nmax_bytes = 1048576\ninterval_ms = 50\n", "")
    assert error("block = 5\n" + without_block) == "block: expected a table, got an integer"
    without_orgs = edit('[[genesis.orgs]]\nid = "st-mary"\nname = "St Mary\'s Hospital"\nkind = "hospital"\n'
                        f'admins = ["{K4}"]\n', "orgs = [1]\n")
    assert error(without_orgs) == "genesis.orgs[0]: expected a table, got an integer"
    assert error(edit("[[genesis.orgs]]", "orgs = 1\n[[other]]")) == "genesis.orgs: expected a list, got an integer 1"


def test_missing_required_keys_are_named() -> None:
    assert error(edit('chain_id = "hc-test.1"\n', "")) == "chain_id: missing (required)"
    assert error(edit('data_dir = "../data"\n', "")) == "data_dir: missing (required)"
    assert error(edit("admin_threshold = 2\n", "")) == "genesis.admin_threshold: missing (required)"
    assert error(edit(f'validators = ["{K3}"]\n', "")) == "genesis.validators: missing (required)"
    assert error(edit('kind = "hospital"\n', "")) == "genesis.orgs[0].kind: missing (required)"
    assert error(edit("time = 2026-01-01T00:00:00Z\n", "")).startswith("genesis.time: expected an offset date-time")


def test_invalid_toml_is_a_config_error_naming_the_file() -> None:
    message = error("chain_id = \n")
    assert message.startswith(f"{PATH}: not valid TOML")


# --- bad values -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("old, new, expected", [
    ('chain_id = "hc-test.1"', 'chain_id = "HC"', "chain_id: use lower-case"),
    ('chain_id = "hc-test.1"', 'chain_id = ""', "chain_id: use lower-case"),
    ('chain_id = "hc-test.1"', f'chain_id = "{"c" * 65}"', "chain_id: use lower-case"),
    ('log_level = "debug"', 'log_level = "verbose"', "log_level: must be debug, info, warning or error"),
    ("verify_workers = 4", "verify_workers = 65", "node.verify_workers: must be between 0"),
    ("verify_workers = 4", "verify_workers = -1", "node.verify_workers: must be between 0"),
    ("max_txs = 100", "max_txs = 0", "block.max_txs: must be greater than 0"),
    ("interval_ms = 50", "interval_ms = -5", "block.interval_ms: must be greater than 0"),
    ("mempool_txs = 1000", "mempool_txs = 0", "limits.mempool_txs: must be greater than 0"),
    ("max_tx_bytes = 65536", "max_tx_bytes = 2000000", "limits.max_tx_bytes: larger than block.max_bytes"),
    ('id = "st-mary"', 'id = "St Mary"', "genesis.orgs[0].id: use lower-case letters"),
    ('kind = "hospital"', 'kind = "bakery"', "genesis.orgs[0].kind: 'bakery' is not one of manufacturer"),
    ('name = "St Mary\'s Hospital"', 'name = ""', "genesis.orgs[0].name: 1 to 128 characters"),
])
def test_bad_values_are_rejected_naming_the_key(old: str, new: str, expected: str) -> None:
    assert error(edit(old, new)).startswith(expected)


@pytest.mark.parametrize("threshold", [0, 3, -1])
def test_threshold_out_of_range_is_rejected(threshold: int) -> None:
    assert error(edit("admin_threshold = 2", f"admin_threshold = {threshold}")) == (
        "genesis.admin_threshold: must be between 1 and the number of admins (2)")


@pytest.mark.parametrize("bad", [
    "04" + "ab" * 32,  # uncompressed prefix
    "02" + "ab" * 31,  # too short
    "02" + "ab" * 33,  # too long
    "02" + "AB" * 32,  # upper case
    "0x02" + "ab" * 32,
    "dev:Admin",
    "dev:",
    "admin",
])
def test_bad_keys_are_rejected_naming_the_key_and_index(bad: str) -> None:
    message = error(edit(f'admins = ["{K1}", "{K2}"]', f'admins = ["{K1}", "{bad}"]'))
    assert message == (f"genesis.admins[1]: {bad!r} is neither a 33-byte compressed public key in hex "
                       "nor a dev:NAME reference")


def test_duplicate_and_missing_keys_are_rejected() -> None:
    assert error(edit(f'admins = ["{K1}", "{K2}"]', f'admins = ["{K1}", "{K1}"]')) == (
        "genesis.admins: a key is listed twice")
    assert error(edit(f'validators = ["{K3}"]', "validators = []")) == "genesis.validators: needs at least 1 key(s)"
    assert error(edit(f'admins = ["{K4}"]', "admins = []")) == "genesis.orgs[0].admins: needs at least 1 key(s)"


def test_a_key_given_to_two_identities_is_rejected() -> None:
    message = error(edit(f'admins = ["{K4}"]', f'admins = ["{K1}"]'))
    assert message.startswith(f"genesis: key {K1} is given to two identities")


def test_an_org_id_used_twice_is_rejected() -> None:
    second = f'\n[[genesis.orgs]]\nid = "st-mary"\nname = "Again"\nkind = "clinic"\nadmins = ["{key(105).public.hex()}"]\n'
    assert error(GOOD + second) == "genesis.orgs: an organisation id is used twice"


@pytest.mark.xfail(strict=True, reason="BUG: config._key_ref (config.py:132-135) checks hex keys only by pattern: "
                                       "'02' + 64 hex digits that are not a curve point passes parse_config, so a "
                                       "mistyped key is only found when genesis is built (a Rejected('bad_key') "
                                       "without the config key's name), or never for validators")
def test_hex_key_that_is_not_a_curve_point_is_rejected_naming_the_key() -> None:
    not_a_point = "02" + "ff" * 32
    message = error(edit(f'validators = ["{K3}"]', f'validators = ["{not_a_point}"]'))
    assert message.startswith("genesis.validators[0]:")


def test_dev_refs_need_dev_keys_true() -> None:
    text = edit(f'validators = ["{K3}"]', 'validators = ["dev:node"]')
    assert error(text) == "genesis: dev:NAME keys need [dev] keys = true (never on a real chain)"
    assert error(edit(f'admins = ["{K4}"]', 'admins = ["dev:mary"]')).startswith("genesis: dev:NAME keys need")
    assert error(text + "\n[dev]\nkeys = false\n").startswith("genesis: dev:NAME keys need")
    config = parse_config(text + "\n[dev]\nkeys = true\n", PATH)
    assert config.dev_keys is True and config.genesis.validators == ("dev:node",)
    assert error(text + '\n[dev]\nkeys = "yes"\n') == "dev.keys: expected a boolean, got a string 'yes'"


def test_socket_path_too_long_for_unix_sockets_is_rejected() -> None:
    message = error(edit('socket = "node.sock"', f'socket = "{"s" * 90}.sock"'))
    assert message.startswith("socket: path") and "100 characters" in message


# --- genesis time --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, ms", [
    ("2026-01-01T00:00:00Z", 1_767_225_600_000),
    ("2026-01-01T00:00:00.5Z", 1_767_225_600_500),
    ("1970-01-01T00:00:00Z", 0),
    ("2025-12-31T23:00:00-01:00", 1_767_225_600_000),
])
def test_genesis_time_is_milliseconds_since_the_epoch(text: str, ms: int) -> None:
    assert parse(edit("time = 2026-01-01T00:00:00Z", f"time = {text}")).genesis.time_ms == ms  # type: ignore[attr-defined]


@pytest.mark.xfail(strict=True, reason="BUG: config._parse_time (config.py:157) computes int(value.timestamp() * 1000) "
                                       "in floating point, so about 0.6% of millisecond times lose a millisecond, e.g. "
                                       "2004-03-15T07:55:47.472Z gives 1079337347471; the chain's identity then "
                                       "commits to a time other than the one written. Use integer arithmetic: "
                                       "(value - EPOCH) // timedelta(milliseconds=1)")
def test_genesis_time_with_milliseconds_is_exact() -> None:
    assert parse(edit("time = 2026-01-01T00:00:00Z",
                      "time = 2004-03-15T07:55:47.472Z")).genesis.time_ms == 1_079_337_347_472  # type: ignore[attr-defined]


@pytest.mark.xfail(strict=True, reason="BUG: config._parse_time float rounding (see test_genesis_time_with_milliseconds_is_exact)")
@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.integers(0, 4_102_444_800_000))
def test_any_millisecond_genesis_time_round_trips(ms: int) -> None:
    when = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=ms)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    assert parse(edit("time = 2026-01-01T00:00:00Z", f"time = {stamp}")).genesis.time_ms == ms  # type: ignore[attr-defined]


# --- the file --------------------------------------------------------------------------------------------


def test_load_config_reads_a_file_and_names_unreadable_ones(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_config(path).data_dir == (tmp_path / "../data").resolve()
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    path.write_bytes(b"chain_id = \"\xff\"\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)
    assert os.path.exists(path)
