"""Content-addressed blob storage."""

from offchain.storage.blobs import BlobStore, content_hash
from offchain.storage.exchange import Exchange, LocalExchange

__all__ = ["BlobStore", "Exchange", "LocalExchange", "content_hash"]
