"""Client of the RewardVault: devices' pull-payment balances."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from offchain.chain.accounts import Wallet
from offchain.chain.clients.base import ContractClient
from offchain.chain.node import Receipt

__all__ = ["RewardVaultClient"]


class RewardVaultClient(ContractClient):
    def balance_of(self, device: str) -> int:
        return int(self._view("balanceOf", device))

    def total_owed(self) -> int:
        return int(self._view("totalOwed"))

    def withdraw(self, device: Wallet, **tx: Any) -> Receipt:
        """The device withdraws its own balance."""
        return self._send(device, "withdraw", **tx)

    def claim(self, owner: Wallet, devices: Sequence[str], **tx: Any) -> Receipt:
        """The owner claims its devices' balances to its master wallet."""
        return self._send(owner, "claim", list(devices), **tx)
