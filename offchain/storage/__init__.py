"""Content-addressed blob storage."""

from offchain.storage.blobs import BlobStore, content_hash

__all__ = ["BlobStore", "content_hash"]
