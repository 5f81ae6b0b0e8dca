"""Google's 24 BERT miniatures (Turc et al., 2019, "Well-Read Students Learn Better"), as a table.

The data is miniatures.tsv beside this file (it ships in the package):
name, hub id, layers L, hidden size H, heads A = H/64, intermediate size 4H, parameter count of BertModel
(embeddings, encoder, pooler; the MLM/NSP heads add a transform, a bias and the NSP classifier), and the
GLUE test-set scores the release published (for BERT-Tiny, Mini, Small and Medium only).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "miniatures.tsv"
GLUE_TASKS = ("glue_score", "cola", "sst2", "mrpc", "stsb", "qqp", "mnli_m", "mnli_mm", "qnli", "rte", "wnli", "ax")


@dataclass(frozen=True)
class Miniature:
    name: str  # "bert-mini"; the unnamed ones are "bert-L6-H512"
    hub_id: str  # "google/bert_uncased_L-4_H-256_A-4"
    layers: int
    hidden: int
    heads: int
    intermediate: int
    parameters: int
    glue: dict[str, str]  # task -> published score ("81.1/71.8" for F1/accuracy pairs); empty if unpublished


@cache
def miniatures() -> tuple[Miniature, ...]:
    with open(TABLE, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return tuple(
        Miniature(row["name"], row["hub_id"], int(row["layers"]), int(row["hidden"]), int(row["heads"]),
                  int(row["intermediate"]), int(row["parameters"]), {t: row[t] for t in GLUE_TASKS if row[t]})
        for row in rows
    )


def find_miniature(name: str) -> Miniature | None:
    """The miniature called `name`: its short name ("bert-mini"), hub id, or hub id without "google/"."""
    key = name.lower().removeprefix("google/")
    for m in miniatures():
        if key in (m.name.lower(), m.hub_id.lower().removeprefix("google/")):
            return m
    return None
