"""Wallets: throw-away keys for embedded runs, encrypted V3 keystore files otherwise.

Nothing here prints or logs a private key: :class:`Wallet` hides it from repr/str.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys import keys as eth_keys

from offchain.errors import ConfigError

__all__ = ["Wallet", "new_wallet", "save_keystore", "load_keystore", "load_wallet",
           "recover_signer"]


class Wallet:
    """An account that can sign: an address plus a private key that is never shown.

    Deliberately not a dataclass: tools that print dataclass fields (test reports,
    pretty-printers) would show the key.
    """

    __slots__ = ("address", "__key")

    def __init__(self, address: str, key: bytes) -> None:
        self.address = address
        self.__key = bytes(key)

    def __repr__(self) -> str:
        return f"Wallet({self.address})"

    def __str__(self) -> str:
        return self.address

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Wallet) and other.address == self.address

    def __hash__(self) -> int:
        return hash(self.address)

    @property
    def public_key(self) -> bytes:
        """The 64-byte uncompressed secp256k1 public key (used to seal blobs to it)."""
        return eth_keys.PrivateKey(self.__key).public_key.to_bytes()

    def sign_transaction(self, tx: dict) -> bytes:
        """Signs `tx` and returns the raw transaction bytes."""
        return bytes(Account.sign_transaction(tx, self.__key).raw_transaction)

    def sign_digest(self, digest: bytes) -> bytes:
        """EIP-191 signature of a 32-byte digest (``\\x19Ethereum Signed Message:\\n32``)."""
        signed = Account.sign_message(encode_defunct(primitive=digest), self.__key)
        return bytes(signed.signature)

    def unseal_key(self) -> bytes:
        """The private key bytes, for unsealing blobs sealed to this wallet only."""
        return self.__key

    def encrypt(self, password: str) -> dict:
        """The key as an encrypted Ethereum V3 keystore document."""
        return dict(Account.encrypt(self.__key, password))


def new_wallet() -> Wallet:
    """A fresh random wallet."""
    account = Account.create()
    return Wallet(account.address, bytes(account.key))


def save_keystore(path: Path, wallet: Wallet, password: str) -> None:
    """Writes `wallet` as an encrypted Ethereum V3 keystore file (mode 0600)."""
    data = wallet.encrypt(password)
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


def recover_signer(digest: bytes, signature: bytes) -> str | None:
    """The address whose key made the EIP-191 `signature` of the 32-byte `digest`, or
    None when the signature is malformed."""
    try:
        return str(Account.recover_message(encode_defunct(primitive=digest),
                                           signature=signature))
    except Exception:  # noqa: BLE001 - any malformed signature is simply no signer
        return None
