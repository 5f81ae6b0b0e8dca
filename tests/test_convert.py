"""`minibert convert`: a verified, atomic safetensors copy of any checkpoint, without torch."""

import numpy as np
import pytest

import minibert.loading.convert
from minibert import BertModel, WeightsError
from minibert.cli import main
from minibert.loading.weights import read_weights, weights_file
from tests.fixtures.cases import FIXTURES

CHECKPOINTS = FIXTURES / "checkpoints"


@pytest.mark.parametrize("layout", ["zip", "legacy", "float16", "bfloat16", "safetensors-tied"])
def test_convert_directory(tmp_path, layout, capsys):
    assert main(["convert", str(CHECKPOINTS / layout), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'out' / 'model.safetensors'}"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors", "vocab.txt"]
    source, written = (read_weights(weights_file(CHECKPOINTS / layout)),
                       read_weights(tmp_path / "out" / "model.safetensors"))
    assert set(source) == set(written)
    for name in source:
        assert written[name].dtype == source[name].dtype and np.array_equal(written[name], source[name]), name
    if layout in ("zip", "legacy"):
        np.testing.assert_array_equal(BertModel.from_pretrained(tmp_path / "out")([[2, 7, 3]]).last_hidden_state,
                                      BertModel.from_pretrained(CHECKPOINTS / layout)([[2, 7, 3]]).last_hidden_state)


def test_convert_a_single_file(tmp_path):
    assert main(["convert", str(CHECKPOINTS / "zip" / "pytorch_model.bin"), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "config.json").is_file()


def test_interrupted_conversion_leaves_no_partial_file(tmp_path, monkeypatch):
    import safetensors.numpy

    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"the previous, good file")

    def interrupted(tensors, path):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        minibert.loading.convert.convert(CHECKPOINTS / "zip", out)
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == b"the previous, good file"


def test_failed_verification_keeps_nothing(tmp_path, monkeypatch):
    real_read = minibert.loading.convert.read_safetensors

    def corrupted(path):
        tensors = real_read(path)
        tensors["bert.pooler.dense.bias"] = tensors["bert.pooler.dense.bias"] + 1
        return tensors

    monkeypatch.setattr(minibert.loading.convert, "read_safetensors", corrupted)
    with pytest.raises(WeightsError, match="verification of .* failed: bert.pooler.dense.bias"):
        minibert.loading.convert.convert(CHECKPOINTS / "zip", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "bad.bin").write_text("not a checkpoint")
    assert main(["convert", str(tmp_path / "bad.bin"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("minibert convert: error: ") and "\n" not in err and "Traceback" not in err
