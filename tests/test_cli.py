"""The `minibert` command on local model directories: results, --json, stdin, and one-line errors."""

import io
import json
import math
import os

import numpy as np
import pytest

from minibert import BertModel
from minibert.cli import main
from minibert.tools.trace import trace
from tests.fixtures.cases import FIXTURES

CHECKPOINT = str(FIXTURES / "checkpoints" / "zip")  # a BertForPreTraining with a 60-token vocabulary


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return str(minilm_path)


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_fill_mask_json_and_stdin(capsys, monkeypatch):
    status, out, _ = run(capsys, "fill-mask", "--model", CHECKPOINT, "--top-k", "2", "--json", "w1 [MASK] w3")
    result = json.loads(out)
    assert status == 0 and result[0]["text"] == "w1 [MASK] w3" and len(result[0]["masks"][0]) == 2
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"w1 [MASK]\n\n[MASK] w2\n")))
    status, out, _ = run(capsys, "fill-mask", "--model", CHECKPOINT, "--json", "-")
    assert status == 0 and [r["text"] for r in json.loads(out)] == ["w1 [MASK]", "[MASK] w2"]


def test_input_file(capsys, tmp_path):
    (tmp_path / "texts.txt").write_text("w1 w2\nw3\n")
    status, out, _ = run(capsys, "tokenize", "--model", CHECKPOINT, "--input", str(tmp_path / "texts.txt"), "--json")
    assert status == 0 and [[t["token"] for t in r["tokens"]] for r in json.loads(out)] == [
        ["[CLS]", "w1", "w2", "[SEP]"], ["[CLS]", "w3", "[SEP]"]]


