"""What people run a small BERT for: fill a mask, classify, extract an answer, tag tokens, embed sentences.

Each helper takes a loaded model and its tokenizer, so the steps a user would otherwise write by hand —
tokenize, batch, run, turn logits into probabilities, map tokens back to characters — are in one place.
Texts longer than the model's window are handled by windows where the task allows it (answers, tags,
embeddings), and are a clear error where it does not (fill-mask, classification truncate).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from tqdm import tqdm  # installed with huggingface-hub

from .errors import check_positive_int
from .loading.files import inside, present, read_json
from .loading.hub import WEIGHTS_FILES, model_directory
from .loading.weights import read_weights, take, weights_file
from .models import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    check_quantize_mode,
    read_checkpoint,
)
from .fast import gemm
from .nn import gelu, softmax
from .tokenizer import BertTokenizer
from .tokenizer.files import TOKENIZER_FILES
from .tokenizer.wordpiece import lowercase


def text_list(texts: Any, name: str) -> list:
    """One text (a str) or an iterable of them, as a list; the tokenizer checks the items."""
    if isinstance(texts, str):
        return [texts]
    try:
        return list(texts)
    except TypeError:
        raise TypeError(f"{name} must be a str or a list of str, got {type(texts).__name__}") from None


def window(config: Any, tokenizer: BertTokenizer, cap: int | None = None, name: str = "max_length") -> int:
    """Tokens per sequence: the model's window (positions, and the tokenizer's model_max_length), cut to `cap`
    (the option called `name`) when given."""
    limit = min(config.max_position_embeddings, tokenizer.model_max_length)
    if cap is None:
        return limit
    check_positive_int(name, cap, minimum=3)  # [CLS], [SEP] and at least one token
    return min(cap, limit)


def check_fit(model: Any, tokenizer: BertTokenizer) -> None:
    """A model and a tokenizer that belong together: every id the tokenizer can give has a word embedding."""
    tokens, vocabulary = len(tokenizer), model.config.vocab_size
    if tokens > vocabulary:
        raise ValueError(f"the tokenizer has {tokens} tokens but the model's vocabulary only "
                         f"{vocabulary}: they are not the same model's (after tokenizer.add_tokens, call "
                         "model.resize_token_embeddings(len(tokenizer)))")


def fill_mask(model: BertForMaskedLM | BertForPreTraining, tokenizer: BertTokenizer, text: str | Sequence[str],
              top_k: int = 5) -> list:
    """The top_k vocabulary tokens for each [MASK] in the text(s), most probable first.

    Returns, for one text, one list per [MASK] (in order) of {"token", "id", "probability"}; for a list of
    texts, one such result per text (none for an empty list).
    """
    check_positive_int("top_k", top_k)
    check_fit(model, tokenizer)
    texts = text_list(text, "text")
    if not texts:
        return []
    encoding = tokenizer(texts, padding=True, return_tensors="np")
    out = model(**encoding)
    logits = out.logits if hasattr(out, "logits") else out.prediction_logits  # [B, S, V]
    results = []
    for i, ids in enumerate(encoding["input_ids"]):
        positions = np.flatnonzero(ids == tokenizer.mask_token_id)
        if len(positions) == 0:
            raise ValueError(f"text {i} has no {tokenizer.mask_token}: {texts[i][:80]!r}")
        per_mask = []
        for p in positions:
            probabilities = softmax(logits[i, p].astype(np.float64))  # [V]
            best = np.argsort(-probabilities, kind="stable")[:top_k]
            per_mask.append([{"token": tokenizer.convert_ids_to_tokens(int(t)), "id": int(t),
                              "probability": float(probabilities[t])} for t in best])
        results.append(per_mask)
    return results[0] if isinstance(text, str) else results


def classify(model: BertForSequenceClassification, tokenizer: BertTokenizer, texts: str | Sequence[str],
             text_pairs: Sequence[str] | None = None, batch_size: int = 32) -> list[dict[str, Any]]:
    """Labels for each text (or pair), by config.problem_type, with id2label's names:

    single-label: {"label", "score", "scores": {label: softmax probability}};
    multi-label:  {"labels": [those with sigmoid > 0.5], "scores": {label: sigmoid probability}};
    regression:   {"score": the predicted value}.
    Texts longer than the model's window are truncated (longest first for pairs).
    """
    check_positive_int("batch_size", batch_size)
    check_fit(model, tokenizer)
    texts = text_list(texts, "texts")
    if text_pairs is not None:
        text_pairs = text_list(text_pairs, "text_pairs")
        if len(text_pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(text_pairs)} text_pairs: give one pair per text")
    return [label_scores(row, model.config) for row in class_logits(model, tokenizer, texts, text_pairs, batch_size)]


def class_logits(model: BertForSequenceClassification, tokenizer: BertTokenizer, texts: list[str],
                 text_pairs: list[str] | None, batch_size: int) -> np.ndarray:
    """The logits [N, num_labels] classify turns into labels, batch by batch, texts truncated to the window."""
    max_length = window(model.config, tokenizer)
    logits = [np.zeros((0, model.config.num_labels), dtype=model.dtype)]
    for start in range(0, len(texts), batch_size):
        pairs = None if text_pairs is None else text_pairs[start:start + batch_size]
        encoding = tokenizer(texts[start:start + batch_size], pairs, padding=True, truncation=True,
                             max_length=max_length, return_tensors="np")
        logits.append(model(**encoding).logits)  # [B, num_labels]
    return np.concatenate(logits)


def probabilities(logits: np.ndarray, problem_type: str) -> np.ndarray:
    """classify's scores from logits [..., num_labels], in float64: softmax (single-label), sigmoid (multi-label,
    each label on its own), or the logits themselves (regression: the predicted values)."""
    x = logits.astype(np.float64)
    if problem_type == "regression":
        return x
    return 1.0 / (1.0 + np.exp(-x)) if problem_type == "multi_label_classification" else softmax(x)


def label_scores(logits: np.ndarray, config: Any) -> dict[str, Any]:
    """One text's classify() result from its logits [num_labels], by config.problem_type and id2label."""
    labels, p = config.id2label, probabilities(logits, config.problem_type)
    if config.problem_type == "regression":
        return {"score": float(p[0])}
    scores = {labels[i]: float(p[i]) for i in range(len(p))}
    if config.problem_type == "multi_label_classification":
        return {"labels": [labels[i] for i in np.flatnonzero(p > 0.5)], "scores": scores}
    best = int(np.argmax(p))
    return {"label": labels[best], "score": float(p[best]), "scores": scores}


