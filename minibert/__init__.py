"""minibert: BERT rebuilt from scratch in NumPy, numerically equal to transformers."""

from .added_tokens import AddedToken
from .config import BertConfig
from .encoding import BatchEncoding
from .errors import CheckpointError, ConfigError, HubError, WeightsError
from .miniatures import Miniature, miniatures
from .models import (
    BertForMaskedLM, BertForMultipleChoice, BertForNextSentencePrediction, BertForPreTraining,
    BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification, BertModel, BertModelOutput,
)
from .tokenizer import BertTokenizer
from .train import value_and_grad
from .weights import init_weights

__version__ = "0.1.0"

__all__ = [
    "AddedToken", "BatchEncoding", "BertConfig", "BertForMaskedLM", "BertForMultipleChoice", "BertForNextSentencePrediction",
    "BertForPreTraining", "BertForQuestionAnswering", "BertForSequenceClassification", "BertForTokenClassification",
    "BertModel", "BertModelOutput", "BertTokenizer", "CheckpointError", "ConfigError", "HubError", "Miniature", "WeightsError",
    "init_weights", "miniatures", "value_and_grad",
]
