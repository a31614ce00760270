"""Federated learning pieces: data, model vectors, evaluation and averaging."""

from offchain.learning.data import (
    ArrayDataset,
    DeviceData,
    FederatedSplit,
    load_mnist,
    split_iid,
)
from offchain.learning.evaluate import accuracy, correct_count, score_update
from offchain.learning.fedavg import (
    apply_update,
    average,
    clip_update,
    clipped_fraction,
)
from offchain.learning.model import (
    ModelSpec,
    build_model,
    decode_vector,
    encode_vector,
    initial_vector,
    model_to_vector,
    num_parameters,
    vector_to_model,
)

__all__ = [
    "ArrayDataset",
    "DeviceData",
    "FederatedSplit",
    "ModelSpec",
    "accuracy",
    "apply_update",
    "average",
    "build_model",
    "clip_update",
    "clipped_fraction",
    "correct_count",
    "decode_vector",
    "encode_vector",
    "initial_vector",
    "load_mnist",
    "model_to_vector",
    "num_parameters",
    "score_update",
    "split_iid",
    "vector_to_model",
]