class CrossEncoder:
    """A BertForSequenceClassification that scores text pairs, as sentence-transformers' CrossEncoder does:
    predict() scores pairs, rank() orders documents for a query (reranking).

    Each pair is read as [CLS] a [SEP] b [SEP], cut longest first to max_length tokens (default: the
    model's window); its logits go through activation_fn: a name from DENSE_ACTIVATIONS, or a torch class
    path as sentence-transformers saves it ("torch.nn.modules.activation.Sigmoid"). Default, as in
    CrossEncoder: sigmoid for a one-label model, none (Identity) for more labels.
    """

    def __init__(self, model: BertForSequenceClassification, tokenizer: BertTokenizer, activation_fn: str | None = None,
                 max_length: int | None = None) -> None:
        check_fit(model, tokenizer)
        self.model, self.tokenizer = model, tokenizer
        path = activation_fn or ("Sigmoid" if model.config.num_labels == 1 else "Identity")
        name = str(path).rsplit(".", 1)[-1]
        if name not in DENSE_ACTIVATIONS:
            raise ValueError(f"activation_fn {path} is not supported ({', '.join(DENSE_ACTIVATIONS)} are)")
        self.activation_fn, self.activation = name, DENSE_ACTIVATIONS[name]
        self.max_length = window(model.config, tokenizer, max_length)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, dtype: Any = np.float32,
                        **hub_options: Any) -> CrossEncoder:
        """Load the model, its tokenizer and the activation sentence-transformers saved with it: in
        config_sentence_transformers.json (version 6), config.json's sentence_transformers.activation_fn
        (versions 4 and 5) or sbert_ce_default_activation_function (before 4); max_length from
        sentence_bert_config.json's max_seq_length when there is one."""
        directory = model_directory(name_or_path, need=("config.json",), weights=True, want=(
            *TOKENIZER_FILES, "config_sentence_transformers.json", "sentence_bert_config.json"), **hub_options)
        model = BertForSequenceClassification.from_pretrained(directory, dtype=dtype)
        settings = _read_json(directory / "config_sentence_transformers.json",
                              "config_sentence_transformers", default={})
        if settings.get("default_prompt_name"):
            raise ValueError(f"{directory}: a cross-encoder with a default prompt is not supported")
        legacy = model.config.extra.get("sentence_transformers")
        activation = (settings.get("activation_fn")
                      or (legacy.get("activation_fn") if isinstance(legacy, dict) else None)
                      or model.config.extra.get("sbert_ce_default_activation_function"))
        max_length = _read_json(directory / "sentence_bert_config.json",
                                "sentence_bert_config", default={}).get("max_seq_length")
        return cls(model, BertTokenizer.from_pretrained(directory), activation, max_length)

    def predict(self, pairs: Sequence[Sequence[str]], batch_size: int = 32) -> np.ndarray:
        """Scores of (text, text) pairs: [N] for a one-label model, [N, num_labels] otherwise ([] for none)."""
        check_positive_int("batch_size", batch_size)
        pairs = list(pairs)
        if not all(isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in pairs):
            raise TypeError("pairs must be a list of (str, str)")
        scores = []
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start:start + batch_size]
            encoding = self.tokenizer([a for a, _ in batch], [b for _, b in batch], padding=True, truncation=True,
                                      max_length=self.max_length, return_tensors="np")
            scores.append(self.scores(self.model(**encoding).logits))
        if not scores:
            return np.zeros(0, dtype=self.model.dtype)
        return np.concatenate(scores)

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """Pair scores from logits [N, num_labels]: the activation, one label squeezed -> [N] (or [N, num_labels])."""
        scores = self.activation(logits.astype(np.float64)).astype(self.model.dtype)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def rank(self, query: str, documents: Sequence[str], top_k: int | None = None, return_documents: bool = False,
             batch_size: int = 32) -> list[dict[str, Any]]:
        """The documents ordered by their score with the query, best first, as CrossEncoder.rank orders them:
        [{"corpus_id": index in documents, "score", ("text")}], the top_k best (default: all)."""
        if top_k is not None:
            check_positive_int("top_k", top_k)
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        if self.model.config.num_labels != 1:
            raise ValueError("rank needs a cross-encoder with one label; this model has "
                             f"{self.model.config.num_labels}: use predict (or classify)")
        documents = text_list(documents, "documents")
        scores = self.predict([(query, d) for d in documents], batch_size).tolist()
        order = sorted(range(len(documents)), key=lambda i: -scores[i])[:top_k]  # stable: ties keep their input order
        return [{"corpus_id": i, "score": scores[i], **({"text": documents[i]} if return_documents else {})}
                for i in order]