@pytest.mark.parametrize("argv, message", [
    (["fill-mask", "--model", CHECKPOINT, "no mask"], "text 1 has no [MASK]"),
    (["fill-mask", "--model", CHECKPOINT], "no text given"),
    (["fill-mask", "--model", CHECKPOINT, "[MASK] " + "w1 " * 40],
     "more than the model's 16; shorten it or pass --truncate"),
    (["fill-mask", "--model", CHECKPOINT, "--truncate", "w1 " * 40 + "[MASK]"], "lost its [MASK] to --truncate"),
    (["similarity", "--model", CHECKPOINT, "only one"], "give at least two texts"),
    (["tokenize", "--model", CHECKPOINT, "--input", "/nonexistent.txt"], "cannot read /nonexistent.txt"),
    (["info", "--model", "/nonexistent/model"], "is neither a local directory nor a Hugging Face model id"),
    (["bench", "--shapes", "1x8,32"], "--shapes takes BATCHxLENGTH pairs of positive integers"),
    (["bench", "--shapes", "0x8"], "--shapes takes BATCHxLENGTH pairs of positive integers"),
    (["bench", "--shapes", "1x1024"], "at most 512 tokens"),
    (["bench", "--rounds", "0"], "rounds must be a positive integer, got 0"),
    (["bench", "--threads", "0"], "the thread count must be a positive integer (at most 4096), got 0"),
])
def test_user_mistakes_are_one_line(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status != 0 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_info_counts_parameters_per_block(capsys):
    status, out, _ = run(capsys, "info", "--model", CHECKPOINT, "--json")
    info = json.loads(out)
    assert info["heads"] == ["cls.predictions", "cls.seq_relationship"]
    assert info["parameters"]["encoder.layer.0"] == 4 * (16 * 16 + 16) + 2 * 16 + (16 * 24 + 24) + (24 * 16
                                                                                                    + 16) + 2 * 16
    assert info["total_parameters"] == sum(info["parameters"].values())


def test_embed_and_similarity(capsys, minilm):
    status, out, _ = run(capsys, "similarity", "--model", minilm, "--json", "a cat sits on a mat", "a kitten rests",
                         "stock markets fell")
    scores = [s["cosine"] for s in json.loads(out)["similarities"]]
    assert status == 0 and scores[0] > scores[1]
    status, out, _ = run(capsys, "embed", "--model", minilm, "--json", "hello")
    assert len(json.loads(out)[0]["embedding"]) == 384
    status, out, _ = run(capsys, "embed", "--model", minilm, "--json", "--prompt-name", "query", "hello")
    assert status == 0 and len(json.loads(out)[0]["embedding"]) == 384  # the "query" prompt, blank in this model
    status, _, err = run(capsys, "similarity", "--model", minilm, "--prompt-name", "passage", "a", "b")
    assert status == 1 and "prompt_name 'passage' is not among the prompts (query, document)" in err


def test_classify(capsys, tmp_path):
    import shutil

    shutil.copytree(FIXTURES / "heads" / "sequence-single", tmp_path / "m")
    shutil.copy(FIXTURES / "checkpoints" / "zip" / "vocab.txt", tmp_path / "m")
    status, out, _ = run(capsys, "classify", "--model", str(tmp_path / "m"), "--json", "w1 w2", "w3")
    assert status == 0 and {r["label"] for r in json.loads(out)} <= {"negative", "neutral", "positive"}


def test_trace_ends_at_the_models_output(capsys, minilm):
    model = BertModel.from_pretrained(minilm)
    ids = np.array([[101, 7592, 2088, 102]])
    steps = dict(trace(model, ids))
    out = model(ids, output_hidden_states=True)
    np.testing.assert_allclose(steps["layer.5.output (LayerNorm(a + FFN))"], out.last_hidden_state, rtol=0, atol=1e-5)
    np.testing.assert_allclose(steps["embeddings.output (LayerNorm of the sum)"], out.hidden_states[0],
                               rtol=0, atol=1e-6)
    status, text, _ = run(capsys, "trace", "--model", minilm, "hello world")
    assert status == 0 and "layer.5.attention.probabilities" in text and "(1, 12, 4, 4)" in text


def test_trace_saves_attention_maps(capsys, minilm, tmp_path):
    pytest.importorskip("matplotlib", reason="the viz extra is not installed")
    status, out, _ = run(capsys, "trace", "--model", minilm, "hello world", "--save", str(tmp_path / "attn.png"))
    assert status == 0 and (tmp_path / "attn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_against_transformers(capsys, minilm):
    pytest.importorskip("transformers", reason="check needs transformers")
    status, out, _ = run(capsys, "check", "--model", minilm, "--json")
    result = json.loads(out)
    assert status == 0 and result["passed"] and result["worst"] <= 1e-5 and result["worst_float64"] <= 1e-12
    assert {r["tensor"] for r in result["rows"]} >= {"embeddings", "layer 6 output", "layer 6 attention", "pooler"}
    status, _, _ = run(capsys, "check", "--model", minilm, "--tolerance", "1e-9")
    assert status == 1  # float32 cannot match to 1e-9: the command reports failure
    # The 60-token fixture model turns the sample sentences into [UNK]s, and its float32 is ill-conditioned
    # there (transformers' own float32 is 4.8e-6 from its float64): float64 tells rounding from logic.
    status, out, _ = run(capsys, "check", "--model", CHECKPOINT, "--tolerance", "1e-6")
    assert status == 1 and "float64: PASS" in out and "float32 difference is rounding" in out


def test_check_fails_on_a_nan_anywhere():
    from minibert.tools.check import worst as _worst

    assert _worst([(1e-6, None), (2e-6, 1e-7)]) == 2e-6  # None: not compared (attention maps on the fast path)
    assert math.isnan(_worst([(1e-6, None), (1e-7, math.nan)]))  # and NaN <= tolerance is False


def test_check_without_transformers_uses_the_committed_fixture(capsys, minilm, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name in ("torch", "transformers"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    status, out, _ = run(capsys, "check", "--model", minilm, "--json")
    result = json.loads(out)
    assert status == 0 and result["source"] == "frozen fixture" and result["worst"] <= 1e-5
    assert result["worst_float64"] <= 1e-12
    status, _, err = run(capsys, "check", "--model", CHECKPOINT)
    assert status == 2 and "no committed fixture" in err


def test_truncate_cuts_to_the_window(capsys):
    status, out, _ = run(capsys, "fill-mask", "--model", CHECKPOINT, "--truncate", "--json", "[MASK] " + "w1 " * 40)
    result = json.loads(out)[0]
    # 16 - [CLS], [SEP]
    assert status == 0 and result["text"].startswith("[MASK] w1") and len(result["text"].split()) == 14


def test_python_dash_m_runs_the_command(tmp_path):
    """`python -m minibert` is the `minibert` command: its exit code and output."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    ok = subprocess.run([sys.executable, "-m", "minibert", "info", "--model", str(FIXTURES / "heads" / "token")],
                        capture_output=True, text=True, cwd=root)
    assert ok.returncode == 0 and "L=2 H=16 A=2 I=24" in ok.stdout, ok.stderr
    missing = subprocess.run([sys.executable, "-m", "minibert", "info", "--model", str(tmp_path / "absent")],
                             capture_output=True, text=True, cwd=root)
    assert missing.returncode != 0 and "minibert info: error" in missing.stderr


def test_bench_pairs_the_calls_of_each_round():
    """interleaved_times keeps every round's time per engine; paired_speedup takes the ratio within each
    round, so a slow phase that hits both engines of a round cancels out."""
    from minibert.tools.bench import interleaved_times, paired_speedup

    calls = []
    times = interleaved_times({"minibert": lambda: calls.append("m"), "other": lambda: calls.append("o")}, rounds=3)
    assert calls == ["m", "m", "o", "o"] * 3  # each timed call follows an untimed one of its own
    assert times["minibert"].shape == times["other"].shape == (3,)
    minibert = np.array([1.0, 2.0, 4.0, 8.0])  # the machine slowing down round by round
    q1, median, q3 = paired_speedup(2 * minibert, minibert)
    assert q1 == median == q3 == 2.0


def test_bench_refuses_an_engine_that_computes_another_model():
    """Before timing a shape, bench compares each engine's last hidden state with minibert float32's: the
    readable reference passes (float32 rounding), a copy of the model with one weight changed does not, and an
    int8 engine's quantization error is reported, not refused."""
    import minibert
    from minibert.tools.bench import SAME_OUTPUT, last_hidden_state, output_differences

    config = minibert.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=37)
    weights = minibert.init_weights(config, seed=0)
    bias = weights["encoder.layer.1.output.dense.bias"].copy()
    bias[0] += 0.01  # one element: LayerNorm would remove a change to all
    changed = {**weights, "encoder.layer.1.output.dense.bias": bias}
    reference = BertModel(config, weights)
    reference.use_fast = False
    ids = np.random.default_rng(0).integers(0, 99, (2, 7))
    outputs = {name: last_hidden_state(model(ids)) for name, model in (
        ("minibert", BertModel(config, weights)), ("minibert reference", reference),
        ("changed", BertModel(config, changed)), ("changed int8", BertModel(config, changed)))}
    differences = output_differences({n: outputs[n] for n in ("minibert", "minibert reference", "changed int8")}, "2x7")
    print(f"max abs diff: {differences}")
    assert differences["minibert reference"] <= 1e-5 and differences["changed int8"] > SAME_OUTPUT
    assert last_hidden_state([outputs["changed"]]) is outputs["changed"]  # ONNX Runtime's list of outputs
    with pytest.raises(ValueError, match=r"changed's last hidden state differs from minibert's by .* at 2x7"):
        output_differences({n: outputs[n] for n in ("minibert", "changed")}, "2x7")


def test_cpu_description_names_the_cpu_and_the_kernels():
    """What every benchmark prints about the CPU: its model name (and family and model, on Linux), and the
    kernels minibert compiles for it, the portable ones under NUMBA_CPU_NAME=generic."""
    from tests.fixtures.cpu import run_for_cpu

    code = "from minibert.tools.bench import cpu_description; print(cpu_description())"
    host, generic = (run_for_cpu(code, cpu).strip() for cpu in ("host", "generic"))
    print(f"host: {host}; generic: {generic}")
    from minibert.fast import int8, simd

    target = simd.host()
    assert host.endswith(f"minibert's kernels: {target.width} float32 lanes{' with FMA' if target.fma else ''}, "
                         f"int8 {int8.kernels_present(target)[0]})")
    assert generic.endswith("minibert's kernels: 4 float32 lanes, int8 portable)")
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
        assert name is None or host.startswith(f"{name} (")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST_CALL = """
import sys
import numpy as np
from minibert import cli
from minibert.inputs import bounds
cli.show_compile_notice(sys.stdout)  # as main() does on a terminal
cli.show_compile_notice(sys.stdout)  # as a second main() in the process would: still one line
bounds(np.arange(3))
bounds(np.arange(3.0))  # another signature, compiled too: no second note
print("done")
"""


def test_the_first_compilation_is_announced_once(tmp_path):
    """A process that compiles minibert's kernels says so once (minibert/fast/compiling.py), on the stream the
    command shows it on; one that loads them from Numba's disk cache says nothing."""
    import subprocess
    import sys

    from minibert.fast.compiling import MESSAGE

    def output():
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
        return subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, env=env,
                              check=True, timeout=600, cwd=ROOT).stdout

    cold, warm = output(), output()
    print(f"fresh cache: {cold!r}; the same cache again: {warm!r}")
    assert cold.count(f"minibert: {MESSAGE}") == 1 and cold.endswith("done\n")
    assert warm == "done\n"


def test_a_warm_forward_compiles_nothing():
    """Every kernel a float32 and an int8 forward run loads from the disk cache once compiled (so the note
    above is never a false alarm): a second process on the same cache logs no compilation."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from minibert import cli, BertModel; from minibert.tools.bench import "
            "random_mini_weights; cli.show_compile_notice(sys.stdout); c, w = random_mini_weights(); "
            "ids = np.arange(8)[None]; BertModel(c, w)(ids); BertModel(c, w).quantize()(ids); print('done')")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=1200,
                           cwd=ROOT).stdout for _ in range(2)]
    print(f"first: {runs[0]!r}; second: {runs[1]!r}")
    assert runs[1] == "done\n"
