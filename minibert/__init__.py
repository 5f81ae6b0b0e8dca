"""minibert: BERT rebuilt from scratch in NumPy, numerically equal to transformers."""

from .config import BertConfig, ConfigError
from .models import BertModel, BertModelOutput
from .tokenizer import BatchEncoding, BertTokenizer
from .weights import WeightsError

__version__ = "0.1.0"

__all__ = ["BatchEncoding", "BertConfig", "BertModel", "BertModelOutput", "BertTokenizer", "ConfigError",
           "WeightsError"]
