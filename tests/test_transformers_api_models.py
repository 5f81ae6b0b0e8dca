"""BertConfig and the models as code written for transformers calls them: transformers' own BERT modeling and
configuration test cases that need no torch machinery, translated with their expected values (each test names
the peer test it comes from), and, when transformers is importable, the same calls side by side.

Peer files: transformers tests/models/bert/test_modeling_bert.py (BertModelTester), tests/test_configuration_common.py
(ConfigTester), tests/test_modeling_common.py (ModelTesterMixin).
"""

import json

import pytest

from minibert import BertConfig, ConfigError

# BertModelTester's configuration
TESTER = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 37, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
          "max_position_embeddings": 512, "type_vocab_size": 16, "initializer_range": 0.02}


# ---- ConfigTester (test_configuration_common.py), with BertModelTest's hidden_size=37 -------------------------


def test_config_common_properties():  # create_and_test_config_common_properties
    config = BertConfig(**{**TESTER, "hidden_size": 36})
    for name in ("hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size"):
        assert hasattr(config, name)
    assert BertConfig(hidden_size=36, num_attention_heads=4, num_hidden_layers=3).num_hidden_layers == 3


def test_config_to_json_and_back(tmp_path):  # create_and_test_config_to_json_file, create_and_test_config_from_and_save_pretrained
    config = BertConfig(**TESTER, output_hidden_states=True)
    config.save_pretrained(tmp_path)
    loaded = BertConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict() and loaded.output_hidden_states is True
    assert json.loads((tmp_path / "config.json").read_text())["output_hidden_states"] is True


def test_config_with_num_labels():  # create_and_test_config_with_num_labels
    config = BertConfig(num_labels=5)
    assert len(config.id2label) == 5 and len(config.label2id) == 5
    config.num_labels = 3
    assert len(config.id2label) == 3 and len(config.label2id) == 3


def test_config_can_be_init_without_params():  # check_config_can_be_init_without_params
    assert BertConfig() is not None


def test_config_labels_and_call_defaults():
    config = BertConfig(id2label={0: "negative", 1: "positive"})
    assert config.label2id == {"negative": 0, "positive": 1} and config.num_labels == 2
    config.id2label = {0: "a", 1: "b", 2: "c"}  # label2id follows (transformers 5 keeps the old one)
    assert config.label2id == {"a": 0, "b": 1, "c": 2} and config.to_dict()["id2label"] == {"0": "a", "1": "b", "2": "c"}
    assert (config.output_hidden_states, config.output_attentions, config.return_dict, config.use_return_dict) == (
        False, False, True, True)
    config.output_attentions, config.return_dict = True, False
    assert config.to_dict()["output_attentions"] is True and config.use_return_dict is False
    for bad in (lambda: setattr(config, "output_attentions", "yes"), lambda: setattr(config, "num_labels", 0),
                lambda: setattr(config, "id2label", {1: "x"}), lambda: BertConfig(return_dict=1)):
        with pytest.raises(ConfigError):
            bad()
    assert config.id2label == {0: "a", 1: "b", 2: "c"}  # a refused assignment leaves the labels as they were


def test_config_round_trips_through_transformers(tmp_path):
    """id2label / label2id and the call defaults, saved by each library and read by the other."""
    transformers = pytest.importorskip("transformers", reason="the round trip needs transformers")
    ours = BertConfig(**TESTER, id2label={0: "neg", 1: "pos"}, output_hidden_states=True)
    ours.save_pretrained(tmp_path / "minibert")
    theirs = transformers.BertConfig.from_pretrained(tmp_path / "minibert")
    assert (theirs.id2label, theirs.output_hidden_states) == (ours.id2label, True)
    ours.id2label = ours.id2label  # set as an attribute, label2id is written too
    ours.save_pretrained(tmp_path / "minibert")
    assert transformers.BertConfig.from_pretrained(tmp_path / "minibert").label2id == {"neg": 0, "pos": 1}
    theirs = transformers.BertConfig(**TESTER, num_labels=3, output_attentions=True, return_dict=False)
    theirs.save_pretrained(tmp_path / "transformers")
    back = BertConfig.from_pretrained(tmp_path / "transformers")
    assert (back.id2label, back.label2id, back.num_labels) == (theirs.id2label, theirs.label2id, 3)
    assert (back.output_attentions, back.return_dict) == (theirs.output_attentions, theirs.return_dict)
    labels = [json.loads(json.dumps({k: c.to_dict()[k] for k in ("id2label", "label2id")}))  # as config.json has them
              for c in (BertConfig(**TESTER, num_labels=3), transformers.BertConfig(**TESTER, num_labels=3))]
    assert labels[0] == labels[1]
