import pytest

from offchain.errors import BlobIntegrityError, BlobNotFound, StorageError
from offchain.storage import BlobStore, content_hash


def test_put_then_get_returns_the_same_bytes(tmp_path):
    store = BlobStore(tmp_path)
    digest = store.put(b"update")
    assert digest == content_hash(b"update")
    assert store.get(digest) == b"update"
    assert digest in store


def test_put_is_idempotent(tmp_path):
    store = BlobStore(tmp_path)
    assert store.put(b"x") == store.put(b"x")


def test_tampered_blob_is_rejected_with_its_name(tmp_path):
    store = BlobStore(tmp_path)
    digest = store.put(b"honest bytes")
    store.path_of(digest).write_bytes(b"tampered bytes")
    with pytest.raises(BlobIntegrityError, match=f"blob 0x{digest.hex()} is corrupt"):
        store.get(digest)


def test_missing_blob_is_named(tmp_path):
    store = BlobStore(tmp_path)
    digest = content_hash(b"never stored")
    with pytest.raises(BlobNotFound, match=digest.hex()):
        store.get(digest)


def test_address_must_be_32_bytes(tmp_path):
    with pytest.raises(StorageError, match="32 bytes, got 3"):
        BlobStore(tmp_path).get(b"abc")
