"""BertConfig and the models as code written for transformers calls them: transformers' own BERT modeling and
configuration test cases that need no torch machinery, translated with their expected values (each test names
the peer test it comes from), and, when transformers is importable, the same calls side by side.

Peer files: transformers tests/models/bert/test_modeling_bert.py (BertModelTester), tests/test_configuration_common.py
(ConfigTester), tests/test_modeling_common.py (ModelTesterMixin).
"""

import importlib.util
import json
import warnings

import numpy as np
import pytest

import minibert
from minibert import BertConfig, ConfigError
from minibert.loading.weights import init_weights
from minibert.train import dropout_masks, sequence_loss, value_and_grad

# BertModelTester's configuration
TESTER = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
          "intermediate_size": 37, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
          "attention_probs_dropout_prob": 0.1,
          "max_position_embeddings": 512, "type_vocab_size": 16, "initializer_range": 0.02}


# ---- ConfigTester (test_configuration_common.py), with BertModelTest's hidden_size=37 -------------------------


def test_config_common_properties():  # create_and_test_config_common_properties
    config = BertConfig(**{**TESTER, "hidden_size": 36})
    for name in ("hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size"):
        assert hasattr(config, name)
    assert BertConfig(hidden_size=36, num_attention_heads=4, num_hidden_layers=3).num_hidden_layers == 3


# create_and_test_config_to_json_file, create_and_test_config_from_and_save_pretrained
def test_config_to_json_and_back(tmp_path):
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
    """With no arguments, transformers' defaults: every key both configs write, the same value."""
    transformers = pytest.importorskip("transformers", reason="the defaults are compared with transformers'")
    ours, theirs = BertConfig().to_dict(), transformers.BertConfig().to_dict()
    shared = sorted(set(ours) & set(theirs))
    print(f"{len(shared)} keys compared: {shared}")
    assert len(shared) >= 14 and {k: ours[k] for k in shared} == {k: theirs[k] for k in shared}


def test_config_labels_and_call_defaults():
    config = BertConfig(id2label={0: "negative", 1: "positive"})
    assert config.label2id == {"negative": 0, "positive": 1} and config.num_labels == 2
    config.id2label = {0: "a", 1: "b", 2: "c"}  # label2id follows (transformers 5 keeps the old one)
    assert config.label2id == {"a": 0, "b": 1, "c": 2} and config.to_dict()["id2label"] == {"0": "a",
                                                                                            "1": "b", "2": "c"}
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


# ---- the models: BertModelTester (test_modeling_bert.py) and ModelTesterMixin (test_modeling_common.py) ------

HEADS = {  # transformers' class -> what BertModelTester checks: the output field and its shape
    "BertModel": ("last_hidden_state", lambda b, s, c: (b, s, c.hidden_size)),
    "BertForMaskedLM": ("logits", lambda b, s, c: (b, s, c.vocab_size)),
    "BertForNextSentencePrediction": ("logits", lambda b, s, c: (b, 2)),
    "BertForPreTraining": ("prediction_logits", lambda b, s, c: (b, s, c.vocab_size)),
    "BertForQuestionAnswering": ("start_logits", lambda b, s, c: (b, s)),
    "BertForSequenceClassification": ("logits", lambda b, s, c: (b, c.num_labels)),
    "BertForTokenClassification": ("logits", lambda b, s, c: (b, s, c.num_labels)),
    "BertForMultipleChoice": ("logits", lambda b, s, c: (b, 4)),
}


def inputs_for(config, batch=13, seq=7, seed=0):
    """BertModelTester.prepare_config_and_inputs: ids_tensor, random_attention_mask (last column 1)."""
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 2, (batch, seq))
    mask[:, -1] = 1
    return {"input_ids": rng.integers(0, config.vocab_size, (batch, seq)), "attention_mask": mask,
            "token_type_ids": rng.integers(0, config.type_vocab_size, (batch, seq))}


