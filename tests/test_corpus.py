"""minibert.corpus: the worker classes against SentenceEncoder.encode and classify, bit for bit; files into shards,
bad lines counted, resumed after SIGKILL at several points to the uninterrupted run's bytes; other jobs refused.
A tiny random-weight model saved to a temporary directory stands in for real weights (the values only need
to be the same on every path, not good)."""

import json
import os
import signal
import string
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import minibert
from minibert.cli import main
from minibert.corpus import Classifier, Embedder, Job, load, run_local
from minibert.corpus.shards import parse
from minibert.tasks import SentenceEncoder, classify

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny BERT (mean-pooled as a sentence encoder: a plain BERT directory) and a 3-class classifier on it,
    with a vocabulary of a few words, letters and word pieces; a 64-token window, so long lines truncate."""
    root = tmp_path_factory.mktemp("models")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *string.ascii_lowercase,
             *("##" + c for c in string.ascii_lowercase), *string.digits, *string.punctuation]
    config = minibert.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=64)
    encoder = root / "encoder"
    encoder.mkdir()
    save_file(minibert.init_weights(config, 0), str(encoder / "model.safetensors"))
    config.save_pretrained(encoder)
    (encoder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the new head's warning
        classifier = minibert.BertForSequenceClassification.from_pretrained(
            encoder, num_labels=3, id2label={0: "negative", 1: "neutral", 2: "positive"}, seed=1)
    classifier.save_pretrained(root / "classifier")
    (root / "classifier" / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return {"embed": str(encoder), "classify": str(root / "classifier")}


def sentences(n, seed=0):
    """n texts of 1 to 80 words (some beyond the 64-token window), some with letters outside the vocabulary."""
    rng = np.random.default_rng(seed)
    pool = WORDS + ["zebra", "Über", "x1", "(cat)", "naïve"]
    return [" ".join(rng.choice(pool, rng.integers(1, 80))) for _ in range(n)]


def write_corpus(path, n, seed=0):
    """n lines, every 37th invalid UTF-8, every 53rd empty or blank (with Windows line ends here and there):
    returns the (line number, text) pairs the rule keeps."""
    kept = []
    with open(path, "wb") as f:
        for i, text in enumerate(sentences(n, seed)):
            if i % 37 == 36:
                f.write(b"caf\xe9 au lait\n")  # Latin-1, not UTF-8
            elif i % 53 == 52:
                f.write(b"  \t \n" if i % 2 else b"\n")
            else:
                f.write(text.encode() + (b"\r\n" if i % 11 == 0 else b"\n"))
                kept.append((i, text))
    return kept


# ---- the worker classes ----------------------------------------------------------------------------------

def batch_forms(texts):
    """The same texts as each engine hands them over."""
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    return {"list": texts, "numpy": np.array(texts, dtype=object), "ray dict": {"text": np.array(texts, dtype=object)},
            "pandas Series": pd.Series(texts), "pandas DataFrame": pd.DataFrame({"text": texts}),
            "arrow Array": pa.array(texts), "arrow Table": pa.table({"text": texts})}


def column(result, name):
    """A table result's column as a NumPy array ([N, D] for vectors)."""
    if isinstance(result, dict):
        return result[name]
    if hasattr(result, "column_names"):  # Arrow
        values = result.column(name).combine_chunks()
        if hasattr(values, "flatten"):  # fixed-size lists
            return values.flatten().to_numpy().reshape(len(values), -1)
        return values.to_numpy(False)
    values = result[name].to_numpy()
    return np.stack(values) if name != "label" else values  # a DataFrame holds a vector per cell


def test_embedder_equals_encode_bit_for_bit_on_every_batch_form(models):
    """encode on two threads, in batches of 32 sorted by length; the worker on one thread, in other batches."""
    from minibert.fast.threads import set_num_threads

    texts = sentences(70)
    set_num_threads(2)
    expected = SentenceEncoder.from_pretrained(models["embed"]).encode(texts)  # [N, D]
    embedder = Embedder(models["embed"], threads=1, batch_size=16)
    for form, batch in batch_forms(texts).items():
        result = embedder(batch)
        values = result if isinstance(result, np.ndarray) else column(result, "embedding")
        assert values.dtype == np.float32 and values.shape == expected.shape, form
        assert np.array_equal(values, expected), form
        if form == "ray dict":
            assert result["text"] is batch["text"]  # the input columns stay


