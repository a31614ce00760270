"""The owner: registers its devices from their signed consents, revokes them, and
claims their rewards to its master wallet."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from offchain.chain.accounts import Wallet
from offchain.chain.contracts import Fedshare
from offchain.chain.node import Receipt
from offchain.protocol.types import DeviceStatus
from offchain.roles.base import Progress, Role, Step, TaskView

__all__ = ["Owner", "OwnerRole"]


class Owner:
    """A master wallet and the devices registered to it."""

    def __init__(self, fs: Fedshare, wallet: Wallet) -> None:
        self.fs = fs
        self.wallet = wallet

    @property
    def address(self) -> str:
        return self.wallet.address

    def register(self, device: str, public_key: bytes, consent: bytes) -> Receipt | None:
        """Registers `device` from its signed consent; None when it is already this
        owner's active device (nothing is sent)."""
        info = self.fs.devices.info(device)
        if info.status is DeviceStatus.ACTIVE and info.owner == self.address:
            return None
        return self.fs.devices.register(self.wallet, device, public_key, consent)

    def register_wallets(self, devices: Iterable[Wallet]) -> None:
        """Registers devices whose wallets are at hand (each signs its consent)."""
        for device in devices:
            consent = self.fs.devices.sign_consent(self.address, device)
            self.register(device.address, device.public_key, consent)

    def revoke(self, device: str) -> Receipt:
        return self.fs.devices.revoke(self.wallet, device)

    def balances(self) -> dict[str, int]:
        """Every device of this owner with its unclaimed reward."""
        return {d: self.fs.vault.balance_of(d) for d in self.fs.devices.devices_of(self.address)}

    def unclaimed(self) -> dict[str, int]:
        """Unclaimed reward per device of this owner (devices with a balance only)."""
        return {d: wei for d, wei in self.balances().items() if wei > 0}

    def claim(self, **tx) -> int:
        """Claims every device's balance to the master wallet in one transaction;
        returns the wei claimed (0 when there was nothing, and nothing is sent)."""
        balances = self.unclaimed()
        if not balances:
            return 0
        self.fs.vault.claim(self.wallet, list(balances), **tx)
        return sum(balances.values())


class OwnerRole(Role):
    """An owner following one task: once it has ended, claims what its devices earned."""

    kind = "owner"

    def __init__(self, fs: Fedshare, wallet: Wallet, task_id: int, state_dir: Path, *,
                 label: str | None = None, progress: Progress | None = None) -> None:
        super().__init__(fs, wallet, task_id, state_dir, label=label, progress=progress)
        self.owner = Owner(fs, wallet)

    def decide(self, view: TaskView) -> Step:
        if view.state.status.live:
            return Step.wait()
        claimed = self.owner.claim(**self.tx("claim"))
        if claimed:
            self.state.put(claimed=self.state.get("claimed", 0) + claimed)
            self.emit("claimed", wei=claimed)
        return Step(done=True)
