"""Federated learning pieces: data, model vectors, evaluation and averaging.

The metric function ``evaluate`` is deliberately not re-exported here: it would
shadow the ``offchain.learning.evaluate`` submodule. Import it from there.
"""

from offchain.learning.data import (
    ArrayDataset,
    DeviceData,
    FederatedSplit,
    load_autompg,
    load_mnist,
    split_iid,
)
from offchain.learning.evaluate import (
    REGRESSION_SCORE_SCALE,
    accuracy,
    correct_count,
    mean_absolute_error,
    model_quality,
    regression_score,
    score_update,
)
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
    "REGRESSION_SCORE_SCALE",
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
    "load_autompg",
    "load_mnist",
    "mean_absolute_error",
    "model_quality",
    "model_to_vector",
    "num_parameters",
    "regression_score",
    "score_update",
    "split_iid",
    "vector_to_model",
]