def extract_answer(model: BertForQuestionAnswering, tokenizer: BertTokenizer, question: str, context: str,
                   max_length: int = 384, stride: int = 128, max_answer_length: int = 30) -> dict[str, Any]:
    """The span of `context` that best answers `question`: {"answer", "start", "end", "score"} (characters).

    The context is cut into windows of [CLS] question [SEP] context-piece [SEP] at most max_length tokens,
    consecutive pieces overlapping by `stride` tokens (the tokenizer's overflowing windows, as in
    transformers' question-answering recipe). In each window the start and end scores are turned
    into probabilities over the context tokens; the answer is the span (start <= end, at most
    max_answer_length tokens) with the highest p_start · p_end over all windows.
    """
    check_positive_int("max_length", max_length)
    check_fit(model, tokenizer)
    check_positive_int("max_answer_length", max_answer_length)
    check_positive_int("stride", stride, minimum=0)
    max_length = min(max_length, model.config.max_position_embeddings)
    question_tokens = len(tokenizer(question, add_special_tokens=False, verbose=False)["input_ids"])
    if question_tokens == 0:
        raise ValueError(f"the question is empty: {question!r}")  # the model would answer the context alone
    budget = max_length - question_tokens - tokenizer.num_special_tokens_to_add(pair=True)  # context tokens per window
    if budget < 1:
        raise ValueError(f"the question ({question_tokens} tokens) leaves no room for context in "
                         f"max_length={max_length}")
    # The tokenizer's overflowing windows; a stride that leaves no step moves one token at a time.
    enc = tokenizer(question, context, truncation="only_second", max_length=max_length, stride=min(stride, budget - 1),
                    return_overflowing_tokens=True, return_offsets_mapping=True, padding=True, return_tensors="np")
    out = model(enc["input_ids"], attention_mask=enc["attention_mask"], token_type_ids=enc["token_type_ids"])

    best = (-1.0, 0, 0, 0)  # score, window, first and last token
    for w in range(len(enc["input_ids"])):
        positions = [k for k, sequence in enumerate(enc.sequence_ids(w)) if sequence == 1]  # the context's tokens
        if not positions:
            raise ValueError("the context is empty")
        first, n = positions[0], len(positions)
        p_start = softmax(out.start_logits[w, first:first + n].astype(np.float64))
        p_end = softmax(out.end_logits[w, first:first + n].astype(np.float64))
        # i <= j < i + L
        scores = np.triu(np.outer(p_start, p_end)) - np.triu(np.outer(p_start, p_end), max_answer_length)
        i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
        if scores[i, j] > best[0]:
            best = (float(scores[i, j]), w, first + int(i), first + int(j))
    score, w, first_token, last_token = best
    start, end = int(enc["offset_mapping"][w, first_token, 0]), int(enc["offset_mapping"][w, last_token, 1])
    return {"answer": context[start:end], "start": start, "end": end, "score": score}


