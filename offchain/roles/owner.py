"""The owner: registers its devices' micro-wallets and claims their rewards."""

from __future__ import annotations

from typing import Iterable

from offchain.chain.accounts import Wallet
from offchain.chain.contracts import Fedshare

__all__ = ["Owner"]


class Owner:
    """A master wallet and the devices registered to it."""

    def __init__(self, fs: Fedshare, wallet: Wallet) -> None:
        self.fs = fs
        self.wallet = wallet

    @property
    def address(self) -> str:
        return self.wallet.address

    def register(self, devices: Iterable[Wallet]) -> None:
        """Registers each device (each signs its consent with its own key)."""
        for device in devices:
            self.fs.register_device(self.wallet, device)

    def unclaimed(self) -> dict[str, int]:
        """Unclaimed reward per device of this owner (devices with a balance only)."""
        balances = {d: self.fs.reward_balance(d) for d in self.fs.devices_of(self.address)}
        return {d: wei for d, wei in balances.items() if wei > 0}

    def claim(self) -> int:
        """Claims every device's balance to the master wallet in one transaction;
        returns the wei claimed (0 when there was nothing)."""
        balances = self.unclaimed()
        if not balances:
            return 0
        self.fs.claim_rewards(self.wallet, list(balances))
        return sum(balances.values())
