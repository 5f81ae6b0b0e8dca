"""The exercises and their grader: made from minibert/nn, the real bodies pass, and every classic mistake,
planted, is failed and named."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from minibert.learn import TRACKS, check, init, report
from minibert.learn.exercises import NN, TODO

ALL_BLOCKS = TRACKS["forward"] + TRACKS["backward"]


def bodies(source: str) -> dict[str, list[str]]:
    """Each top-level function's body lines after its docstring."""
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            body = node.body[1:] if isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value,
                                                                                      ast.Constant) else node.body
            found[node.name] = lines[body[0].lineno - 1:body[-1].end_lineno] if body else []
    return found


def fill(directory: Path) -> set[str]:
    """Put the real body back in place of every TODO in `directory`; returns the functions filled."""
    filled_names = set()
    for original in sorted(NN.glob("*.py")):
        real = bodies(original.read_text())
        lines = []
        for line in (directory / original.name).read_text().splitlines():
            todo = re.fullmatch(r"\s*" + re.escape(TODO.format(name="X")).replace("X", r"(\w+)"), line)
            lines.extend(real[todo.group(1)] if todo else [line])
            filled_names |= {todo.group(1)} if todo else set()
        (directory / original.name).write_text("\n".join(lines) + "\n")
    return filled_names


@pytest.mark.parametrize("track", list(TRACKS))
def test_exercises_are_the_blocks_without_their_bodies(tmp_path, track):
    assert init(tmp_path / "ex", track=track) == list(TRACKS[track])
    assert fill(tmp_path / "ex") == set(TRACKS[track])
    for original in sorted(NN.glob("*.py")):  # filled, each file is the original (imports from outside nn by name)
        expected = re.sub(r"^(\s*)from \.\.(\w)", r"\1from minibert.\2", original.read_text(), flags=re.M)
        assert (tmp_path / "ex" / original.name).read_text() == expected


def test_init_never_overwrites_a_learners_work(tmp_path):
    init(tmp_path / "ex")
    (tmp_path / "ex" / "layernorm.py").write_text("# my work\n")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        init(tmp_path / "ex")
    assert (tmp_path / "ex" / "layernorm.py").read_text() == "# my work\n"
    with pytest.raises(ValueError, match="track must be one of forward, backward"):
        init(tmp_path / "other", track="sideways")


def test_fresh_exercises_are_todo(tmp_path):
    init(tmp_path / "ex")
    results = {r.block: r for r in check(tmp_path / "ex")}
    assert all(results[name].status == "TODO" for name in TRACKS["forward"])
    assert results["bert"].status == "TODO"


@pytest.fixture(scope="module")
def solution(tmp_path_factory) -> Path:
    """Both tracks' exercises with the real bodies filled back in: every block written right."""
    directory = tmp_path_factory.mktemp("learn") / "solution"
    init(directory)
    fill(directory)
    (directory / "exercises.json").unlink()  # a folder that names no track is graded on every block
    return directory


def test_the_real_blocks_pass_every_check(solution):
    results = check(solution)
    print(report(results))
    assert [r.block for r in results] == list(ALL_BLOCKS)
    assert all(r.status == "OK" for r in results), report(results)
    # float64 rounding, ~1e-15 of each tensor's size: LayerNorm's inputs have rows of spread 1e-3 (so that a
    # wrong eps shows), whose gradients reach 1e3
    assert max(r.maxdiff for r in results if not r.block.startswith("layer_norm")) < 1e-12
    assert max(r.maxdiff for r in results if r.block.startswith("layer_norm")) < 1e-9