def tag_tokens(model: BertForTokenClassification, tokenizer: BertTokenizer, text: str) -> dict[str, list]:
    """Word-level labels and entity spans.

    Each word (as the tokenizer's word_ids() groups its tokens) takes the label of its first token. Entities join
    consecutive words whose labels are B-X, I-X, I-X ... (or a run of the same label without a B-/I-
    prefix); "O" is outside. Returns {"words": [{"word", "start", "end", "label", "score"}],
    "entities": [{"entity", "text", "start", "end", "score"}]}, positions in characters of `text`.
    Texts longer than the model's window are tagged window by window.
    """
    check_fit(model, tokenizer)
    limit = window(model.config, tokenizer)
    enc = tokenizer(text, truncation=True, max_length=limit, return_overflowing_tokens=True,  # windows of the text
                    return_offsets_mapping=True, padding=True, return_tensors="np")
    logits = model(enc["input_ids"], attention_mask=enc["attention_mask"]).logits  # [windows, S, num_labels]
    p = softmax(logits.astype(np.float64))
    labels = model.config.id2label
    words: list[dict[str, Any]] = []
    last_word = None
    for w in range(len(enc["input_ids"])):
        for k, word in enumerate(enc.word_ids(w)):  # word numbers run on across windows
            if word is None:
                continue
            start, end = enc["offset_mapping"][w, k].tolist()
            if word == last_word:  # a later piece of the same word
                words[-1].update(end=end, word=text[words[-1]["start"]:end])
            else:
                words.append({"word": text[start:end], "start": start, "end": end,
                              "label": labels[int(p[w, k].argmax())], "score": float(p[w, k].max())})
            last_word = word

    entities: list[dict[str, Any]] = []
    for index, word in enumerate(words):
        label = word["label"]
        prefix, kind = (label[0], label[2:]) if label[:2] in ("B-", "I-") else ("", label)
        if kind == "O":
            continue
        last = entities[-1] if entities else None
        if last is not None and last["entity"] == kind and last["last_word"] == index - 1 and prefix != "B":
            last.update(end=word["end"], last_word=index)
            last["scores"].append(word["score"])
        else:
            entities.append({"entity": kind, "start": word["start"], "end": word["end"], "last_word": index,
                             "scores": [word["score"]]})
    return {"words": words, "entities": [
        {"entity": e["entity"], "text": text[e["start"]:e["end"]], "start": e["start"], "end": e["end"],
         "score": float(np.mean(e["scores"]))} for e in entities]}


# ---- sentence embeddings --------------------------------------------------------------------------------

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len", "weightedmean", "lasttoken")
# A Pooling module's config.json, as sentence-transformers before 6 wrote it: one flag per mode, combined in
# this order. Version 6 writes "pooling_mode": a mode or a list of them, combined in the order listed.
LEGACY_POOLING_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                        "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
                        "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}


# The activations a sentence-transformers Dense module may name (its config.json's activation_function, a
# torch class such as "torch.nn.modules.activation.Tanh", the default), by class name.
DENSE_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Tanh": np.tanh, "Identity": lambda x: x, "ReLU": lambda x: np.maximum(x, 0),
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)), "GELU": gelu,
}
# How two sets of embeddings are compared (config_sentence_transformers.json's similarity_fn_name): a, b
# [N, D], [M, D] -> [N, M], higher meaning more alike, as sentence-transformers scores them.
SIMILARITY_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "cosine": lambda a, b: _unit(a) @ _unit(b).T,  # a·b / (‖a‖ ‖b‖)
    "dot": lambda a, b: a @ b.T,
    "euclidean": lambda a, b: -np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None]
                                                  - 2 * a @ b.T, 0)),  # -‖a - b‖
    "manhattan": lambda a, b: -np.abs(a[:, None] - b[None]).sum(-1),  # -Σ |a - b|
}


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# The modules a sentence-transformers model may chain, in the only order minibert runs them.
MODULE_ORDER = {"Transformer": 0, "Pooling": 1, "Dense": 2, "Normalize": 3}


class Dense(NamedTuple):
    """A sentence-transformers Dense module: y = activation(x Wᵀ + b), on pooled vectors.
    weight [out, in], bias [out] or None."""

    weight: np.ndarray
    bias: np.ndarray | None
    activation: str

    def __call__(self, x: np.ndarray) -> np.ndarray:
        bias = np.zeros(len(self.weight), self.weight.dtype) if self.bias is None else self.bias
        y = gemm.dense(x, self.weight, bias)  # [N, in] -> [N, out]; float32: no BLAS call, see there
        return DENSE_ACTIVATIONS[self.activation](y)

    @classmethod
    def from_directory(cls, directory: Path, dtype: Any) -> Dense:
        """Read a Dense module's folder: config.json (in_features, out_features, bias, activation_function)
        and model.safetensors or pytorch_model.bin (linear.weight, linear.bias), every key checked."""
        config = _read_json(directory / "config.json", "dense", default=None)
        if config is None or not all(k in config for k in ("in_features", "out_features")):
            raise ValueError(f"{directory}/config.json must give a Dense module's in_features and out_features")
        activation = config.get("activation_function", "torch.nn.modules.activation.Tanh").rsplit(".", 1)[-1]
        if activation not in DENSE_ACTIVATIONS:
            raise ValueError(f"{directory}: activation {activation} is not supported "
                             f"({', '.join(DENSE_ACTIVATIONS)} are)")
        shapes = {"linear.weight": (config["out_features"], config["in_features"])}
        if config.get("bias", True):
            shapes["linear.bias"] = (config["out_features"],)
        tensors = read_weights(weights_file(directory))
        unused = [f"unexpected {name}" for name in tensors if name not in shapes]
        taken = take(tensors, shapes, dtype, f"the Dense module in {directory}", problems=unused)
        return cls(taken["linear.weight"], taken.get("linear.bias"), activation)


