"""The encrypted keystore: one JSON file per key, sealed with a passphrase.

Owns: key files on disk. Must not know the chain or the node.

Each file holds the public key in clear (to list keys without the passphrase)
and the 32-byte secret sealed with XChaCha20-Poly1305 under a key derived by
Argon2id (memory-hard) from the passphrase and a random salt, both from
libsodium via PyNaCl. The public key and name are the AEAD's associated data,
so a file whose public part was swapped fails to open. Files are written with
mode 0600 in a directory of mode 0700, atomically (write, fsync, rename).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings as sodium
import nacl.exceptions
import nacl.pwhash
import nacl.utils

from hcnode.crypto import CryptoError, PrivateKey

__all__ = ["Keystore", "KeystoreError", "StoredKey", "KDF_INTERACTIVE", "KDF_MODERATE"]

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
KDF_INTERACTIVE = (nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE)
KDF_MODERATE = (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE)


class KeystoreError(Exception):
    """A key file that is missing, malformed, or does not open with this passphrase."""


@dataclass(frozen=True)
class StoredKey:
    name: str
    public: bytes
    path: Path


def _derive(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(32, passphrase.encode("utf-8"), salt, opslimit=ops, memlimit=mem)


class Keystore:
    def __init__(self, directory: str | Path, kdf: tuple[int, int] = KDF_INTERACTIVE) -> None:
        self.directory = Path(directory)
        self.kdf = kdf

    def _path(self, name: str) -> Path:
        if not NAME.fullmatch(name):
            raise KeystoreError(f"key name {name!r}: use lower-case letters, digits, '.', '_' or '-'")
        return self.directory / f"{name}.json"

    def save(self, name: str, key: PrivateKey, passphrase: str) -> StoredKey:
        path = self._path(name)
        if path.exists():
            raise KeystoreError(f"a key named {name!r} already exists at {path}")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        ops, mem = self.kdf
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        nonce = nacl.utils.random(sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
        aad = name.encode() + b"\x00" + key.public
        sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            key.secret, aad, nonce, _derive(passphrase, salt, ops, mem))
        document = {
            "version": 1,
            "name": name,
            "public": key.public.hex(),
            "kdf": {"alg": "argon2id", "opslimit": ops, "memlimit": mem, "salt": salt.hex()},
            "cipher": {"alg": "xchacha20poly1305-ietf", "nonce": nonce.hex(), "ciphertext": sealed.hex()},
        }
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(document, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return StoredKey(name, key.public, path)

    def create(self, name: str, passphrase: str) -> StoredKey:
        return self.save(name, PrivateKey.generate(), passphrase)

    def _read(self, path: Path) -> dict:
        try:
            document = json.loads(path.read_text())
            if document.get("version") != 1:
                raise KeystoreError(f"{path}: unsupported keystore version {document.get('version')!r}")
            bytes.fromhex(document["public"])
            return document
        except FileNotFoundError:
            raise KeystoreError(f"no key file {path}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeystoreError(f"{path}: not a keystore file ({exc})") from None

    def list(self) -> list[StoredKey]:
        if not self.directory.is_dir():
            return []
        out = []
        for path in sorted(self.directory.glob("*.json")):
            document = self._read(path)
            out.append(StoredKey(document["name"], bytes.fromhex(document["public"]), path))
        return out

    def public(self, name: str) -> bytes:
        return bytes.fromhex(self._read(self._path(name))["public"])

    def load(self, name: str, passphrase: str) -> PrivateKey:
        path = self._path(name)
        document = self._read(path)
        if document.get("name") != name:
            raise KeystoreError(f"{path}: holds the key named {document.get('name')!r}, not {name!r} "
                                "(a copied or renamed file)")
        try:
            kdf, cipher = document["kdf"], document["cipher"]
            public = bytes.fromhex(document["public"])
            box_key = _derive(passphrase, bytes.fromhex(kdf["salt"]), int(kdf["opslimit"]), int(kdf["memlimit"]))
            secret = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                bytes.fromhex(cipher["ciphertext"]), document["name"].encode() + b"\x00" + public,
                bytes.fromhex(cipher["nonce"]), box_key)
        except nacl.exceptions.CryptoError:
            raise KeystoreError(f"{path}: wrong passphrase, or the file was altered") from None
        except (KeyError, ValueError, TypeError) as exc:
            raise KeystoreError(f"{path}: malformed keystore file ({exc})") from None
        try:
            key = PrivateKey(secret)
        except CryptoError as exc:
            raise KeystoreError(f"{path}: {exc}") from None
        if key.public != public:
            raise KeystoreError(f"{path}: the secret does not match the public key")
        return key
