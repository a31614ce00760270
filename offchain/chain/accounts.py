"""Wallets: throw-away keys for embedded runs, encrypted V3 keystore files otherwise.

Nothing here prints or logs a private key: :class:`Wallet` hides it from repr/str.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys import keys as eth_keys

from offchain.errors import ConfigError

__all__ = ["Wallet", "new_wallet", "save_keystore", "load_keystore", "load_wallet"]


@dataclass(frozen=True)
class Wallet:
    """An account that can sign: address plus a private key that is never shown."""

    address: str
    _key: bytes = field(repr=False)

    def __str__(self) -> str:
        return self.address

    @property
    def public_key(self) -> bytes:
        """The 64-byte uncompressed secp256k1 public key (used to seal blobs to it)."""
        return eth_keys.PrivateKey(self._key).public_key.to_bytes()

    def sign_transaction(self, tx: dict) -> bytes:
        """Signs `tx` and returns the raw transaction bytes."""
        return bytes(Account.sign_transaction(tx, self._key).raw_transaction)

    def sign_digest(self, digest: bytes) -> bytes:
        """EIP-191 signature of a 32-byte digest (``\\x19Ethereum Signed Message:\\n32``)."""
        signed = Account.sign_message(encode_defunct(primitive=digest), self._key)
        return bytes(signed.signature)

    def unseal_key(self) -> bytes:
        """The private key bytes, for unsealing blobs sealed to this wallet only."""
        return self._key


def new_wallet() -> Wallet:
    """A fresh random wallet."""
    account = Account.create()
    return Wallet(account.address, bytes(account.key))


def save_keystore(path: Path, wallet: Wallet, password: str) -> None:
    """Writes `wallet` as an encrypted Ethereum V3 keystore file (mode 0600)."""
    data = Account.encrypt(wallet._key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)


def load_keystore(path: Path, password: str) -> Wallet:
    """Reads a V3 keystore file. Raises ConfigError when missing, malformed or the
    password is wrong."""
    try:
        data = json.loads(Path(path).read_text())
        key = bytes(Account.decrypt(data, password))
    except FileNotFoundError as exc:
        raise ConfigError(f"keystore file {path} does not exist") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"cannot decrypt keystore {path}: wrong password or malformed file"
        ) from exc
    return Wallet(Account.from_key(key).address, key)


def load_wallet(keystore: Path | None, password_env: str = "FEDSHARE_PASSWORD",
                *, key_env: str = "FEDSHARE_PRIVATE_KEY") -> Wallet:
    """A wallet from a keystore file (password from the environment variable
    `password_env`), or from a hex private key in `key_env`. Raises ConfigError."""
    if keystore is not None:
        password = os.environ.get(password_env)
        if password is None:
            raise ConfigError(f"set {password_env} to the password of {keystore}")
        return load_keystore(keystore, password)
    hex_key = os.environ.get(key_env)
    if not hex_key:
        raise ConfigError(f"give a keystore file or set {key_env}")
    try:
        account = Account.from_key(hex_key)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key_env} does not hold a valid private key") from exc
    return Wallet(account.address, bytes(account.key))
