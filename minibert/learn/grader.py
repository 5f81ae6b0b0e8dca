"""`minibert learn check DIR`: run a learner's blocks, one at a time, on tensors frozen from transformers.

Every block gets the inputs transformers' own module got (caught by hooks in tests/fixtures/
make_learn_fixtures.py) and is compared with what that module returned, in float64: a right block is off by
rounding only (~1e-15 of the tensor's size), so anything past TOLERANCE is a mistake. For a wrong block the
grader names the first wrong tensor and position, and recognises the classic mistakes by computing each one
(with the reference blocks and the one thing changed) and seeing whether the learner's output equals it.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import json
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from .. import nn
from .exercises import TRACKS
from ..loading.weights import flatten, unflatten

REFERENCE = Path(__file__).with_name("reference.npz")
TOLERANCE = 1e-9  # float64 against float64, relative (_scale): a right block differs by rounding, ~1e-15


class Reference:
    """The frozen tensors: inputs, weights (nested, Hugging Face names), and transformers' outputs."""

    def __init__(self, path: Path = REFERENCE) -> None:
        data = np.load(path)
        self.arrays = {k: data[k] for k in data.files}
        self.config = json.loads(str(self.arrays["config"]))
        self.heads, self.eps = self.config["num_attention_heads"], self.config["layer_norm_eps"]
        self.w = unflatten({k[2:]: v for k, v in self.arrays.items() if k.startswith("w/")})
        self.layer = self.w["encoder"]["layer"][0]
        self.decoder = {"weight": self.w["embeddings"]["word_embeddings"]["weight"],
                        "bias": self.w["cls"]["predictions"]["bias"]}

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def grads(self, block: str) -> dict[str, np.ndarray]:
        """torch autograd's gradients for `block`, by dotted name ("x", "query.weight", ...)."""
        prefix = f"{block}/grad/"
        return {k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)}


@dataclass
class Mistake:
    """A classic mistake: what the block returns when it makes it (a dict of some of its outputs)."""

    hint: str
    outputs: Callable[[Reference], dict[str, np.ndarray]]


@dataclass
class Block:
    """One function the learner writes: how to call it, what transformers returned, the known mistakes.

    run(learner, ref) calls the learner's function and returns its outputs by name (expected's names);
    expected(ref) gives transformers' tensors by name.
    """

    name: str
    run: Callable[[SimpleNamespace, Reference], dict[str, Any]]
    expected: Callable[[Reference], dict[str, np.ndarray]]
    mistakes: tuple[Mistake, ...] = ()


@dataclass
class Result:
    block: str
    status: str  # "OK", "NOT OK", "TODO", "ERROR"
    maxdiff: float | None = None
    lines: list[str] = field(default_factory=list)


# ---- the classic mistakes, each computed with the reference blocks and one thing changed ----------------

def _tanh_gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def _layer_norm_unbiased(x, weight, bias, eps):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, ddof=1, keepdims=True) + eps) * weight + bias


