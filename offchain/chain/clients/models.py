"""Client of the ModelRegistry: append-only model versions."""

from __future__ import annotations

from offchain.chain.clients.base import ContractClient
from offchain.protocol.types import ModelVersion

__all__ = ["ModelRegistryClient"]


class ModelRegistryClient(ContractClient):
    def version(self, version_id: int) -> ModelVersion:
        return self._struct(ModelVersion, "versionOf", version_id)

    def count(self) -> int:
        return int(self._view("versionCount"))