def test_classifier_equals_classify_bit_for_bit(models):
    texts = sentences(40, seed=1)
    model = minibert.BertForSequenceClassification.from_pretrained(models["classify"])
    reference = classify(model, minibert.BertTokenizer.from_pretrained(models["classify"]), texts)
    expected = np.array([list(r["scores"].values()) for r in reference], dtype=np.float32)  # [N, 3]
    classifier = Classifier(models["classify"], threads=1)
    assert classifier.labels == ["negative", "neutral", "positive"]
    assert np.array_equal(classifier(texts), expected)
    for form, batch in batch_forms(texts).items():
        result = classifier(batch)
        if not isinstance(result, np.ndarray):
            assert np.array_equal(column(result, "scores"), expected), form
            assert list(column(result, "label")) == [r["label"] for r in reference], form


def test_worker_mistakes_are_named(models):
    embedder = Embedder(models["embed"])
    with pytest.raises(ValueError, match=r"the batch has no column 'text' \(its columns: sentence\)"):
        embedder({"sentence": np.array(["a"])})
    with pytest.raises(TypeError, match="text 1 of the batch is NoneType, not str"):
        embedder(["a", None])
    with pytest.raises(TypeError, match="a batch is a list or column of texts, not one str"):
        embedder("a")
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        Embedder(models["embed"], threads=0)
    with pytest.raises(ValueError, match="prompt_name 'query: ' is not among the prompts"):
        Embedder(models["embed"], prompt_name="query: ")
    with pytest.raises(ValueError, match="has no trained classifier"):
        Classifier(models["embed"])  # a bare encoder: its head would be random


def test_a_pickled_worker_is_its_arguments(models):
    """Sent to another process (Dask, Spark), a worker travels as its model's name and options, and loads there."""
    import pickle

    embedder = Embedder(models["embed"], batch_size=8, output_column="vector")
    data = pickle.dumps(embedder)
    assert len(data) < 1000  # not the weights
    copy = pickle.loads(data)
    texts = sentences(10, seed=7)
    assert copy.arguments == embedder.arguments and np.array_equal(copy(texts), embedder(texts))
    classifier = pickle.loads(pickle.dumps(Classifier(models["classify"])))
    assert classifier.labels == ["negative", "neutral", "positive"]


def test_dask_map_partitions(models):
    """The worker as a Dask DataFrame's map_partitions function, as docs/corpus.md shows it."""
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    texts = sentences(30, seed=2)
    frame = dd.from_pandas(pd.DataFrame({"text": texts}), npartitions=3)
    embedder = Embedder(models["embed"])
    result = frame.map_partitions(embedder, meta={"text": object, "embedding": object}).compute(scheduler="threads")
    expected = SentenceEncoder.from_pretrained(models["embed"]).encode(texts)
    assert np.array_equal(np.stack(result["embedding"].to_numpy()), expected)


# ---- files into shards -----------------------------------------------------------------------------------

