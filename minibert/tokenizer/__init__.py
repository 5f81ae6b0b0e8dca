"""BERT's WordPiece tokenizer: the same ids, masks and offsets as transformers' BertTokenizer(Fast)."""

from .added_tokens import AddedToken
from .encoding import BatchEncoding
from .tokenizer import BertTokenizer

__all__ = ["AddedToken", "BatchEncoding", "BertTokenizer"]
