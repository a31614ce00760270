"""Wallets never show their key; reverts are decoded to the contract's error by name."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from offchain.chain.accounts import (
    load_keystore,
    load_wallet,
    new_wallet,
    save_keystore,
)
from offchain.chain.revert import RevertDecoder
from offchain.errors import ConfigError

ABI = [{"type": "error", "name": "TaskRegistryCommitTooLate", "inputs": [
    {"name": "taskId", "type": "uint256"}, {"name": "round", "type": "uint64"},
    {"name": "deadline", "type": "uint256"}, {"name": "nowTs", "type": "uint256"}]}]


def test_a_wallet_never_shows_its_private_key():
    wallet = new_wallet()
    secret = wallet.unseal_key().hex()
    assert secret not in repr(wallet) and secret not in str(wallet)
    assert str(wallet) == wallet.address


def test_keystore_round_trip_is_private_and_needs_the_password(tmp_path):
    wallet = new_wallet()
    path = tmp_path / "k.json"
    save_keystore(path, wallet, "pw")
    assert path.stat().st_mode & 0o777 == 0o600
    assert wallet.unseal_key().hex() not in path.read_text()
    assert load_keystore(path, "pw").address == wallet.address
    with pytest.raises(ConfigError, match="wrong password or malformed"):
        load_keystore(path, "nope")


def test_load_wallet_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("FEDSHARE_PASSWORD", raising=False)
    monkeypatch.delenv("FEDSHARE_PRIVATE_KEY", raising=False)
    with pytest.raises(ConfigError, match="set FEDSHARE_PASSWORD"):
        load_wallet(tmp_path / "k.json")
    with pytest.raises(ConfigError, match="give a keystore file or set FEDSHARE_PRIVATE_KEY"):
        load_wallet(None)
    monkeypatch.setenv("FEDSHARE_PRIVATE_KEY", "0x1234")
    with pytest.raises(ConfigError, match="does not hold a valid private key"):
        load_wallet(None)


def test_custom_errors_are_decoded_by_name_with_their_values():
    selector = function_signature_to_4byte_selector(
        "TaskRegistryCommitTooLate(uint256,uint64,uint256,uint256)")
    data = selector + encode(["uint256", "uint64", "uint256", "uint256"], [7, 2, 100, 101])
    error = RevertDecoder([("TaskRegistry", ABI)]).decode(data)
    assert error.error_name == "TaskRegistryCommitTooLate"
    assert error.error_args == {"taskId": 7, "round": 2, "deadline": 100, "nowTs": 101}
    assert str(error) == "TaskRegistryCommitTooLate(taskId=7, round=2, deadline=100, nowTs=101)"


def test_panics_and_unknown_errors_are_named():
    decoder = RevertDecoder([])
    panic = function_signature_to_4byte_selector("Panic(uint256)") + encode(["uint256"], [0x11])
    assert decoder.decode(panic).error_args["reason"] == "arithmetic overflow or underflow"
    assert decoder.decode(b"\xde\xad\xbe\xef").error_name == "UnknownError"
    assert decoder.decode(b"").error_name == "Reverted"


def test_pretty_printers_do_not_reach_the_key():
    from hypothesis.vendor.pretty import pretty

    wallet = new_wallet()
    secret = wallet.unseal_key()
    for text in (pretty(wallet), pretty([wallet]), repr(vars(type(wallet)).get("__dict__"))):
        assert secret.hex() not in text and repr(secret) not in text