def test_embed_file_into_shards_counts_bad_lines(models, tmp_path, capsys):
    """Through two worker processes (the command's default on two cores: one per core)."""
    kept = write_corpus(tmp_path / "in.txt", 500)
    status = main(["embed", "--model", models["embed"], "--input", str(tmp_path / "in.txt"), "--output",
                   str(tmp_path / "out"), "--shard-size", "64", "--workers", "2", "--json"])
    manifest = json.loads(capsys.readouterr().out)
    assert status == 0 and manifest == json.loads((tmp_path / "out" / "manifest.json").read_text())
    skipped = {"invalid_utf8": 500 // 37, "empty": 500 // 53}
    assert manifest["skipped"] == skipped and manifest["lines"] == 500 and manifest["rows"] == len(kept)
    assert manifest["shards"] == 8 and manifest["width"] == 32
    ids, values = load(tmp_path / "out")
    assert ids.dtype == np.int64 and values.dtype == np.float32
    assert ids.tolist() == [i for i, _ in kept]  # every kept line once, in input order
    expected = SentenceEncoder.from_pretrained(models["embed"]).encode([t for _, t in kept])
    assert np.array_equal(values, expected)  # long lines truncated as encode truncates them
    shard = np.load(tmp_path / "out" / "shard-000001.ids.npy")
    assert shard.min() >= 64 and shard.max() < 128  # shard k: lines 64k to 64k + 63


def test_classify_file_into_shards(models, tmp_path, capsys):
    kept = write_corpus(tmp_path / "in.txt", 150, seed=3)
    status = main(["classify", "--model", models["classify"], "--input", str(tmp_path / "in.txt"), "--output",
                   str(tmp_path / "out"), "--shard-size", "100", "--json"])
    manifest = json.loads(capsys.readouterr().out)
    assert status == 0 and manifest["labels"] == ["negative", "neutral", "positive"] and manifest["shards"] == 2
    assert manifest["problem_type"] == "single_label_classification"
    ids, scores = load(tmp_path / "out")
    assert ids.tolist() == [i for i, _ in kept]
    classifier = Classifier(models["classify"])
    for k in range(2):  # the classifier head's matmul rounds by batch size: a shard is computed as one unit
        texts = [t for i, t in kept if i // 100 == k]
        assert np.array_equal(scores[ids // 100 == k], classifier(texts))


def test_the_line_rule():
    lines = [b"\xef\xbb\xbffirst\r\n", b"\n", b" \t\r\n", b"\xff\xfe\n", b"caf\xc3\xa9\n", b"\xe2\x80\x83\n", b"last"]
    ids, texts, skipped = parse(lines, 0)
    assert ids.tolist() == [0, 4, 6] and texts == ["first", "café", "last"]  # BOM and \r dropped
    assert skipped == {"invalid_utf8": 1, "empty": 3}  # an em space alone is blank too
    assert parse([b"\xef\xbb\xbfnot first\n"], 7)[1] == ["\ufeffnot first"]  # a BOM is only dropped before line 0


def run_cli(models, directory, corpus, *options):
    return [sys.executable, "-m", "minibert", "embed", "--model", models["embed"], "--input", str(corpus), "--output",
            str(directory), "--shard-size", "100", "--workers", "1", "--threads", "1", *options]


def test_resume_after_sigkill_equals_an_uninterrupted_run(models, tmp_path):
    """Killed (SIGKILL) as the run starts, after 3 shards and after 12, then rerun to the end: the same bytes as
    an uninterrupted run, every line once, and the shards written before each kill untouched by the reruns."""
    corpus = tmp_path / "in.txt"
    write_corpus(corpus, 3000, seed=4)
    run_local(Job("embed", models["embed"], str(corpus), str(tmp_path / "whole"), shard_size=100), threads=1,
              progress=False)
    directory = tmp_path / "resumed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills, stamps = [], {}
    for shards_before_kill in (0, 3, 12):
        process = subprocess.Popen(run_cli(models, directory, corpus), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            done = list(directory.glob("shard-*[0-9].npy"))
            if (directory / "manifest.json").is_file() and len(done) >= shards_before_kill:
                break
            time.sleep(0.005)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
        done = sorted(directory.glob("shard-*.npy"))
        kills.append(len(done) // 2)
        for path in done:  # what is written stays as it was
            stamp = (path.stat().st_ino, path.stat().st_mtime_ns)
            assert stamps.setdefault(path.name, stamp) == stamp
    print("shards complete at each kill:", kills)
    subprocess.run(run_cli(models, directory, corpus), env=env, capture_output=True, check=True)
    for name, stamp in stamps.items():
        assert ((directory / name).stat().st_ino, (directory / name).stat().st_mtime_ns) == stamp, name
    for name in sorted(p.name for p in (tmp_path / "whole").iterdir()):
        assert (directory / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert not list(directory.glob(".*.tmp"))  # a killed run's temporaries are cleared


def test_a_different_job_is_refused(models, tmp_path, capsys):
    corpus = tmp_path / "in.txt"
    write_corpus(corpus, 20)
    base = ["--input", str(corpus), "--output", str(tmp_path / "out"), "--shard-size", "10"]
    assert main(["embed", "--model", models["embed"], *base]) == 0
    assert main(["embed", "--model", models["embed"], *base]) == 0  # resumed: nothing left to do
    capsys.readouterr()
    assert main(["classify", "--model", models["classify"], *base]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"minibert classify: error: {tmp_path / 'out'} holds the output of another job "
                          "(task 'embed', not 'classify')") and err.count("\n") == 1
    assert main(["embed", "--model", models["embed"], *base[:-1], "20"]) == 1
    assert "(shard_size 10, not 20)" in capsys.readouterr().err
    with open(corpus, "a") as f:
        f.write("one line more\n")
    assert main(["embed", "--model", models["embed"], *base]) == 1
    assert "holds the output of another job (input {" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    (["TEXT"], "--output reads its texts from --input FILE"),
    (["--engine", "local", "--address", "localhost:6379"], "--address goes with --engine ray"),
    (["--workers", "0"], "workers must be a positive integer, got 0"),
])
def test_corpus_command_mistakes(models, tmp_path, capsys, options, message):
    (tmp_path / "in.txt").write_text("a\n")
    assert main(["embed", "--model", models["embed"], "--input", str(tmp_path / "in.txt"), "--output",
                 str(tmp_path / "out"), *options]) in (1, 2)
    assert message in capsys.readouterr().err


# ---- Ray Data (slow: a local cluster) ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'bert-miniatures-numpy[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_map_batches_as_written(models, local_ray):
    """The README's line: Ray Data calls the worker class on its dict batches, one actor per worker."""
    texts = sentences(300, seed=5)
    ds = local_ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)])
    rows = ds.map_batches(Embedder, fn_constructor_kwargs={"model": models["embed"]}, concurrency=2,
                          batch_size=64).take_all()
    rows.sort(key=lambda row: row["id"])  # Ray Data returns batches as they finish
    assert [r["text"] for r in rows] == texts
    expected = SentenceEncoder.from_pretrained(models["embed"]).encode(texts)
    assert np.array_equal(np.stack([r["embedding"] for r in rows]), expected)


@pytest.mark.slow
def test_ray_engine_equals_the_local_engine_with_a_worker_killed(models, local_ray, tmp_path):
    """A few thousand lines on two Ray workers, one SIGKILLed mid-run (Ray restarts it and retries its shard):
    the same files, byte for byte, as the local engine's."""
    from minibert.corpus import run_ray

    corpus = tmp_path / "in.txt"
    write_corpus(corpus, 4000, seed=6)
    local = run_local(Job("embed", models["embed"], str(corpus), str(tmp_path / "local"), shard_size=200), threads=1,
                      progress=False)
    job = Job("embed", models["embed"], str(corpus), str(tmp_path / "ray"), shard_size=200)

    import threading

    killed = []

    def kill_a_worker():
        """Once a shard is written, SIGKILL the first process Ray titled after the ShardWriter actor."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if list((tmp_path / "ray").glob("shard-*[0-9].npy")):
                for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
                    try:
                        title = Path(f"/proc/{pid}/cmdline").read_bytes()
                    except OSError:
                        continue
                    if title.startswith(b"ray::") and b"ShardWriter" in title:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(title.split(b"\0")[0].decode())
                        break
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    manifest = run_ray(job, workers=2, threads=1, progress=False)
    killer.join()
    print("killed:", killed)
    assert killed, "no worker was killed"
    assert {k: v for k, v in manifest.items() if k != "job"} == {k: v for k, v in local.items() if k != "job"}
    for path in sorted((tmp_path / "local").glob("shard-*")):
        assert (tmp_path / "ray" / path.name).read_bytes() == path.read_bytes(), path.name
    assert main(["embed", "--model", models["embed"], "--input", str(corpus), "--output", str(tmp_path / "ray"),
                 "--shard-size", "200", "--engine", "ray"]) == 0  # the command: complete already, nothing to redo
