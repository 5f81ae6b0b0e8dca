"""minibert never imports torch or transformers: they are the reference, not a dependency."""

import subprocess
import sys


def test_forward_pass_imports_neither_torch_nor_transformers():
    code = (
        "import sys, numpy as np, minibert\n"
        "from tests.fixtures.cases import RANDOM_CONFIGS, random_weights\n"
        "c = RANDOM_CONFIGS['tiny']\n"
        "minibert.BertModel(minibert.BertConfig.from_dict(c), random_weights(c))([[1, 2, 3]])\n"
        "loaded = sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
