"""Loading checkpoints: key mapping, every shape checked, clear errors for bad files."""

import json
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

from minibert import BertConfig, BertModel, ConfigError, HubError, WeightsError
from minibert.loading.weights import bert_shapes, bert_weights, canonical_name
from tests.fixtures.cases import RANDOM_CONFIGS, random_weights

CONFIG = RANDOM_CONFIGS["tiny"]
IDS = np.array([[5, 7, 9, 2]])


def write_model(directory, weights, config=CONFIG):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    save_file(weights, str(directory / "model.safetensors"))
    return directory


@pytest.fixture
def weights():
    return random_weights(CONFIG)


@pytest.fixture
def reference_output(weights):
    return BertModel(BertConfig.from_dict(CONFIG), weights)(IDS)


def test_from_pretrained_reads_config_and_safetensors(tmp_path, weights, reference_output):
    model = BertModel.from_pretrained(write_model(tmp_path / "m", weights))
    np.testing.assert_array_equal(model(IDS).last_hidden_state, reference_output.last_hidden_state)
    assert model.config.hidden_size == CONFIG["hidden_size"]


def test_saved_model_loads_back_with_every_tensor(tmp_path, weights, reference_output):
    model = BertModel(BertConfig.from_dict(CONFIG), weights)
    assert set(model.state_dict()) == set(weights)  # transformers' BertModel names, pooler included
    model.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["architectures"] == ["BertModel"]
    loaded = BertModel.from_pretrained(tmp_path / "saved")
    np.testing.assert_array_equal(loaded(IDS).last_hidden_state, reference_output.last_hidden_state)
    np.testing.assert_array_equal(loaded(IDS).pooler_output, reference_output.pooler_output)


def test_head_checkpoint_keys_map_onto_the_encoder(tmp_path, weights, reference_output):
    """bert. prefix, legacy gamma/beta names, buffers and head tensors: the same encoder comes out."""
    renamed = {}
    for key, value in weights.items():
        key = "bert." + key
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        renamed[key] = value
    renamed["bert.embeddings.position_ids"] = np.arange(CONFIG["max_position_embeddings"])[None]
    renamed["cls.predictions.bias"] = np.zeros(CONFIG["vocab_size"], np.float32)
    renamed["cls.seq_relationship.weight"] = np.zeros((2, CONFIG["hidden_size"]), np.float32)
    model = BertModel.from_pretrained(write_model(tmp_path / "m", renamed))
    np.testing.assert_array_equal(model(IDS).last_hidden_state, reference_output.last_hidden_state)


def test_canonical_names():
    assert canonical_name("bert.encoder.layer.3.output.LayerNorm.gamma") == "encoder.layer.3.output.LayerNorm.weight"
    assert canonical_name("embeddings.LayerNorm.beta") == "embeddings.LayerNorm.bias"
    assert canonical_name("pooler.dense.weight") == "pooler.dense.weight"


def test_checkpoint_without_pooler_gives_no_pooler_output(weights, reference_output):
    no_pooler = {k: v for k, v in weights.items() if not k.startswith("pooler.")}
    out = BertModel(BertConfig.from_dict(CONFIG), no_pooler)(IDS)
    assert out.pooler_output is None
    np.testing.assert_array_equal(out.last_hidden_state, reference_output.last_hidden_state)


def test_half_precision_checkpoint_is_upcast(weights):
    half = {k: v.astype(np.float16) for k, v in weights.items()}
    model = BertModel(BertConfig.from_dict(CONFIG), half)
    assert model.weights["pooler"]["dense"]["weight"].dtype == np.float32
    np.testing.assert_array_equal(model.weights["pooler"]["dense"]["weight"],
                                  half["pooler.dense.weight"].astype(np.float32))


def test_missing_misshaped_and_unexpected_tensors_are_all_named(weights):
    broken = dict(weights)
    del broken["encoder.layer.1.attention.self.key.bias"]
    broken["encoder.layer.0.intermediate.dense.weight"] = np.zeros((3, 3), np.float32)
    broken["encoder.layer.7.output.dense.weight"] = np.zeros((2, 2), np.float32)
    broken["embeddings.word_embeddings.weight"] = broken["embeddings.word_embeddings.weight"].astype(np.int32)
    with pytest.raises(WeightsError) as e:
        bert_weights(broken, BertConfig.from_dict(CONFIG))
    message = str(e.value)
    assert "missing encoder.layer.1.attention.self.key.bias [32]" in message
    assert "encoder.layer.0.intermediate.dense.weight has shape [3, 3], expected [37, 32]" in message
    assert "unexpected encoder.layer.7.output.dense.weight [2, 2]" in message
    assert "embeddings.word_embeddings.weight has dtype int32, expected a float type" in message


def test_partial_pooler_is_missing_not_absent(weights):
    del weights["pooler.dense.bias"]
    with pytest.raises(WeightsError, match="missing pooler.dense.bias"):
        bert_weights(weights, BertConfig.from_dict(CONFIG))


def test_same_tensor_under_two_spellings_is_refused(weights):
    weights["bert.pooler.dense.bias"] = weights["pooler.dense.bias"]
    with pytest.raises(WeightsError, match="pooler.dense.bias' twice"):
        bert_weights(weights, BertConfig.from_dict(CONFIG))


def test_checkpoint_of_another_size_is_refused(weights):
    bigger = dict(CONFIG, num_hidden_layers=3)
    with pytest.raises(WeightsError, match=r"missing encoder\.layer\.2\.attention\.self\.query\.weight"):
        BertModel(BertConfig.from_dict(bigger), weights)


def test_expected_tensor_count():
    # 5 embedding tensors + 16 per layer + 2 pooler, as in transformers' BertModel state_dict.
    assert len(bert_shapes(BertConfig.from_dict(CONFIG))) == 5 + 16 * CONFIG["num_hidden_layers"] + 2


def test_directory_without_files(tmp_path, weights):
    with pytest.raises(HubError, match="is neither a local directory nor a Hugging Face model id"):
        BertModel.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="config.json: no such file"):
        BertModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    with pytest.raises(WeightsError,
                       match=r"no model.safetensors or pytorch_model.bin in .* \(it holds: config.json\)"):
        BertModel.from_pretrained(tmp_path)


def test_truncated_safetensors(tmp_path, weights):
    directory = write_model(tmp_path / "m", weights)
    path = directory / "model.safetensors"
    data = path.read_bytes()
    for size in (len(data) - 100, 200, 5, 0):
        path.write_bytes(data[:size])
        with pytest.raises(WeightsError, match="is not a readable safetensors file"):
            BertModel.from_pretrained(directory)


def test_corrupt_safetensors_header(tmp_path, weights):
    directory = write_model(tmp_path / "m", weights)
    path = directory / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:20] = b"not json at!"
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="is not a readable safetensors file"):
        BertModel.from_pretrained(directory)


def test_weights_file_that_is_not_safetensors(tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(CONFIG))
    (directory / "model.safetensors").write_text("<html>404 not found</html>")
    with pytest.raises(WeightsError, match="is not a readable safetensors file"):
        BertModel.from_pretrained(directory)


def test_invalid_config_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json: not valid JSON"):
        BertModel.from_pretrained(tmp_path)


def test_unsupported_dtype(weights):
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        BertModel(BertConfig.from_dict(CONFIG), weights, dtype=np.float16)


def test_path_like_and_str_both_work(tmp_path, weights):
    directory = write_model(tmp_path / "m", weights)
    assert BertModel.from_pretrained(os.fspath(directory)).config == BertModel.from_pretrained(directory).config