class SentenceEncoder:
    """Sentence embeddings from a BERT encoder, as sentence-transformers computes them.

    pooling: one or more of POOLING_MODES, concatenated in the order given (as sentence-transformers does);
    normalize: scale each embedding to unit length; max_seq_length: tokens per window. prompts: {name: text put
    before every sentence}, e.g. {"query": "query: "}; default_prompt_name: the one used when encode names none;
    include_prompt=False leaves the prompt's tokens ([CLS] with them) out of the pooling, as instruction models
    want. dense: Dense modules applied in turn to the pooled vectors, before normalising. do_lower_case:
    lower-case every text first (sentence_bert_config.json's), whatever the tokenizer does. similarity_fn_name:
    how similarity() compares embeddings (cosine, dot, euclidean or manhattan). truncate_dim: keep each
    embedding's first truncate_dim values (models trained to allow it, Matryoshka-style), after the model's own
    normalising, as sentence-transformers does.
    """

    def __init__(self, model: BertModel, tokenizer: BertTokenizer, pooling: str | Sequence[str] = ("mean",),
                 normalize: bool = False, max_seq_length: int | None = None, prompts: dict[str, str] | None = None,
                 default_prompt_name: str | None = None, include_prompt: bool = True, dense: Sequence[Dense] = (),
                 do_lower_case: bool = False, similarity_fn_name: str | None = None,
                 truncate_dim: int | None = None) -> None:
        pooling = [pooling] if isinstance(pooling, str) else list(pooling)
        unknown = [p for p in pooling if p not in POOLING_MODES]
        if unknown or not pooling:
            raise ValueError(f"pooling {list(pooling)}: choose from {', '.join(POOLING_MODES)}")
        width = model.config.hidden_size * len(pooling)
        for i, layer in enumerate(dense):
            if layer.weight.shape[1] != width:
                raise ValueError(f"dense[{i}] takes {layer.weight.shape[1]} features, but gets {width}")
            width = layer.weight.shape[0]
        if truncate_dim is not None:
            check_positive_int("truncate_dim", truncate_dim)
        self.dense, self.truncate_dim, self._width = list(dense), truncate_dim, width
        self.dimension = self._dimension(truncate_dim)  # of what encode returns
        prompts = {} if prompts is None else prompts
        if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, (str, type(None)))
                                                    for k, v in prompts.items()):
            raise TypeError(f"prompts must be a dict of name: prompt text, got {prompts!r}")
        check_fit(model, tokenizer)
        self.model, self.tokenizer = model, tokenizer
        self.pooling = pooling
        self.normalize = normalize
        # As in sentence-transformers, "query" and "document" are always there, blank unless given.
        self.prompts = {"query": "", "document": "", **{name: text or "" for name, text in prompts.items()}}
        if default_prompt_name is not None and default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {default_prompt_name!r} is not among the prompts "
                             f"({', '.join(self.prompts)})")
        if not isinstance(include_prompt, bool):
            raise TypeError(f"include_prompt must be True or False, got {include_prompt!r}")
        self.default_prompt_name, self.include_prompt = default_prompt_name, include_prompt
        self.do_lower_case = bool(do_lower_case)
        self.similarity_fn_name = "cosine" if similarity_fn_name is None else similarity_fn_name
        if self.similarity_fn_name not in SIMILARITY_FUNCTIONS:
            raise ValueError(f"similarity_fn_name {similarity_fn_name!r}: choose from "
                             f"{', '.join(SIMILARITY_FUNCTIONS)}")
        self.max_seq_length = window(model.config, tokenizer, max_seq_length, "max_seq_length")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, dtype: Any = np.float32, quantize: str | None = None,
                        **hub_options: Any) -> SentenceEncoder:
        """Read a sentence-transformers model directory: modules.json (where the transformer is, whether a
        Normalize module follows), the pooling module's config.json (modes, include_prompt), the Dense
        modules' folders, sentence_bert_config.json (max_seq_length), config_sentence_transformers.json
        (prompts, default_prompt_name). A plain BERT directory gets mean pooling, unnormalised. Modules
        other than these, or in another order, are an error: leaving one out would change the embeddings.
        quantize="int8": the encoder in int8 (BertModel.quantize; Dense modules stay in floating point)."""
        check_quantize_mode(quantize)
        # From the hub, the transformer must sit at the repository's root (as in current sentence-transformers
        # models); a local directory may hold it in a subfolder (older models' 0_Transformer/).
        root = model_directory(name_or_path, need=("config.json",), weights=True, want=(
            *TOKENIZER_FILES, "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
            "1_Pooling/config.json"), **hub_options)
        modules = _modules(root)
        kinds = [kind for kind, _ in modules]
        unsupported = [kind for kind in kinds if kind not in MODULE_ORDER]
        if unsupported:
            raise ValueError(f"{root}/modules.json: module {unsupported[0]} is not supported "
                             f"({', '.join(MODULE_ORDER)} are)")
        ranks = [MODULE_ORDER[kind] for kind in kinds]
        if ranks != sorted(ranks) or any(kinds.count(k) > 1 for k in ("Transformer", "Pooling", "Normalize")):
            raise ValueError(f"{root}/modules.json: modules {kinds}; minibert runs Transformer, Pooling, "
                             "Dense..., Normalize")
        paths = dict(modules)
        transformer = root / paths.get("Transformer", "")
        pooling, include_prompt = ["mean"], True
        if "Pooling" in paths:
            config = _read_json(root / paths["Pooling"] / "config.json", "pooling", default=None)
            if config is None:  # a folder that is not there would silently pool by mean
                raise ValueError(f"{root / paths['Pooling'] / 'config.json'}: modules.json names a "
                                 "Pooling module here, but its config.json is missing")
            pooling, include_prompt = pooling_modes(config, root / paths["Pooling"]), config.get("include_prompt", True)
        dense_paths = [path for kind, path in modules if kind == "Dense"]
        if dense_paths:  # from the hub: the Dense modules' files fetched into the same snapshot as root, in one call
            model_directory(name_or_path, want=tuple(f"{path}/{name}" for path in dense_paths
                                                     for name in ("config.json", *WEIGHTS_FILES)), **hub_options)
        dense = [Dense.from_directory(root / path, dtype) for path in dense_paths]
        transformer_settings = _read_json(transformer / "sentence_bert_config.json", "sentence_bert_config", default={})
        settings = _read_json(root / "config_sentence_transformers.json", "config_sentence_transformers", default={})
        model = BertModel(*read_checkpoint(transformer), dtype=dtype)  # the directory resolved above, read once
        return cls(model.quantize(quantize) if quantize else model,
                   BertTokenizer._from_directory(transformer, os.fspath(transformer)),
                   pooling=pooling, normalize="Normalize" in paths,
                   max_seq_length=transformer_settings.get("max_seq_length"),
                   prompts=settings.get("prompts") or {}, default_prompt_name=settings.get("default_prompt_name"),
                   include_prompt=include_prompt, dense=dense,
                   do_lower_case=transformer_settings.get("do_lower_case", False),
                   similarity_fn_name=settings.get("similarity_fn_name"))

    def encode(self, sentences: str | Sequence[str], batch_size: int = 32, normalize_embeddings: bool = False,
               show_progress_bar: bool = False, long_inputs: str = "truncate", prompt_name: str | None = None,
               prompt: str | None = None, truncate_dim: int | None = None) -> np.ndarray:
        """Embeddings [N, D] for N sentences (or [D] for one; [0, D] for an empty list), in input order.

        Sentences are batched longest first, so padding is small. long_inputs: "truncate" (as
        sentence-transformers: the first max_seq_length tokens) or "average" (cut into consecutive windows
        of max_seq_length tokens and average their embeddings, weighted by their token counts). prompt, or
        the prompt named prompt_name (default: default_prompt_name), is put before every sentence.
        normalize_embeddings=True scales the embeddings to unit length even when the model does not; as in
        sentence-transformers, False does not undo the model's own normalising, and it comes after
        truncate_dim (default: the encoder's), which keeps the first truncate_dim values. show_progress_bar:
        a tqdm bar of batches on stderr, as in sentence-transformers.
        """
        check_positive_int("batch_size", batch_size)
        if truncate_dim is not None:
            check_positive_int("truncate_dim", truncate_dim)
        truncate_dim = self.truncate_dim if truncate_dim is None else truncate_dim
        if long_inputs not in ("truncate", "average"):
            raise ValueError(f"long_inputs={long_inputs!r}: use 'truncate' or 'average'")
        single = isinstance(sentences, str)
        sentences = text_list(sentences, "sentences")
        if not sentences:
            return np.zeros((0, self._dimension(truncate_dim)), dtype=self.model.dtype)
        average = long_inputs == "average"
        if average and self._prompt(prompt, prompt_name):
            raise ValueError("long_inputs='average' cannot take a prompt: only a text's first window would carry it")
        sentences, skip = self.apply_prompt(sentences, prompt, prompt_name)
        enc = self.tokenizer(sentences, truncation=True, max_length=self.max_seq_length,
                             return_overflowing_tokens=average)
        rows = enc["input_ids"]  # with average, a long sentence's further windows are further rows
        owners = enc["overflow_to_sample_mapping"] if average else range(len(rows))
        order = sorted(range(len(rows)), key=lambda k: -len(rows[k]))
        embeddings = np.zeros((len(sentences), self.model.config.hidden_size * len(self.pooling)), dtype=np.float64)
        weights = np.zeros(len(sentences))
        for start in tqdm(range(0, len(order), batch_size), desc="Batches", disable=not show_progress_bar):
            batch = order[start:start + batch_size]
            vectors = self.embed_rows([rows[k] for k in batch], skip)
            for k, vector in zip(batch, vectors):
                i, n = owners[k], max(len(rows[k]) - 2, 1)  # weighted by its tokens, [CLS] and [SEP] aside
                embeddings[i] += n * vector
                weights[i] += n
        embeddings = self.finish(embeddings / weights[:, None], normalize_embeddings, truncate_dim)
        return embeddings[0] if single else embeddings

    def apply_prompt(self, sentences: list[str], prompt: str | None = None,
                     prompt_name: str | None = None) -> tuple[list[str], int]:
        """The texts encode tokenizes: lower-cased if the model says so, the prompt (see encode) put before each;
        and how many leading tokens ([CLS] and the prompt's) the pooling leaves out (0 with include_prompt)."""
        prompt = self._prompt(prompt, prompt_name)
        if self.do_lower_case:
            prompt, sentences = lowercase(prompt), [lowercase(s) for s in sentences]
        if not prompt:
            return sentences, 0
        skip = 0 if self.include_prompt else len(self.tokenizer(prompt)["input_ids"]) - 1  # [CLS] + prompt, not [SEP]
        return [prompt + s for s in sentences], skip

    def finish(self, pooled: np.ndarray, normalize_embeddings: bool = False,
               truncate_dim: int | None = None) -> np.ndarray:
        """Embeddings from pooled vectors [N, H · modes] (float64): the Dense modules, the model's Normalize, the
        first truncate_dim values, normalize_embeddings, in sentence-transformers' order -> [N, D] in the
        model's dtype."""
        for layer in self.dense:
            pooled = layer(pooled)
        if self.normalize:  # the model's Normalize module
            pooled = _unit(pooled)
        pooled = pooled[:, :truncate_dim]  # None: all
        if normalize_embeddings:
            pooled = _unit(pooled)
        return pooled.astype(self.model.dtype)

    def encode_query(self, sentences: str | Sequence[str], prompt_name: str | None = None, prompt: str | None = None,
                     **options: Any) -> np.ndarray:
        """encode, with the "query" prompt (blank unless the model has one) when no other is asked for."""
        if prompt_name is None and prompt is None:
            prompt_name = "query"
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, **options)

    def encode_document(self, sentences: str | Sequence[str], prompt_name: str | None = None, prompt: str | None = None,
                        **options: Any) -> np.ndarray:
        """encode, with the "document" prompt (blank unless the model has one) when no other is asked for."""
        if prompt_name is None and prompt is None:
            prompt_name = "document"
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, **options)

    def _dimension(self, truncate_dim: int | None) -> int:
        return self._width if truncate_dim is None else min(truncate_dim, self._width)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Scores [N, M] of embeddings a [N, D] (or [D]) against b [M, D] (or [D]) by similarity_fn_name,
        as sentence-transformers' similarity() gives them; higher is more alike."""
        a, b = (np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (a, b))
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
            raise ValueError(f"similarity takes [N, D] and [M, D] embeddings, got shapes {a.shape} and {b.shape}")
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ValueError("similarity takes finite embeddings; these hold NaN or inf")
        return SIMILARITY_FUNCTIONS[self.similarity_fn_name](a, b).astype(self.model.dtype)

    def _prompt(self, prompt: str | None, prompt_name: str | None) -> str:
        """The text to put before each sentence, as sentence-transformers picks it: `prompt`, else the one
        named, else the default one, else none."""
        if prompt is not None and prompt_name is not None:
            raise ValueError("give prompt or prompt_name, not both")
        if prompt is not None:
            if not isinstance(prompt, str):
                raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
            return prompt
        if prompt_name is not None and prompt_name not in self.prompts:
            raise ValueError(f"prompt_name {prompt_name!r} is not among the prompts ({', '.join(self.prompts)})")
        name = self.default_prompt_name if prompt_name is None else prompt_name
        return "" if name is None else self.prompts[name]

    def embed_rows(self, rows: list[list[int]], skip: int | Sequence[int] = 0) -> np.ndarray:
        """Pooled vectors [B, D] for encoded rows ([CLS] ... [SEP] token ids), as one padded batch, leaving
        each row's first `skip` tokens (one count for all rows, or one per row) out of the pooling."""
        batch = self.tokenizer.pad({"input_ids": rows}, return_tensors="np")
        mask = batch["attention_mask"]
        hidden = self.model(batch["input_ids"], attention_mask=mask).last_hidden_state  # [B, S, H]
        # [B, S]: real tokens after the skipped ones
        pooled = mask * (np.cumsum(mask, axis=1) > np.reshape(skip, (-1, 1)))
        return pool(hidden, pooled, self.pooling, real=mask)  # [B, S] -> [B, D]