def build(name, config, seed=0, dtype=np.float32):
    """A model of class `name` with random weights (heads included), as BertModelTester builds `Class(config)`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the classifier heads start untrained, which their warning says
        return getattr(minibert, name)(config, init_weights(config, seed=seed, pretraining_heads=True), dtype=dtype)


def call_inputs(name, inputs):
    """BertModelTester.create_and_check_for_multiple_choice expands each input to 4 choices."""
    if name != "BertForMultipleChoice":
        return inputs
    return {k: np.repeat(v[:, None], 4, axis=1) for k, v in inputs.items()}


@pytest.mark.parametrize("name", list(HEADS))
def test_models_as_bert_model_tester_checks_them(name):  # create_and_check_model, create_and_check_for_*
    config = BertConfig(**TESTER, num_labels=3)
    model = build(name, config)
    inputs = call_inputs(name, inputs_for(config))
    field, shape = HEADS[name]
    for given in (inputs, {k: inputs[k] for k in ("input_ids", "token_type_ids")}, {"input_ids": inputs["input_ids"]}):
        assert getattr(model(**given), field).shape == shape(13, 7, config)
    if name == "BertModel":
        assert model(**inputs).pooler_output.shape == (13, config.hidden_size)


@pytest.mark.parametrize("name", list(HEADS))
def test_outputs_and_tuples(name):
    """test_attention_outputs and test_hidden_states_output (as arguments and as config fields),
    test_model_outputs_equivalence (return_dict=False is to_tuple(), also from config.return_dict),
    test_determinism (evaluation gives the same numbers twice)."""
    config = BertConfig(**TESTER, num_labels=3)
    model = build(name, config)
    inputs = call_inputs(name, inputs_for(config))
    rows = 13 * 4 if name == "BertForMultipleChoice" else 13
    out = model(**inputs, output_attentions=True, output_hidden_states=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (rows, 4, 7, 7)
    assert len(out.hidden_states) == 3 and out.hidden_states[0].shape == (rows, 7, 32)
    config.output_attentions = config.output_hidden_states = True
    assert same(model(**inputs).to_tuple(), out.to_tuple())
    assert model(**inputs, output_attentions=False).attentions is None
    assert same(model(**inputs, return_dict=False), out.to_tuple())
    config.return_dict = False
    assert same(model(**inputs), out.to_tuple()) and same(model(**inputs, return_dict=True).to_tuple(), out.to_tuple())
    config.return_dict = True
    assert same(model(**inputs).to_tuple(), model(**inputs).to_tuple())  # test_determinism


def same(a, b) -> bool:
    """Equal outputs: a tuple of arrays and of tuples of arrays, element by element."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def test_tokenizer_output_feeds_the_model(minilm_path):
    """model(**tokenizer(..., return_tensors="np")), and "pt" when torch is installed."""
    tokenizer = minibert.BertTokenizer.from_pretrained(minilm_path)
    model = minibert.BertModel.from_pretrained(minilm_path)
    texts = ["a cat sits on the mat", "dogs"]
    out = model(**tokenizer(texts, padding=True, return_tensors="np"))
    assert out.last_hidden_state.shape[:2] == (2, 8)
    if importlib.util.find_spec("torch"):
        pt = model(**tokenizer(texts, padding=True, return_tensors="pt"))
        np.testing.assert_array_equal(pt.last_hidden_state, out.last_hidden_state)


def test_parameters_and_embeddings():  # test_model_get_set_embeddings; num_parameters
    config = BertConfig(**TESTER)
    model = build("BertForMaskedLM", config)
    embeddings = model.get_input_embeddings()
    assert embeddings.weight is model.bert.weights["embeddings"]["word_embeddings"]["weight"]
    assert (embeddings.num_embeddings, embeddings.embedding_dim) == (99, 32)
    new = np.random.default_rng(1).normal(size=(99, 32)).astype(np.float32)
    inputs = inputs_for(config)
    model.set_input_embeddings(new)
    np.testing.assert_array_equal(model.get_input_embeddings().weight, new)
    np.testing.assert_array_equal(model.head["cls"]["predictions"]["decoder"]["weight"], new)  # tied: follows
    fresh = build("BertForMaskedLM", config)
    fresh.bert.weights["embeddings"]["word_embeddings"]["weight"][...] = new
    np.testing.assert_allclose(model(**inputs).logits, fresh(**inputs).logits, atol=1e-6)
    with pytest.raises(ValueError, match="use resize_token_embeddings"):
        model.set_input_embeddings(np.zeros((100, 32)))
    tables = 99 * 32 + 512 * 32 + 16 * 32
    assert model.num_parameters() - model.num_parameters(exclude_embeddings=True) == tables


