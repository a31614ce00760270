"""Client of the DeviceRegistry: owners, devices, sealing keys, consent."""

from __future__ import annotations

from typing import Any

from offchain.chain.accounts import Wallet
from offchain.chain.clients.base import ContractClient
from offchain.chain.node import Receipt
from offchain.protocol.types import DeviceInfo, DeviceStatus

__all__ = ["DeviceRegistryClient"]


class DeviceRegistryClient(ContractClient):
    """Registration needs the device key's signature of :meth:`consent_digest`; a
    device makes it itself (see :meth:`sign_consent`), so its key never leaves it."""

    def consent_digest(self, owner: str, device: str, public_key: bytes) -> bytes:
        """What `device` signs to let `owner` register it with `public_key`: bound to
        the chain, the registry, both addresses, the key and the device's nonce."""
        return bytes(self._view("consentDigest", owner, device, public_key))

    def sign_consent(self, owner: str, device: Wallet,
                     public_key: bytes | None = None) -> bytes:
        """The device's consent to be registered by `owner` (EIP-191 signature)."""
        key = device.public_key if public_key is None else public_key
        return device.sign_digest(self.consent_digest(owner, device.address, key))

    def register(self, owner: Wallet, device: str, public_key: bytes, consent: bytes,
                 **tx: Any) -> Receipt:
        """The owner registers `device` with the device's signed consent."""
        return self._send(owner, "registerDevice", device, public_key, consent, **tx)

    def register_device(self, owner: Wallet, device: Wallet) -> Receipt:
        """Registers a device whose wallet is at hand (tests, the embedded demo)."""
        consent = self.sign_consent(owner.address, device)
        return self.register(owner, device.address, device.public_key, consent)

    def rotate_key(self, owner: Wallet, device: Wallet, public_key: bytes) -> Receipt:
        """The owner replaces `device`'s sealing key; the device signs its consent."""
        consent = self.sign_consent(owner.address, device, public_key)
        return self._send(owner, "rotateKey", device.address, public_key, consent)

    def revoke(self, owner: Wallet, device: str, **tx: Any) -> Receipt:
        return self._send(owner, "revokeDevice", device, **tx)

    def owner_of(self, device: str) -> str:
        return str(self._view("ownerOf", device))

    def is_active(self, device: str) -> bool:
        return bool(self._view("isActive", device))

    def info(self, device: str) -> DeviceInfo:
        return self._struct(DeviceInfo, "deviceOf", device)

    def public_key(self, device: str) -> bytes:
        return bytes(self.info(device).public_key)

    def status(self, device: str) -> DeviceStatus:
        return self.info(device).status

    def devices_of(self, owner: str) -> list[str]:
        return list(self._view("devicesOf", owner))

    def nonce_of(self, device: str) -> int:
        return int(self._view("nonceOf", device))
