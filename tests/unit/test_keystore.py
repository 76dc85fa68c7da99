"""The encrypted keystore: round trip, wrong passphrase, tampered files, file modes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import nacl.pwhash
import pytest

from hcnode.wallet.keystore import Keystore, KeystoreError, StoredKey
from tests.unit.chainkit import key

FAST = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)  # tests only


def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keys", kdf=FAST)


def test_saved_key_loads_back_with_its_passphrase(tmp_path: Path) -> None:
    ks = store(tmp_path)
    stored = ks.save("alice", key(11), "correct horse")
    assert stored == StoredKey("alice", key(11).public, tmp_path / "keys" / "alice.json")
    loaded = ks.load("alice", "correct horse")
    assert loaded.secret == key(11).secret and loaded.public == key(11).public
    assert ks.public("alice") == key(11).public
    assert ks.list() == [stored]


def test_file_holds_no_secret_in_clear(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ks.save("alice", key(11), "pw")
    text = (tmp_path / "keys" / "alice.json").read_text()
    assert key(11).secret.hex() not in text
    document = json.loads(text)
    assert document["public"] == key(11).public.hex()
    assert document["kdf"]["alg"] == "argon2id" and document["cipher"]["alg"] == "xchacha20poly1305-ietf"


def test_created_keys_are_fresh_and_load(tmp_path: Path) -> None:
    ks = store(tmp_path)
    a, b = ks.create("a", "pw"), ks.create("b", "pw")
    assert a.public != b.public
    assert ks.load("b", "pw").public == b.public
    assert [s.name for s in ks.list()] == ["a", "b"]


def test_wrong_passphrase_fails(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ks.save("alice", key(11), "right")
    for wrong in ("wrong", "", "right ", "Right"):
        with pytest.raises(KeystoreError, match="wrong passphrase, or the file was altered"):
            ks.load("alice", wrong)


def _tamper(path: Path, **changes: object) -> None:
    document = json.loads(path.read_text())
    for dotted, value in changes.items():
        target = document
        *parents, last = dotted.split("__")
        for p in parents:
            target = target[p]
        target[last] = value
    path.write_text(json.dumps(document))


def test_file_with_the_public_key_swapped_fails_to_open(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ks.save("alice", key(11), "pw")
    _tamper(tmp_path / "keys" / "alice.json", public=key(12).public.hex())
    assert ks.public("alice") == key(12).public  # listing trusts the clear part ...
    with pytest.raises(KeystoreError, match="wrong passphrase, or the file was altered"):
        ks.load("alice", "pw")  # ... but the key never opens under the swapped public key


def test_file_with_the_name_changed_fails_to_open(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ks.save("alice", key(11), "pw")
    _tamper(tmp_path / "keys" / "alice.json", name="mallory")
    with pytest.raises(KeystoreError, match="wrong passphrase, or the file was altered"):
        ks.load("alice", "pw")


@pytest.mark.parametrize("field", ["cipher__ciphertext", "cipher__nonce", "kdf__salt"])
def test_altered_ciphertext_nonce_or_salt_fails(tmp_path: Path, field: str) -> None:
    ks = store(tmp_path)
    ks.save("alice", key(11), "pw")
    path = tmp_path / "keys" / "alice.json"
    parent, leaf = field.split("__")
    value = json.loads(path.read_text())[parent][leaf]
    flipped = ("0" if value[0] != "0" else "1") + value[1:]
    _tamper(path, **{field: flipped})
    with pytest.raises(KeystoreError, match="wrong passphrase, or the file was altered"):
        ks.load("alice", "pw")


@pytest.mark.xfail(strict=True, reason="BUG: Keystore.load (keystore.py:114-133) authenticates the name stored in the "
                                       "file, never that it equals the name asked for, so a copy of alice.json saved "
                                       "as bob.json loads as 'bob' and returns alice's key; the name in the AEAD's "
                                       "associated data protects nothing until load checks document['name'] == name")
def test_key_file_copied_under_another_name_does_not_load(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ks.save("alice", key(11), "pw")
    (tmp_path / "keys" / "bob.json").write_bytes((tmp_path / "keys" / "alice.json").read_bytes())
    with pytest.raises(KeystoreError):
        ks.load("bob", "pw")


def test_key_file_is_mode_0600_in_a_0700_directory(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ks.save("alice", key(11), "pw")
    assert stat.S_IMODE((tmp_path / "keys" / "alice.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert not list((tmp_path / "keys").glob("*.tmp"))


def test_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ks.save("alice", key(11), "pw")
    with pytest.raises(KeystoreError, match="already exists"):
        ks.save("alice", key(12), "pw")
    assert ks.load("alice", "pw").public == key(11).public


@pytest.mark.parametrize("name", ["Alice", "../evil", "a/b", "", ".hidden", "-x", "a" * 65, "a b"])
def test_bad_key_names_are_refused(tmp_path: Path, name: str) -> None:
    ks = store(tmp_path)
    with pytest.raises(KeystoreError, match="key name"):
        ks.save(name, key(11), "pw")
    with pytest.raises(KeystoreError, match="key name"):
        ks.load(name, "pw")
    assert not (tmp_path / "keys").exists() or not list((tmp_path / "keys").iterdir())


def test_missing_or_malformed_files_are_keystore_errors(tmp_path: Path) -> None:
    ks = store(tmp_path)
    assert ks.list() == []
    with pytest.raises(KeystoreError, match="no key file"):
        ks.load("ghost", "pw")
    (tmp_path / "keys").mkdir()
    path = tmp_path / "keys" / "junk.json"
    for content in ("not json", "[]", '{"version": 2}', '{"version": 1}', '{"version": 1, "public": "zz"}'):
        path.write_text(content)
        with pytest.raises(KeystoreError):
            ks.load("junk", "pw")
    ks.save("alice", key(11), "pw")
    _tamper(tmp_path / "keys" / "alice.json", kdf__opslimit="many")
    with pytest.raises(KeystoreError, match="malformed keystore file"):
        ks.load("alice", "pw")


def test_list_reports_a_malformed_file(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ks.save("alice", key(11), "pw")
    (tmp_path / "keys" / "broken.json").write_text("{")
    with pytest.raises(KeystoreError, match="not a keystore file"):
        ks.list()
