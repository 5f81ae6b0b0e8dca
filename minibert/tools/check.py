"""`minibert check`: every tensor of minibert against transformers (live, when it is installed) or against
the committed fixture made from the same weights, in float32 and float64."""

from __future__ import annotations

import math

import numpy as np

from ..cli import UserError
from ..loading.hub import model_directory
from ..loading.weights import read_weights, weights_digest, weights_file
from ..models import BertModel
from ..tokenizer import BertTokenizer
from ..tokenizer.files import TOKENIZER_FILES, VOCABULARY_FILES
from .reference_file import ReferenceFile

CHECK_DTYPES = ("float32", "float64")  # compared in both


def check(model: str, tolerance: float, tolerance_float64: float) -> tuple[dict, list[str], bool]:
    """Every tensor of minibert against transformers (live) or, without transformers, against the committed
    fixture made from the same weights (a source checkout's tests/fixtures); in float32 and in float64, so
    that a float32 difference can be told apart from a difference in the computation. model: a directory,
    hub id or miniature name. Returns (the results as data, as lines of text, whether both dtypes passed)."""
    directory = model_directory(model, need=("config.json",), want=TOKENIZER_FILES, weights=True)
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError:
        source, cases = "frozen fixture", fixture_cases(directory)
    else:
        source, cases = f"transformers {transformers.__version__}", [live_case(directory)]
    diffs = {}  # dtype -> per case, {tensor: (reference path, fast path)}
    for dtype in CHECK_DTYPES:
        ours = BertModel.from_pretrained(directory, dtype=dtype)
        diffs[dtype] = [compare(ours, batch, references[dtype]) for batch, references in cases]
    rows = [(name, *pair, *case64.get(name, (None, None)))  # a fixture may hold fewer float64 tensors
            for case32, case64 in zip(diffs["float32"], diffs["float64"]) for name, pair in case32.items()]
    largest = {"float32": worst(row[1:3] for row in rows), "float64": worst(row[3:5] for row in rows)}
    limits = {"float32": tolerance, "float64": tolerance_float64}
    passed = {dtype: bool(largest[dtype] <= limits[dtype]) for dtype in CHECK_DTYPES}
    cell = lambda d: "-" if d is None else f"{d:.2e}"  # noqa: E731
    lines = [f"minibert vs {source} on {model}, max abs diff on real positions",
             f"{'':22} {'float32':>28}   {'float64':>28}",
             f"{'tensor':22} {'reference path':>15} {'fast path':>12}   {'reference path':>15} {'fast path':>12}"]
    lines += [f"{n:22} {cell(a):>15} {cell(b):>12}   {cell(a64):>15} {cell(b64):>12}" for n, a, b, a64, b64 in rows]
    lines += [f"{dtype}: {'PASS' if passed[dtype] else 'FAIL'}, worst {largest[dtype]:.2e} "
              f"(tolerance {limits[dtype]:.0e})"
              for dtype in CHECK_DTYPES]
    if passed["float64"] and not passed["float32"]:
        lines.append("float64 agrees, so the float32 difference is rounding, not a difference in the computation: "
                     "this model or input is ill-conditioned in float32")
    data = {"source": source, "rows": [
        {"tensor": n, "reference_path": a, "fast_path": b, "reference_path_float64": a64, "fast_path_float64": b64}
        for n, a, b, a64, b64 in rows],
        "worst": largest["float32"], "tolerance": tolerance, "worst_float64": largest["float64"],
        "tolerance_float64": tolerance_float64, "passed": all(passed.values())}
    return data, lines, all(passed.values())


def live_case(directory):
    """Sample sentence pairs through transformers' BertModel in float32 and float64:
    (batch, {dtype: {hidden_states, attentions, pooler_output}})."""
    import torch
    import transformers

    if not any((directory / name).is_file() for name in VOCABULARY_FILES):
        raise UserError(f"{directory} has no tokenizer.json or vocab.txt to make sample inputs from")
    batch = dict(BertTokenizer.from_pretrained(directory)(
        ["The capital of France is Paris.", "BERT reads both directions at once."], ["It is a small model.", "Short."],
        padding=True, return_tensors="np"))
    model = transformers.BertModel.from_pretrained(directory, attn_implementation="eager").eval()
    references = {}
    for dtype in CHECK_DTYPES:
        with torch.no_grad():
            out = model.to(getattr(torch, dtype))(**{k: torch.from_numpy(v) for k, v in batch.items()},
                                                  output_hidden_states=True, output_attentions=True)
        references[dtype] = {"hidden_states": [h.numpy() for h in out.hidden_states],
                             "attentions": [a.numpy() for a in out.attentions],
                             "pooler_output": None if out.pooler_output is None else out.pooler_output.numpy()}
    return batch, references


def fixture_cases(directory):
    """The committed fixture whose weights digest matches the model's, as (batch, reference) pairs."""
    fixture = ReferenceFile.for_weights(weights_digest(read_weights(weights_file(directory))))
    if fixture is None:
        raise UserError("transformers is not installed, and no committed fixture "
                        "(tests/fixtures/bert_*.npz of a source checkout) was made from this model's weights: "
                        "pip install 'bert-miniatures-numpy[reference]'")
    layers = fixture.config["num_hidden_layers"]
    cases = []
    for b in range(fixture.num_batches):
        references = {}
        for dtype in CHECK_DTYPES:  # a fixture may keep only the last hidden state (and the pooler) in float64
            tensors = fixture.reference(b, dtype)
            hidden = [tensors.get(f"hidden_states/{i}") for i in range(layers)]
            references[dtype] = {"hidden_states": hidden + [tensors["last_hidden_state"]],
                                 "attentions": [tensors.get(f"attentions/{i}") for i in range(layers)],
                                 "pooler_output": tensors.get("pooler_output")}
        cases.append((fixture.batch(b), references))
    return cases


def worst(pairs) -> float:
    """The largest difference in (reference path, fast path) pairs, None meaning not compared; NaN if any is
    NaN (an output holds a NaN), so that it fails every tolerance."""
    values = [d for pair in pairs for d in pair if d is not None]
    return math.nan if any(math.isnan(d) for d in values) else max(values)


def compare(ours, batch, reference) -> dict[str, tuple[float, float | None]]:
    """{tensor: (max abs diff of the reference path, of the fast path or None)} over real positions, for the
    reference tensors that are not None (attention maps come from the reference path only)."""
    slow = ours(**batch, output_hidden_states=True, output_attentions=True)  # attention maps: the reference path
    fast = ours(**batch, output_hidden_states=True)
    real = batch["attention_mask"].astype(bool)
    diffs = {"embeddings" if i == 0 else f"layer {i} output": (float(np.abs(slow.hidden_states[i] - r)[real].max()),
                                                               float(np.abs(fast.hidden_states[i] - r)[real].max()))
             for i, r in enumerate(reference["hidden_states"]) if r is not None}
    diffs |= {f"layer {i + 1} attention":
              (float(np.abs(slow.attentions[i] - r).transpose(0, 2, 1, 3)[real].max()), None)
              for i, r in enumerate(reference["attentions"]) if r is not None}
    if reference["pooler_output"] is not None:
        diffs["pooler"] = (float(np.abs(slow.pooler_output - reference["pooler_output"]).max()),
                           float(np.abs(fast.pooler_output - reference["pooler_output"]).max()))
    return diffs
