"""BertConfig: read from config.json, validated, written back."""

import json

import pytest

from minibert import BertConfig, ConfigError


def test_defaults_are_bert_base():
    c = BertConfig()
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (
        30522, 768, 12, 12, 3072)
    assert c.head_size == 64


def test_bert_mini_config_json(tmp_path):
    values = {"architectures": ["BertForPreTraining"], "hidden_size": 256, "num_hidden_layers": 4,
              "num_attention_heads": 4, "intermediate_size": 1024, "hidden_act": "gelu", "model_type": "bert",
              "id2label": {"0": "LABEL_0"}, "position_embedding_type": "absolute"}
    (tmp_path / "config.json").write_text(json.dumps(values))
    c = BertConfig.from_pretrained(tmp_path)
    assert c.hidden_size == 256 and c.head_size == 64 and c.vocab_size == 30522
    assert c.extra["architectures"] == ["BertForPreTraining"]
    c.save_pretrained(tmp_path / "out")
    assert BertConfig.from_pretrained(tmp_path / "out") == c
    assert json.loads((tmp_path / "out" / "config.json").read_text())["id2label"] == {"0": "LABEL_0"}


def test_null_position_embedding_type_means_absolute():
    assert BertConfig.from_dict({"position_embedding_type": None}).position_embedding_type == "absolute"


@pytest.mark.parametrize("values, message", [
    ({"hidden_size": 100, "num_attention_heads": 12},
     r"hidden_size \(100\) is not a multiple of num_attention_heads \(12\)"),
    ({"hidden_act": "gelu_new"}, "hidden_act 'gelu_new' is not supported"),
    ({"hidden_act": "relu"}, "hidden_act 'relu' is not supported"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key' is not supported"),
    ({"num_hidden_layers": 0}, r"num_hidden_layers must be a whole number in \[1, 256\], got 0"),
    ({"num_hidden_layers": 10**9}, r"num_hidden_layers must be a whole number in \[1, 256\], got 1000000000"),
    ({"vocab_size": "30522"}, "vocab_size must be a whole number"),
    ({"vocab_size": True}, "vocab_size must be a whole number"),
    ({"layer_norm_eps": -1}, r"layer_norm_eps must be a number in \(0, 1\)"),
    ({"layer_norm_eps": float("inf")}, r"layer_norm_eps must be a number in \(0, 1\), got inf"),
    ({"layer_norm_eps": 1e300}, r"layer_norm_eps must be a number in \(0, 1\)"),
    ({"layer_norm_eps": True}, r"layer_norm_eps must be a number in \(0, 1\), got True"),
    ({"initializer_range": float("inf")}, r"initializer_range must be a number in \[0, 1\], got inf"),
    ({"pad_token_id": 30522}, r"pad_token_id must be a token id in \[0, 30522\)"),
    ({"tie_word_embeddings": "yes"}, "tie_word_embeddings must be true or false, got 'yes'"),
    ({"model_type": "roberta"}, "model_type 'roberta' is not 'bert'"),
    ({"is_decoder": True}, "is_decoder=true"),
    ({"hidden_dropout_prob": 1.0},
     r"hidden_dropout_prob must be a probability in \[0, 1\), got 1.0"),  # training divided by 1 - p
    ({"attention_probs_dropout_prob": "0.1"}, "attention_probs_dropout_prob must be a probability"),
    ({"classifier_dropout": -0.1}, "classifier_dropout must be a probability"),
    ({"initializer_range": -0.02}, r"initializer_range must be a number in \[0, 1\]"),
    ({"num_labels": 0}, r"num_labels must be a whole number in \[1, 65536\], got 0"),
    ({"num_labels": 10**9}, r"num_labels must be a whole number in \[1, 65536\], got 1000000000"),
    ({"id2label": {"0": "neg", "2": "pos"}}, "id2label must map the class indices 0..n-1"),  # class 1 had no name
    ({"id2label": {"negative": "0"}}, "id2label must map the class indices"),
])
def test_invalid_configs_are_clear_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        BertConfig.from_dict(values)


def test_config_must_be_an_object():
    with pytest.raises(ConfigError, match="must be a JSON object"):
        BertConfig.from_dict([1, 2])
