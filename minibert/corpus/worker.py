"""The worker classes a distributed engine calls: built once per worker, then called on batch after batch.

    ds.map_batches(Embedder, fn_constructor_kwargs={"model": "all-MiniLM-L6-v2"}, concurrency=4)

Each worker loads its model in its own process (only the model's name travels from the driver, never the
weights), sets its own thread count, and takes a batch in any of the forms engines hand over: a list of
texts, a NumPy / Arrow / pandas column, or a table — Ray's dict of arrays, a pandas DataFrame, an Arrow
Table — from which it reads the column `text` and to which it adds its output columns.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from ..errors import check_positive_int
from ..fast.threads import set_num_threads
from ..models import BertForSequenceClassification
from ..tasks import SentenceEncoder, class_logits, probabilities
from ..tokenizer import BertTokenizer


class Worker:
    """What Embedder and Classifier share: reading the texts out of a batch, and putting columns back."""

    def __init__(self, threads: int, batch_size: int, column: str) -> None:
        check_positive_int("threads", threads)
        check_positive_int("batch_size", batch_size)
        self.threads, self.batch_size, self.column = threads, batch_size, column
        set_num_threads(threads)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (as Dask and Spark send a function's objects to their workers), a worker is only its
        constructor's arguments; unpickling loads the model again where it lands."""
        return self.arguments

    def __setstate__(self, arguments: dict[str, Any]) -> None:
        self.__init__(**arguments)

    def texts(self, batch: Any) -> list[str]:
        """The texts of a batch: a list, a NumPy / Arrow / pandas column, or the column `self.column` of a
        table (dict of arrays, pandas DataFrame, Arrow Table)."""
        if _is_table(batch):
            names = list(batch.keys()) if isinstance(batch, dict) else list(batch.column_names if hasattr(
                batch, "column_names") else batch.columns)
            if self.column not in names:
                raise ValueError(f"the batch has no column {self.column!r} (its columns: {', '.join(map(str, names))})")
            batch = batch[self.column]
        if isinstance(batch, str):
            raise TypeError("a batch is a list or column of texts, not one str")
        if hasattr(batch, "to_pylist"):  # Arrow
            texts = batch.to_pylist()
        else:  # NumPy, pandas, a list
            texts = batch.tolist() if hasattr(batch, "tolist") else list(batch)
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"text {bad} of the batch is {type(texts[bad]).__name__}, not str: {texts[bad]!r:.60}")
        return texts

    def run(self, batch: Any, columns: dict[str, np.ndarray]) -> Any:
        """`columns` (each [N, ...], the first being the result on its own) added to a table batch, or the
        first one alone for a column batch."""
        if not _is_table(batch):
            return next(iter(columns.values()))
        if isinstance(batch, dict):
            return {**batch, **columns}
        if hasattr(batch, "append_column"):  # an Arrow Table: 2-D values as fixed-size lists
            import pyarrow as pa

            for name, values in columns.items():
                if values.ndim == 2:
                    values = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])
                batch = batch.append_column(name, pa.array(values) if isinstance(values, np.ndarray) else values)
            return batch
        return batch.assign(**{name: list(values) if values.ndim == 2 else values  # a DataFrame: a vector per cell
                               for name, values in columns.items()})

    def call(self, batch: Any, compute) -> Any:
        set_num_threads(self.threads)  # an engine may call from another thread than the constructor's
        return self.run(batch, compute(self.texts(batch)))


class Embedder(Worker):
    """Sentence embeddings of a batch: float32 [N, D], the same values as SentenceEncoder.encode gives.

    model: a sentence-transformers model (hub id or directory; see SentenceEncoder.from_pretrained).
    threads: the threads this worker computes with (run one worker per `threads` cores).
    batch_size, prompt_name, normalize_embeddings: as in SentenceEncoder.encode; texts longer than the
    model's window are truncated as encode truncates them.
    On a table batch, reads the column `column` and adds `output_column` ([N, D] float32).
    """

    def __init__(self, model: str | os.PathLike, threads: int = 1, batch_size: int = 32, prompt_name: str | None = None,
                 normalize_embeddings: bool = False, column: str = "text", output_column: str = "embedding") -> None:
        super().__init__(threads, batch_size, column)
        self.arguments = {"model": model, "threads": threads, "batch_size": batch_size, "prompt_name": prompt_name,
                          "normalize_embeddings": normalize_embeddings, "column": column,
                          "output_column": output_column}
        self.encoder = SentenceEncoder.from_pretrained(model)
        self.options = {"batch_size": batch_size, "prompt_name": prompt_name,
                        "normalize_embeddings": normalize_embeddings}
        self.encoder._prompt(None, prompt_name)  # an unknown prompt name fails here, not at the first batch
        self.output_column = output_column

    def __call__(self, batch: Any) -> Any:
        return self.call(batch, lambda texts: {self.output_column: np.asarray(
            self.encoder.encode(texts, **self.options), dtype=np.float32)})  # [N, D]


class Classifier(Worker):
    """A sequence classifier's scores for a batch: float32 [N, num_labels], the probabilities classify
    reports (softmax; sigmoid for multi-label; the value for regression), texts truncated as classify does.

    model: a fine-tuned BertForSequenceClassification (hub id or directory); labels: its id2label names.
    On a table batch, reads the column `column` and adds `scores` [N, num_labels] and, for a single-label
    model, `label` (the most probable label's name).
    """

    def __init__(self, model: str | os.PathLike, threads: int = 1, batch_size: int = 32, column: str = "text") -> None:
        super().__init__(threads, batch_size, column)
        self.arguments = {"model": model, "threads": threads, "batch_size": batch_size, "column": column}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an untrained head is refused below
            self.model = BertForSequenceClassification.from_pretrained(model)
        if self.model.untrained_head:
            raise ValueError(f"{model} has no trained classifier (it is not a fine-tuned sequence classifier), so its "
                             "labels would be random: fine-tune it first or pick a classification model")
        self.tokenizer = BertTokenizer.from_pretrained(model)
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.problem_type = self.model.config.problem_type

    def __call__(self, batch: Any) -> Any:
        def compute(texts: list[str]) -> dict[str, np.ndarray]:
            logits = class_logits(self.model, self.tokenizer, texts, None, self.batch_size)  # [N, num_labels]
            scores = probabilities(logits, self.problem_type).astype(np.float32)
            columns = {"scores": scores}  # [N, num_labels]
            if self.problem_type == "single_label_classification":
                columns["label"] = np.array(self.labels, dtype=object)[scores.argmax(axis=1)]  # [N]
            return columns

        return self.call(batch, compute)


def _is_table(batch: Any) -> bool:
    """A dict of columns, a pandas DataFrame or an Arrow Table (not a single column)."""
    arrow, pandas = hasattr(batch, "column_names"), hasattr(batch, "columns") and hasattr(batch, "assign")
    return isinstance(batch, dict) or arrow or pandas