# Each classic mistake, planted in a copy of the real blocks by appending a wrong definition to the file
# (the last definition wins), with the block that must fail and the words its hint must say.
PLANTED = {
    "layer_norm eps 1e-5": ("layernorm.py", "layer_norm", "not 1e-05", """
def layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + 1e-5) * weight + bias
"""),
    "layer_norm eps 1e-3": ("layernorm.py", "layer_norm", "not 0.001", """
def layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + 1e-3) * weight + bias
"""),
    "tanh GELU": ("activations.py", "gelu", "tanh approximation", """
def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
"""),
    "mask not applied": ("attention.py", "self_attention", "mask is not applied", """
def self_attention(x, mask_bias, query, key, value, num_heads, dropout_mask=None):
    q, k, v = (split_heads(dense(x, **w), num_heads) for w in (query, key, value))
    probs = softmax((q @ k.transpose(0, 1, 3, 2)) * q.shape[-1] ** -0.5)
    return merge_heads(probs @ v), probs
"""),
    "mask after softmax": ("attention.py", "self_attention", "added after the softmax", """
def self_attention(x, mask_bias, query, key, value, num_heads, dropout_mask=None):
    q, k, v = (split_heads(dense(x, **w), num_heads) for w in (query, key, value))
    probs = softmax((q @ k.transpose(0, 1, 3, 2)) * q.shape[-1] ** -0.5) + mask_bias
    return merge_heads(probs @ v), probs
"""),
    "scores not scaled": ("attention.py", "self_attention", "not scaled", """
def self_attention(x, mask_bias, query, key, value, num_heads, dropout_mask=None):
    q, k, v = (split_heads(dense(x, **w), num_heads) for w in (query, key, value))
    probs = softmax(q @ k.transpose(0, 1, 3, 2) + mask_bias)
    return merge_heads(probs @ v), probs
"""),
    "heads split along the wrong axis": ("attention.py", "split_heads", "wrong axis", """
def split_heads(x, num_heads):
    batch, seq, hidden = x.shape
    return x.reshape(batch, num_heads, seq, hidden // num_heads)

def merge_heads(x):
    batch, heads, seq, head_size = x.shape
    return x.reshape(batch, seq, heads * head_size)
"""),
    "pre-LN": ("bert.py", "bert", "pre-LN", """
def bert(input_ids, attention_mask, token_type_ids, position_ids, embeddings, encoder, pooler=None, *, num_heads, eps,
         inputs_embeds=None, dropout=None):
    x = embed(input_ids, token_type_ids, position_ids, **embeddings, eps=eps)
    mask_bias = padding_mask_bias(attention_mask, x.dtype)
    hidden_states, attentions = [x], []
    for layer in encoder["layer"]:
        attention = layer["attention"]
        context, probs = self_attention(layer_norm(x, **attention["output"]["LayerNorm"], eps=eps), mask_bias,
                                        **attention["self"], num_heads=num_heads)
        a = x + dense(context, **attention["output"]["dense"])
        x = a + feed_forward(layer_norm(a, **layer["output"]["LayerNorm"], eps=eps), layer["intermediate"]["dense"],
                             layer["output"]["dense"])
        hidden_states.append(x)
        attentions.append(probs)
    return hidden_states, attentions, pool(x, **pooler)
"""),
    "bert given eps 1e-5": ("bert.py", "bert", "not 1e-05", """
_bert = bert

def bert(*args, eps, **kwargs):
    return _bert(*args, eps=1e-5, **kwargs)
"""),
    "embeddings x += layer_norm(x)": ("embeddings.py", "embeddings", "added to its input", """
def embeddings(input_ids, token_type_ids, position_ids, word_embeddings, position_embeddings, token_type_embeddings,
               LayerNorm, eps, inputs_embeds=None):
    x = word_embeddings["weight"][input_ids] + token_type_embeddings["weight"][token_type_ids]
    x = x + position_embeddings["weight"][position_ids]
    x += layer_norm(x, **LayerNorm, eps=eps)
    return x
"""),
    "MLM head without GELU": ("heads.py", "masked_lm_head", "GELU is missing", """
def masked_lm_head(x, transform, decoder, eps):
    return dense(layer_norm(dense(x, **transform["dense"]), **transform["LayerNorm"], eps=eps), **decoder)
"""),
}


@pytest.mark.parametrize("mistake", list(PLANTED))
def test_each_classic_mistake_is_failed_and_named(tmp_path, solution, mistake):
    filename, block, hint, wrong = PLANTED[mistake]
    learner = tmp_path / "learner"
    shutil.copytree(solution, learner)
    with open(learner / filename, "a") as f:
        f.write("\n" + wrong)
    results = {r.block: r for r in check(learner)}
    print(mistake, "->", block, results[block].status, results[block].lines)
    assert results[block].status == "NOT OK"
    assert any(line.startswith("hint:") and hint in line for line in results[block].lines), results[block].lines
    if block != "masked_lm_head":  # the whole forward, built from the learner's blocks, fails too
        assert results["bert"].status == "NOT OK"


def test_errors_and_wrong_shapes_get_their_own_message(tmp_path, solution):
    learner = tmp_path / "learner"
    shutil.copytree(solution, learner)
    with open(learner / "pooler.py", "a") as f:
        f.write("\ndef pooler(x, dense):\n    return x[0, 0]\n")
    with open(learner / "activations.py", "a") as f:
        f.write("\ndef gelu(x):\n    return x * undefined_name\n")
    results = {r.block: r for r in check(learner, blocks=["pooler", "gelu"])}
    assert results["pooler"].status == "NOT OK" and "shape (32,), expected (4, 32)" in results["pooler"].lines[0]
    assert results["gelu"].status == "ERROR"
    assert re.search(r"raised NameError: .*undefined_name.* \(activations.py line \d+\)", results["gelu"].lines[0])
    with open(learner / "linear.py", "a") as f:
        f.write("\ndef broken(:\n")
    (only,) = check(learner)
    assert only.status == "ERROR" and "SyntaxError" in only.lines[0]
    with pytest.raises(ValueError, match="no block named attention_typo"):
        check(learner, blocks=["attention_typo"])