def _attention(r: Reference, scale: bool = True, mask: bool = True, mask_after: bool = False,
               wrong_split: bool = False) -> dict[str, np.ndarray]:
    """Self-attention of layer 0 with one step done wrong."""
    x, s = r["model/hidden_states/0"], r.layer["attention"]["self"]
    B, S, H = x.shape
    A = r.heads

    def split(t):  # the wrong way reshapes straight to [B, A, S, d], mixing positions into heads
        return t.reshape(B, A, S, H // A) if wrong_split else nn.attention.split_heads(t, A)

    q, k, v = (split(nn.dense(x, **s[n])) for n in ("query", "key", "value"))
    scores = q @ k.transpose(0, 1, 3, 2) * (q.shape[-1] ** -0.5 if scale else 1.0)
    if mask and not mask_after:
        scores = scores + r["mask_bias"]
    probs = nn.softmax(scores)
    if mask_after:
        probs = probs + r["mask_bias"]
    context = probs @ v
    context = context.reshape(B, S, H) if wrong_split else nn.attention.merge_heads(context)
    return {"context": context, "probabilities": probs}


def _pre_ln_layer(r: Reference) -> dict[str, np.ndarray]:
    """The first layer's output in pre-LN order (x + Attention(LN(x)), then a + FFN(LN(a))), as later
    transformers are built, not BERT."""
    x, w, eps = r["model/hidden_states/0"], r.layer, r.eps
    att = w["attention"]
    context, _ = nn.self_attention(nn.layer_norm(x, **att["output"]["LayerNorm"], eps=eps), r["mask_bias"],
                                   **att["self"], num_heads=r.heads)
    a = x + nn.dense(context, **att["output"]["dense"])
    y = a + nn.feed_forward(nn.layer_norm(a, **w["output"]["LayerNorm"], eps=eps), w["intermediate"]["dense"],
                            w["output"]["dense"])
    return {"hidden_states/1": y}


def _forward(bert: Callable, r: Reference, eps: float) -> dict[str, Any]:
    """A forward (the learner's `bert`, or nn.bert with a mistake) on the frozen batch: every hidden state,
    attention map and the pooled vector, by name."""
    hidden_states, attentions, pooled = bert(r["input/input_ids"], r["input/attention_mask"], r["input/token_type_ids"],
                                             r["input/position_ids"], r.w["embeddings"], r.w["encoder"], r.w["pooler"],
                                             num_heads=r.heads, eps=eps)
    named = {f"hidden_states/{i}": h for i, h in enumerate(hidden_states)}
    named.update({f"attentions/{i}": a for i, a in enumerate(attentions)})
    return {**named, "pooler_output": pooled}


def _embeddings_sum(r: Reference) -> np.ndarray:
    e = r.w["embeddings"]
    return (e["word_embeddings"]["weight"][r["input/input_ids"]]
            + e["token_type_embeddings"]["weight"][r["input/token_type_ids"]]
            + e["position_embeddings"]["weight"][r["input/position_ids"]])


EPS_HINT = ("LayerNorm's ε must be the one passed in (the config's layer_norm_eps, 1e-12 for BERT), not {eps:g}"
            " (torch's default is 1e-5)")

LAYER_NORM_MISTAKES = tuple(
    Mistake(EPS_HINT.format(eps=eps), lambda r, eps=eps: {"output": nn.layer_norm(
        r["layer_norm/x"], **r.w["embeddings"]["LayerNorm"], eps=eps)}) for eps in (1e-5, 1e-3, 1e-6)
) + (Mistake("the variance must be the biased one, mean((x - μ)²), as torch's LayerNorm takes it, not N-1",
             lambda r: {"output": _layer_norm_unbiased(r["layer_norm/x"],
                                                       **r.w["embeddings"]["LayerNorm"], eps=r.eps)}),)

TANH_GELU = "this is GELU's tanh approximation; BERT uses the exact form x · ½ · (1 + erf(x / √2))"
WRONG_SPLIT = ("heads are split along the wrong axis: reshape [B, S, H] to [B, S, A, d] (each token's hidden "
               "vector cut into A pieces), then swap S and A; reshaping straight to [B, A, S, d] mixes positions")


def _blocks() -> list[Block]:
    return [
        Block("layer_norm",
              lambda m, r: {"output": m.layer_norm(r["layer_norm/x"], **r.w["embeddings"]["LayerNorm"], eps=r.eps)},
              lambda r: {"output": r["layer_norm/out"]}, LAYER_NORM_MISTAKES),
        Block("gelu", lambda m, r: {"output": m.gelu(r["gelu/x"])}, lambda r: {"output": r["gelu/out"]},
              (Mistake(TANH_GELU, lambda r: {"output": _tanh_gelu(r["gelu/x"])}),)),
        Block("softmax", lambda m, r: {"output": m.softmax(r["softmax/x"])}, lambda r: {"output": r["softmax/out"]},
              (Mistake("softmax runs over the last axis (the keys), each row summing to 1",
                       lambda r: {"output": np.exp(r["softmax/x"]) / np.exp(r["softmax/x"]).sum(-2, keepdims=True)}),)),
        Block("split_heads", lambda m, r: {"output": m.split_heads(r["model/hidden_states/0"], r.heads)},
              lambda r: {"output": r["split_heads/out"]},
              (Mistake(WRONG_SPLIT, lambda r: {"output": r["model/hidden_states/0"].reshape(
                  *r["split_heads/out"].shape)}),)),
        Block("merge_heads", lambda m, r: {"output": m.merge_heads(r["split_heads/out"])},
              lambda r: {"output": r["model/hidden_states/0"]}),
        Block("padding_mask_bias",
              lambda m, r: {"output": m.padding_mask_bias(r["input/attention_mask"], np.dtype(np.float64))},
              lambda r: {"output": r["mask_bias"]},
              (Mistake("the bias is 0 at tokens and the dtype's most negative number (np.finfo(dtype).min) at "
                       "padding, shaped [B, 1, 1, S]; -10000, as the first BERT code used, is not what "
                       "transformers adds",
                       lambda r: {"output": np.where(r["input/attention_mask"] == 1, 0.0, -10000.0)[:, None, None, :]}),
               Mistake("the mask itself (1 = token) is not the bias: tokens get 0, padding np.finfo(dtype).min",
                       lambda r: {"output": r["input/attention_mask"][:, None, None, :].astype(np.float64)}))),
        Block("self_attention",
              lambda m, r: dict(zip(("context", "probabilities"), m.self_attention(
                  r["model/hidden_states/0"], r["mask_bias"], **r.layer["attention"]["self"], num_heads=r.heads))),
              lambda r: {"context": r["attention/context"], "probabilities": r["model/attentions/0"]},
              (Mistake("the padding mask is not applied: add mask_bias to the scores before the softmax",
                       lambda r: _attention(r, mask=False)),
               Mistake("the padding mask is added after the softmax; add it to the scores, before the softmax",
                       lambda r: {"probabilities": _attention(r, mask_after=True)["probabilities"]}),
               Mistake("the scores are not scaled: divide Q Kᵀ by √d, d the size of one head",
                       lambda r: _attention(r, scale=False)),
               Mistake(WRONG_SPLIT, lambda r: {"context": _attention(r, wrong_split=True)["context"]}))),
        Block("feed_forward",
              lambda m, r: {"output": m.feed_forward(r["feed_forward/x"], r.layer["intermediate"]["dense"],
                                                     r.layer["output"]["dense"])},
              lambda r: {"output": r["feed_forward/out"]},
              (Mistake(TANH_GELU, lambda r: {"output": nn.dense(_tanh_gelu(nn.dense(
                  r["feed_forward/x"], **r.layer["intermediate"]["dense"])), **r.layer["output"]["dense"])}),
               Mistake("the activation is GELU, not ReLU", lambda r: {"output": nn.dense(np.maximum(nn.dense(
                   r["feed_forward/x"], **r.layer["intermediate"]["dense"]), 0.0), **r.layer["output"]["dense"])}))),
        Block("embeddings",
              lambda m, r: {"output": m.embeddings(r["input/input_ids"], r["input/token_type_ids"],
                                                   r["input/position_ids"], **r.w["embeddings"], eps=r.eps)},
              lambda r: {"output": r["model/hidden_states/0"]},
              (Mistake("the LayerNorm's result is added to its input (x += layer_norm(x)); the embeddings' output is "
                       "LayerNorm(word + type + position) alone",
                       lambda r: {"output": _embeddings_sum(r)
                                  + nn.layer_norm(_embeddings_sum(r), **r.w["embeddings"]["LayerNorm"],
                                                                               eps=r.eps)}),
               Mistake("the sum has no LayerNorm: e = LayerNorm(word + type + position)",
                       lambda r: {"output": _embeddings_sum(r)}))),
        Block("pooler", lambda m, r: {"output": m.pooler(r["model/hidden_states/2"], **r.w["pooler"])},
              lambda r: {"output": r["model/pooler_output"]},
              (Mistake("the pooler reads the first token ([CLS]) only, not the mean over tokens",
                       lambda r: {"output": np.tanh(nn.dense(r["model/hidden_states/2"].mean(1),
                                                             **r.w["pooler"]["dense"]))}),
               Mistake("the pooler ends in tanh", lambda r: {"output": nn.dense(r["model/hidden_states/2"][:, 0],
                                                                                **r.w["pooler"]["dense"])}))),
        Block("bert", lambda m, r: _forward(m.bert, r, r.eps),
              lambda r: {k[len("model/"):]: v for k, v in r.arrays.items()
                         if k.startswith("model/") and k != "model/logits"},
              (Mistake("this is pre-LN (x + f(LayerNorm(x))); BERT is post-LN: LayerNorm(x + f(x)) "
                       "after each sub-layer", _pre_ln_layer),
               Mistake(EPS_HINT.format(eps=1e-5), lambda r: _forward(nn.bert, r, 1e-5)))),
        Block("masked_lm_head",
              lambda m, r: {"output": m.masked_lm_head(r["model/hidden_states/2"],
                                                       r.w["cls"]["predictions"]["transform"], r.decoder, eps=r.eps)},
              lambda r: {"output": r["model/logits"]},
              (Mistake("the MLM head's transform is dense, then GELU, then LayerNorm: the GELU is missing",
                       lambda r: {"output": nn.dense(nn.layer_norm(nn.dense(
                           r["model/hidden_states/2"], **r.w["cls"]["predictions"]["transform"]["dense"]),
                           **r.w["cls"]["predictions"]["transform"]["LayerNorm"], eps=r.eps), **r.decoder)}),)),
        # The backward track: gradients against torch autograd's.
        Block("layer_norm_backward",
              lambda m, r: dict(zip(("x", "weight", "bias"), m.layer_norm_backward(
                  r["layer_norm/dy"], r["layer_norm/x"], r.w["embeddings"]["LayerNorm"]["weight"], r.eps))),
              lambda r: r.grads("layer_norm"),
              (Mistake("∂x lacks the terms through μ and σ²: ∂x = r/N · (N ∂x̂ - Σ ∂x̂ - x̂ Σ ∂x̂ x̂)", lambda r: {
                  "x": r["layer_norm/dy"] * r.w["embeddings"]["LayerNorm"]["weight"] / np.sqrt(
                      r["layer_norm/x"].var(-1, keepdims=True) + r.eps)}),)),
        Block("gelu_backward", lambda m, r: {"x": m.gelu_backward(r["gelu/dy"], r["gelu/x"])},
              lambda r: r.grads("gelu")),
        Block("softmax_backward", lambda m, r: {"x": m.softmax_backward(r["softmax/dy"], r["softmax/out"])},
              lambda r: r.grads("softmax"),
              (Mistake("∂s = p ⊙ (∂p - Σ_j ∂p_j p_j): the sum term is missing",
                       lambda r: {"x": r["softmax/out"] * r["softmax/dy"]}),)),
        Block("feed_forward_backward",
              lambda m, r: _named_grads(m.feed_forward_backward(r["feed_forward/dy"], r["feed_forward/x"],
                                                                r.layer["intermediate"]["dense"],
                                                                r.layer["output"]["dense"]),
                                        ("x", "intermediate.dense", "output")),
              lambda r: r.grads("feed_forward")),
        Block("self_attention_backward",
              lambda m, r: _named_grads(m.self_attention_backward(
                  r["attention/dy"], r["model/hidden_states/0"], r["mask_bias"], **r.layer["attention"]["self"],
                  num_heads=r.heads), ("x", "")),
              lambda r: r.grads("attention")),
        Block("encoder_layer_backward",
              lambda m, r: _named_grads(m.encoder_layer_backward(
                  r["encoder_layer/dy"], r["model/hidden_states/0"], r["mask_bias"], **r.layer, num_heads=r.heads,
                  eps=r.eps), ("x", "")),
              lambda r: r.grads("encoder_layer")),
        Block("embeddings_backward",
              lambda m, r: flatten(m.embeddings_backward(r["embeddings/dy"], r["input/input_ids"],
                                                         r["input/token_type_ids"],
                                                         r["input/position_ids"], **r.w["embeddings"], eps=r.eps)),
              lambda r: r.grads("embeddings")),
        Block("pooler_backward",
              lambda m, r: _named_grads(m.pooler_backward(r["pooler/dy"], r["model/hidden_states/2"], **r.w["pooler"]),
                                        ("x", "dense")),
              lambda r: r.grads("pooler")),
        Block("masked_lm_head_backward",
              lambda m, r: _named_grads(m.masked_lm_head_backward(
                  r["masked_lm_head/dy"], r["model/hidden_states/2"], r.w["cls"]["predictions"]["transform"], r.decoder,
                  eps=r.eps), ("x", "transform", "decoder")),
              lambda r: {("bias" if k == "bias" else k): v for k, v in r.grads("masked_lm_head").items()}),
    ]


def _named_grads(outputs: tuple, names: tuple[str, ...]) -> dict[str, Any]:
    """(dx, {nested grads}, ...) -> {"x": dx, "prefix.weight": ...}: a backward's outputs under torch's names."""
    named: dict[str, Any] = {}
    for name, value in zip(names, outputs):
        if isinstance(value, dict):
            named.update({(f"{name}.{k}" if name else k): v for k, v in flatten(value).items()})
        else:
            named[name] = value
    if "decoder.bias" in named:  # the tied decoder's bias is the head's "bias" parameter in transformers
        named["bias"] = named.pop("decoder.bias")
    return named


BLOCKS = {block.name: block for block in _blocks()}


_IMPORTS = itertools.count()  # each check imports the learner's folder afresh, under a new name


def load_learner(directory: str | Path) -> SimpleNamespace:
    """Import the learner's folder as a package of its own (a fresh import each call); its functions, by name."""
    directory = Path(directory).resolve()
    name = f"minibert_learner_{next(_IMPORTS)}"
    spec = importlib.util.spec_from_file_location(name, directory / "__init__.py",
                                                  submodule_search_locations=[str(directory)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    functions = {}
    for part in sorted(directory.glob("*.py")):  # every function of every file, whatever __init__ exports
        submodule = importlib.import_module(f"{name}.{part.stem}") if part.stem != "__init__" else module
        functions.update({k: v for k, v in vars(submodule).items() if callable(v)
                          and getattr(v, "__module__", "") == submodule.__name__})
    return SimpleNamespace(**functions)


def where(error: BaseException, directory: Path) -> str:
    """'attention.py line 42' for the deepest frame of the traceback inside the learner's folder."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve().parent == directory]
    return f" ({Path(frames[-1].filename).name} line {frames[-1].lineno})" if frames else ""


def _scale(ref: np.ndarray) -> float:
    """Differences are measured relative to the tensor's size where it exceeds 1 (gradients reach 1e3)."""
    return max(1.0, float(np.abs(ref).max())) if ref.size else 1.0


def compare(ours: dict[str, Any], expected: dict[str, np.ndarray]) -> tuple[float, list[str]]:
    """The largest |ours - expected| over every tensor, and what is wrong (nothing when it is right): a
    missing tensor, a wrong shape, or the first tensor past TOLERANCE (relative, see _scale) with its first
    wrong position."""
    worst, problems = 0.0, []
    for name, ref in expected.items():
        if name not in ours:
            return np.inf, [f"{name}: not returned (returned: {', '.join(ours) or 'nothing'})"]
        value = None if ours[name] is None else np.asarray(ours[name], dtype=np.float64)
        if value is None or value.shape != ref.shape:
            return np.inf, [f"{name}: shape {None if value is None else value.shape}, expected {ref.shape}"]
        diff = np.abs(value - ref)
        diff[np.isnan(diff)] = np.inf  # a NaN is as wrong as it gets
        d = float(diff.max()) if diff.size else 0.0
        worst = max(worst, d)
        if d > TOLERANCE * _scale(ref) and not problems:
            at = np.unravel_index(int(np.argmax(diff)), diff.shape)
            problems.append(f"first wrong tensor: {name}, at {list(map(int, at))}: yours {value[at]:.6g}, "
                            f"transformers {ref[at]:.6g}")
    return worst, problems


def diagnose(block: Block, ours: dict[str, Any], ref: Reference) -> list[str]:
    """The hint of every known mistake whose outputs the learner's equal."""
    hints = []
    for mistake in block.mistakes:
        with np.errstate(all="ignore"):  # some mistakes overflow (a mask added after the softmax)
            wrong = mistake.outputs(ref)
        try:
            equal = all(np.allclose(np.asarray(ours[k], dtype=np.float64), v, rtol=0, atol=TOLERANCE * _scale(v),
                                    equal_nan=True)
                        for k, v in wrong.items())
        except (KeyError, ValueError, TypeError):  # a missing output or another shape: not this mistake
            equal = False
        if equal:
            hints.append(f"hint: {mistake.hint}")
    return hints


def grade(block: Block, learner: SimpleNamespace, ref: Reference, directory: Path) -> Result:
    """Run one block of the learner's and compare it with transformers'."""
    try:
        with np.errstate(all="ignore"):  # a wrong block may overflow; the comparison says so, not a warning
            ours = block.run(learner, ref)
    except NotImplementedError:
        return Result(block.name, "TODO", lines=["not written yet"])
    except Exception as error:  # the learner's code: any error is theirs to see, in one line
        return Result(block.name, "ERROR", lines=[f"raised {type(error).__name__}: {error}{where(error, directory)}"])
    try:
        d, problems = compare(ours, block.expected(ref))
    except (TypeError, ValueError) as error:  # returned something that is not an array of numbers
        return Result(block.name, "ERROR", lines=[f"returned something that is not an array of numbers ({error})"])
    if not problems:
        return Result(block.name, "OK", d)
    return Result(block.name, "NOT OK", d, problems + diagnose(block, ours, ref))


def check(directory: str | Path, blocks: list[str] | None = None, reference: Path = REFERENCE) -> list[Result]:
    """Grade the learner's blocks in `directory`: the ones named, else those of the folder's track (every
    block for a folder that does not say), in order; `bert`, the whole forward built from the learner's
    blocks, is graded against transformers' every hidden state, attention map and pooled vector."""
    directory = Path(directory).resolve()
    if not (directory / "__init__.py").is_file():
        raise FileNotFoundError(f"{directory} holds no exercises (no __init__.py); make them with "
                                f"`minibert learn init {directory}`")
    unknown = sorted(set(blocks or ()) - set(BLOCKS))
    if unknown:
        raise ValueError(f"no block named {', '.join(unknown)}; the blocks are: {', '.join(BLOCKS)}")
    if blocks is None:
        blocks = list(TRACKS[_track(directory)]) if (directory / "exercises.json").is_file() else list(BLOCKS)
    ref = Reference(reference)
    try:
        learner = load_learner(directory)
    except Exception as error:  # a syntax error or a failing import in the learner's files
        return [Result("import", "ERROR", lines=[f"your files do not import: {type(error).__name__}: {error}"
                                                f"{where(error, directory)}"])]
    return [grade(BLOCKS[name], learner, ref, directory) for name in blocks]


def _track(directory: Path) -> str:
    """The track `minibert learn init` recorded in the folder's exercises.json."""
    try:
        track = json.loads((directory / "exercises.json").read_text(encoding="utf-8")).get("track")
    except (ValueError, AttributeError, OSError):
        track = None
    if track not in TRACKS:
        raise ValueError(f"{directory / 'exercises.json'} does not name a track ({' or '.join(TRACKS)}); "
                         "restore it or name the blocks with --block")
    return track


def report(results: list[Result]) -> str:
    """llm.c's test report: a line per block, OK / NOT OK with the max abs diff, then what is wrong."""
    lines = []
    for result in results:
        diff = "" if result.maxdiff is None else f"max abs diff {result.maxdiff:.1e}"
        lines.append(f"{result.block:<24} {result.status:<7} {diff}".rstrip())
        lines.extend(f"{'':<24} {line}" for line in result.lines)
    passed = sum(r.status == "OK" for r in results)
    lines.append(f"{passed} of {len(results)} OK")
    return "\n".join(lines)
