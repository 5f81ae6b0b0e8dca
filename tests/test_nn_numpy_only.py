"""minibert/nn, the readable reference, is NumPy only: its files import numpy, the standard library and each
other, nothing compiled (the fast paths live in minibert/fast)."""

import ast
from pathlib import Path

NN = Path(__file__).resolve().parents[1] / "minibert" / "nn"


def test_the_reference_blocks_import_only_numpy_and_each_other():
    for path in sorted(NN.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            else:
                continue
            for name in names:
                assert name in ("numpy", "math", "__future__", "dataclasses", "typing") or \
                    (name.startswith(".") and not name.startswith("..")), f"{path.name} imports {name}"