def test_train_and_eval_switch_dropout():
    """eval() by default (as from_pretrained returns models in transformers); train() drops activations with
    the config's probabilities, masks from model.dropout_rng, drawn in the order minibert.train.dropout_masks
    draws them: the loss of a train-mode call equals value_and_grad's with those masks (whose gradients are
    checked against torch autograd in test_train_live.py)."""
    probabilities = {"hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.3, "classifier_dropout": 0.4}
    config = BertConfig(**{**TESTER, **probabilities}, num_labels=3)  # each its own, so a swapped one shows
    model = build("BertForSequenceClassification", config, dtype=np.float64)
    inputs, labels = inputs_for(config), np.arange(13) % 3
    assert not model.training
    evaluated = model(**inputs).logits
    model.train()
    model.dropout_rng = np.random.default_rng(7)
    trained = model(**inputs).logits
    assert not np.allclose(trained, evaluated) and not np.allclose(model(**inputs).logits, trained)  # fresh masks
    masks = dropout_masks(model, inputs["input_ids"].shape, np.random.default_rng(7))
    loss, _ = value_and_grad(model, inputs, labels, dropout=masks)
    assert abs(sequence_loss(trained, labels, "single_label_classification")[0] - loss) < 1e-12
    np.testing.assert_array_equal(model.eval()(**inputs).logits, evaluated)
    without = build("BertForSequenceClassification", BertConfig(**{**TESTER, "hidden_dropout_prob": 0.0,
                                                                   "attention_probs_dropout_prob": 0.0}, num_labels=3))
    np.testing.assert_allclose(without.train()(**inputs).logits, without.eval()(**inputs).logits, atol=1e-6)


LIVE_CLASSES = [name for name in HEADS if name != "BertModel"] + ["BertModel"]


@pytest.mark.parametrize("name", LIVE_CLASSES)
def test_same_outputs_as_transformers(name, tmp_path):
    """The same calls against transformers on the same weights: return_dict=False tuples in transformers'
    order (hidden states and attention maps included, from arguments and from the config), num_parameters,
    the input embeddings."""
    transformers = pytest.importorskip("transformers", reason="the side-by-side calls need transformers")
    torch = pytest.importorskip("torch", reason="the side-by-side calls need torch")
    # transformers' BertForQuestionAnswering has num_labels outputs, minibert's the two spans'
    config = BertConfig(**TESTER, num_labels=2 if name == "BertForQuestionAnswering" else 3)
    ours = build(name, config)
    ours.save_pretrained(tmp_path)
    theirs = getattr(transformers, name).from_pretrained(tmp_path, attn_implementation="eager").eval()
    inputs = call_inputs(name, inputs_for(config))
    kwargs = {"output_hidden_states": True, "output_attentions": True, "return_dict": False}
    with torch.no_grad():
        reference = theirs(**{k: torch.from_numpy(v) for k, v in inputs.items()}, **kwargs)
    mine = ours(**inputs, **kwargs)
    if name == "BertModel":  # transformers 5 appends an empty cross_attentions tuple, which minibert leaves out
        assert reference[-1] == ()
        reference = reference[:-1]
    assert len(mine) == len(reference)
    worst = 0.0
    for a, b in zip(mine, reference):
        a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
        assert len(a) == len(b)
        worst = max([worst] + [float(np.abs(x - y.numpy()).max()) for x, y in zip(a, b)])
    print(f"{name}: max abs diff {worst:.1e} over every output")
    assert worst <= 1e-5
    assert ours.num_parameters() == theirs.num_parameters()
    assert ours.num_parameters(exclude_embeddings=True) == theirs.num_parameters(exclude_embeddings=True)
    their_embeddings = theirs.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(ours.get_input_embeddings().weight, their_embeddings)
    theirs.config.output_hidden_states = ours.config.output_hidden_states = True
    with torch.no_grad():
        assert len(ours(**inputs)) == len(theirs(**{k: torch.from_numpy(v) for k, v in inputs.items()}))
