"""The bad-input corpus (tests/bad_inputs.py): every case gives its expected named error, or works.

The memory bombs run in a child process under an address-space limit (ulimit -v) of 1 GiB beyond what it
holds once the cases are made: each must be refused by name before allocating, not end in MemoryError or a
kill. The corpus' size and result are printed (pytest -s), as README states them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

from tests.bad_inputs import cases

ROOT = Path(__file__).resolve().parents[1]


def outcome(case) -> str | None:
    """None when the case gave what it must; else what it gave instead."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.call()
    except Exception as e:  # noqa: BLE001 - any other exception is what the case reports
        if case.error is None:
            return f"raised {type(e).__name__}: {e}"
        if not isinstance(e, case.error):
            return f"raised {type(e).__name__} (not {case.error}): {e}"
        if not re.search(case.message, str(e), re.DOTALL):
            return f"message {str(e)[:300]!r} does not match {case.message!r}"
        return None
    return None if case.error is None else f"did not raise {case.error}"


def test_every_bad_input_gives_its_named_error(tmp_path):
    corpus = cases(tmp_path)
    names = [case.name for case in corpus]
    assert len(names) == len(set(names)), "case names must be unique"
    assert len(names) >= 300, "each family holds many inputs, so that a mend made case by case shows"
    failures = {case.name: problem for case in corpus if (problem := outcome(case)) is not None}
    refusals = sum(case.error is not None for case in corpus)
    print(f"\nbad-input corpus: {len(corpus)} cases ({refusals} refusals, {len(corpus) - refusals} that work), "
          f"{len(corpus) - len(failures)} as expected")
    assert not failures, "\n".join(f"{name}: {problem}" for name, problem in failures.items())


CHILD = """
    import json, resource, sys, warnings
    from tests.bad_inputs import bomb_cases
    from tests.test_bad_inputs import outcome

    corpus = bomb_cases(sys.argv[1])
    with open("/proc/self/statm") as f:
        held = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (held + (1 << 30), resource.RLIM_INFINITY))
    print(json.dumps({case.name: outcome(case) for case in corpus}))
"""


def test_memory_bombs_are_refused_under_a_memory_limit(tmp_path):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), str(tmp_path)], capture_output=True,
                            text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    outcomes = json.loads(result.stdout.strip().split("\n")[-1])
    failures = {name: problem for name, problem in outcomes.items() if problem is not None}
    print(f"\nmemory bombs: {len(outcomes)} cases under a 1 GiB limit, {len(outcomes) - len(failures)} refused by name")
    assert len(outcomes) >= 15
    assert not failures, "\n".join(f"{name}: {problem}" for name, problem in failures.items())


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    """minibert ... | head: the reader leaves early; no BrokenPipeError traceback, exit 141 as cat's."""
    from tests.bad_inputs import TINY

    process = subprocess.Popen([sys.executable, "-m", "minibert", "tokenize", "--model", str(TINY), *["w1 w2"] * 2000],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    process.stdout.readline()
    process.stdout.close()  # as head does after its lines
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, stderr
    assert stderr == ""



def test_convert_keeps_a_sentence_transformers_model_whole_with_ordinary_file_modes(tmp_path, minilm_path):
    """convert of a sentence-transformers directory copies its modules (embed on the copy gives the same
    vectors), and model.safetensors gets the mode any new file gets under the umask (it was 0600)."""
    import numpy as np

    from minibert.loading.convert import convert, current_umask
    from minibert.tasks import SentenceEncoder

    target = convert(minilm_path, tmp_path / "copy")
    assert (target.stat().st_mode & 0o777) == 0o666 & ~current_umask()
    for name in ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        assert (tmp_path / "copy" / name).is_file(), name
    np.testing.assert_array_equal(SentenceEncoder.from_pretrained(tmp_path / "copy").encode("a cat"),
                                  SentenceEncoder.from_pretrained(minilm_path).encode("a cat"))
