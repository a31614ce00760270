"""One typed client per contract."""

from offchain.chain.clients.devices import DeviceRegistryClient
from offchain.chain.clients.models import ModelRegistryClient
from offchain.chain.clients.tasks import TaskRegistryClient
from offchain.chain.clients.vault import RewardVaultClient

__all__ = ["DeviceRegistryClient", "ModelRegistryClient", "RewardVaultClient",
           "TaskRegistryClient"]