def pooling_modes(config: dict, where: Any) -> list[str]:
    """The modes a sentence-transformers Pooling config.json asks for, in the order they are concatenated:
    its "pooling_mode" (a mode or a list), or the older pooling_mode_* flags (none set: mean, as
    sentence-transformers 6 reads them). A mode minibert does not know is an error."""
    if "pooling_mode" in config:
        given = config["pooling_mode"]
        modes = [given] if isinstance(given, str) else given
        if not isinstance(modes, list) or not modes or not all(isinstance(m, str) for m in modes):
            raise ValueError(f"{where}/config.json: pooling_mode must be a mode or a list of modes, got {given!r}")
    else:
        modes = [mode for flag, mode in LEGACY_POOLING_FLAGS.items() if config.get(flag)] or ["mean"]
    modes = ["mean_sqrt_len" if m == "mean_sqrt_len_tokens" else m for m in modes]  # version 6's name for it
    unsupported = [m for m in modes if m not in POOLING_MODES]
    if unsupported:
        raise ValueError(f"{where}: pooling {unsupported} is not supported ({', '.join(POOLING_MODES)} are)")
    return modes


def pool(hidden: np.ndarray, mask: np.ndarray, modes: Sequence[str], real: np.ndarray | None = None) -> np.ndarray:
    """Sentence vectors from token vectors, over pooled (mask 1) tokens; modes concatenated in order.

    cls: the first pooled token's h ([CLS], wherever padding puts it);  max: max over tokens;
    mean: Σ h·m / Σ m;  mean_sqrt_len: Σ h·m / √(Σ m);  lasttoken: the last pooled token's h;
    weightedmean: Σ h·m·w / Σ m·w, w = 1, 2, 3, ... from the row's first real token.
    hidden [B, S, H], mask [B, S], real [B, S]: the real tokens, of which mask may leave a prompt out
    (default: mask) -> [B, H · len(modes)]
    """
    real = mask if real is None else real
    rows, length = np.arange(len(hidden)), hidden.shape[1]
    m = mask[..., None].astype(hidden.dtype)  # [B, S] -> [B, S, 1]
    count = np.maximum(m.sum(axis=1), 1e-9)  # [B, 1], as sentence-transformers clamps it
    w = m * (np.arange(1, length + 1)[None, :] - np.argmax(real, axis=1)[:, None])[..., None]  # [B, S, 1]
    vectors = {
        "cls": lambda: hidden[rows, np.argmax(mask, axis=1)],  # [B, S, H] -> [B, H]
        "max": lambda: np.where(m > 0, hidden, np.asarray(-1e9, hidden.dtype)).max(axis=1),  # padding can't win
        "mean": lambda: (hidden * m).sum(axis=1) / count,
        "mean_sqrt_len": lambda: (hidden * m).sum(axis=1) / np.sqrt(count),
        "weightedmean": lambda: (hidden * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9),
        "lasttoken": lambda: (hidden * m)[rows, length - 1 - np.argmax(mask[:, ::-1], axis=1)],  # a row with none: 0
    }
    return np.concatenate([vectors[mode]() for mode in modes], axis=1)


