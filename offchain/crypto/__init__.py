"""Encrypted aggregation: packed Paillier vectors and ECIES sealing.

This package is the only place in fedshare that imports ``phe`` and ``ecies``.
Devices :func:`encrypt_vector` their clipped updates under the requester's
Paillier key, the aggregator :func:`aggregate` s them without any secret, and
the requester :func:`decrypt_sum` s only the aggregate.  Encryption draws its
randomness from a precomputed :class:`RandomnessPool` (:mod:`.fast`); filling
it ahead of time (:func:`prefill`) leaves one multiplication per ciphertext.
"""

from offchain.crypto.fast import (
    RandomnessPool,
    configure,
    default_pool,
    prefill,
    short_base,
)
from offchain.crypto.keys import (
    PrivateKey,
    PublicKey,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    save_private_key,
    save_public_key,
)
from offchain.crypto.packing import (
    PackingSpec,
    dequantize_sum,
    pack,
    quantize,
    unpack,
)
from offchain.crypto.paillier import (
    EncryptedVector,
    aggregate,
    decrypt_sum,
    encrypt_vector,
    rerandomize,
)
from offchain.crypto.sealing import generate_seal_keypair, seal, unseal

__all__ = [
    "PublicKey",
    "PrivateKey",
    "generate_keypair",
    "key_id",
    "save_public_key",
    "load_public_key",
    "save_private_key",
    "load_private_key",
    "PackingSpec",
    "quantize",
    "pack",
    "unpack",
    "dequantize_sum",
    "EncryptedVector",
    "encrypt_vector",
    "aggregate",
    "decrypt_sum",
    "rerandomize",
    "RandomnessPool",
    "default_pool",
    "prefill",
    "configure",
    "short_base",
    "seal",
    "unseal",
    "generate_seal_keypair",
]
