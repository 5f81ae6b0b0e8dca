"""`minibert learn init DIR`: the reference blocks of minibert/nn with the bodies taken out.

The exercises are made from minibert/nn itself, every time, so they never drift from the code: each file of
the package is copied with the bodies of the chosen functions replaced by a TODO, keeping the signature,
the docstring (the equation and the shapes) and the imports. The copy is a package, so the learner's
blocks call one another (their encoder layer runs their attention and their LayerNorm).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from .. import nn

NN = Path(nn.__file__).resolve().parent

# What a learner writes, in the order it is best written and graded: each block uses only those before it.
TRACKS: dict[str, tuple[str, ...]] = {
    "forward": ("layer_norm", "gelu", "softmax", "split_heads", "merge_heads", "padding_mask_bias",
                "self_attention", "feed_forward", "embeddings", "pooler", "bert", "masked_lm_head"),
    "backward": ("layer_norm_backward", "gelu_backward", "softmax_backward", "feed_forward_backward",
                 "self_attention_backward", "encoder_layer_backward", "embeddings_backward", "pooler_backward",
                 "masked_lm_head_backward"),
}

TODO = 'raise NotImplementedError("TODO: write {name} (the docstring above says what it computes)")'

GUIDE = """\
# BERT, block by block

Each function named below has lost its body: write it from its docstring (the equation, the shapes), in
this order, and check your work as you go:

    minibert learn check {directory}                      # every block, in order
    minibert learn check {directory} --block {first}   # one block

The grader runs your blocks on tensors frozen from transformers (float64) and prints OK or NOT OK with the
largest difference, the first wrong value, and a hint when the mistake is a known one. `bert` is the whole
forward, built from your blocks: OK there means your BERT computes what transformers' does.

Track: {track}. To do, in order:
{names}
"""


def exercise_source(source: str, names: set[str]) -> str:
    """`source` with the body of every top-level function in `names` replaced by a TODO (docstring kept)."""
    lines = source.splitlines(keepends=True)
    # bottom up: lines keep their numbers
    for node in sorted(ast.parse(source).body, key=lambda n: n.lineno, reverse=True):
        if not (isinstance(node, ast.FunctionDef) and node.name in names):
            continue
        body = node.body
        has_docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str)
        first = body[1] if has_docstring and len(body) > 1 else body[0]
        indent = " " * first.col_offset
        lines[first.lineno - 1:body[-1].end_lineno] = [indent + TODO.format(name=node.name) + "\n"]
    # The copy lives outside the package: what the blocks import from the rest of minibert, they import by name.
    return re.sub(r"^(\s*)from \.\.(\w)", r"\1from minibert.\2", "".join(lines), flags=re.M)


def functions_in(source: str) -> set[str]:
    """The names of the top-level functions defined in `source`."""
    return {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}


def init(directory: str | Path, track: str = "forward") -> list[str]:
    """Write the exercises of `track` ("forward" or "backward") into `directory`, a new or empty folder.

    Returns the names of the functions to write. Refuses to write into a folder that holds files, so a
    learner's work is never overwritten.
    """
    if track not in TRACKS:
        raise ValueError(f"track must be one of {', '.join(TRACKS)}, got {track!r}")
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise FileExistsError(f"{directory} already exists and is not an empty folder; "
                              "choose a new one (your exercises there are kept as they are)")
    names = set(TRACKS[track])
    sources = {path.name: path.read_text(encoding="utf-8") for path in sorted(NN.glob("*.py"))}
    missing = names - set().union(*(functions_in(s) for s in sources.values()))
    assert not missing, f"minibert/nn no longer defines {sorted(missing)}: update TRACKS"
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        (directory / name).write_text(exercise_source(source, names), encoding="utf-8")
    todo = list(TRACKS[track])
    # what check grades
    (directory / "exercises.json").write_text(json.dumps({"track": track}) + "\n", encoding="utf-8")
    (directory / "README.md").write_text(GUIDE.format(directory=directory, first=todo[0], track=track,
                                                      names="".join(f"- {name}\n" for name in todo)), encoding="utf-8")
    return todo