# The keys minibert reads from sentence-transformers' files and the JSON types they must have (null: absent):
# "yes" is not true, and 1.5 is not a length.
SETTINGS_TYPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "pooling": {**dict.fromkeys(LEGACY_POOLING_FLAGS, bool), "include_prompt": bool, "pooling_mode": (str, list),
                "word_embedding_dimension": int},
    "sentence_bert_config": {"max_seq_length": int, "do_lower_case": bool},
    "config_sentence_transformers": {"prompts": dict, "default_prompt_name": str, "similarity_fn_name": str,
                                     "activation_fn": str},
    "dense": {"in_features": int, "out_features": int, "bias": bool, "activation_function": str},
}
MAX_FEATURES = 1 << 20  # a Dense module's width: far beyond any model's, far below what would not fit


def _read_json(path: Path, kind: str, default: Any) -> Any:
    """A sentence-transformers settings file as a dict whose keys have the types SETTINGS_TYPES[kind] gives
    (nulls dropped), or `default` when there is no such file."""
    if not present(path):
        return default
    settings = read_json(path)
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: must hold a JSON object, not a {type(settings).__name__}")
    settings = {key: value for key, value in settings.items() if value is not None}
    for key, kinds in SETTINGS_TYPES[kind].items():
        value = settings.get(key)
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if key in settings and (not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)):
            wanted = " or ".join({bool: "true or false", int: "a whole number", str: "a string", list: "a list",
                                  dict: "an object"}[k] for k in kinds)
            raise ValueError(f"{path}: {key} must be {wanted}, got {json.dumps(value)[:60]}")
        if int in kinds and key in settings and not 0 < value <= MAX_FEATURES:
            raise ValueError(f"{path}: {key} must lie in [1, {MAX_FEATURES}], got {value}")
    return settings


def _modules(root: Path) -> list[tuple[str, str]]:
    """modules.json's (module kind, folder) pairs, each folder checked to lie inside the model directory;
    no modules.json: none."""
    if not present(root / "modules.json"):
        return []
    entries = read_json(root / "modules.json")
    if not isinstance(entries, list) or not all(isinstance(m, dict) for m in entries):
        raise ValueError(f"{root / 'modules.json'}: must be a list of modules ({{\"type\": ..., \"path\": ...}}), "
                         f"got {json.dumps(entries)[:60]}")
    modules = []
    for m in entries:
        kind, path = m.get("type", "?"), m.get("path", "")
        if not isinstance(kind, str):
            raise ValueError(f"{root / 'modules.json'}: a module's type must be a string, got {json.dumps(kind)[:60]}")
        inside(root, path, ValueError, f"{root / 'modules.json'}")
        modules.append((kind.rsplit(".", 1)[-1], path))
    return modules
