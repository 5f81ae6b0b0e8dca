"""minibert: BERT rebuilt from scratch in NumPy, numerically equal to transformers."""

from . import kernel_cache  # noqa: F401  (first: where Numba caches the kernels the modules below define)
from .config import BertConfig
from .errors import CheckpointError, ConfigError, HubError, WeightsError
from .loading.miniatures import Miniature, miniatures
from .loading.weights import init_weights
from .models import (
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    BertModelOutput,
)
from .tokenizer import BertTokenizer
from .tokenizer.added_tokens import AddedToken
from .tokenizer.encoding import BatchEncoding
from .train import value_and_grad

__version__ = "0.1.0"

__all__ = [
    "AddedToken", "BatchEncoding", "BertConfig", "BertForMaskedLM", "BertForMultipleChoice",
    "BertForNextSentencePrediction",
    "BertForPreTraining", "BertForQuestionAnswering", "BertForSequenceClassification", "BertForTokenClassification",
    "BertModel", "BertModelOutput", "BertTokenizer", "CheckpointError", "ConfigError", "HubError", "Miniature",
    "WeightsError", "init_weights", "miniatures", "value_and_grad",
]
