"""minibert's BertTokenizer against transformers' BertTokenizer, live, when transformers is importable."""

import shutil

import pytest

transformers = pytest.importorskip("transformers", reason="live tokenizer parity needs transformers")

from minibert import BertTokenizer  # noqa: E402
from tests.fixtures.corpora import corpora  # noqa: E402
from tests.fixtures.tokenizer_cases import CALLS, PADS, line_record, run_call, run_pad  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(minilm_path):
    transformers.logging.set_verbosity_error()
    return minilm_path


def assert_same_records(reference, ours, texts, label):
    mismatches = [t for t in texts if line_record(reference, t) != line_record(ours, t)]
    print(f"live {label}: {len(texts)} texts, {len(mismatches)} mismatches")
    assert not mismatches, [(t[:40], line_record(reference, t)[:150], line_record(ours, t)[:150]) for t in mismatches[:5]]


def test_every_code_point_in_context(model_dir):
    """Each code point between letters and doubled, so removal, splitting, accents and case all show."""
    code_points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = [" ".join(f"x{chr(c)}y{chr(c)}{chr(c)}" for c in code_points[i:i + 256])
             for i in range(0, len(code_points), 256)]
    assert_same_records(transformers.BertTokenizer.from_pretrained(model_dir),
                        BertTokenizer.from_pretrained(model_dir), texts, "all code points")


def test_corpora(model_dir):
    reference, ours = transformers.BertTokenizer.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)
    for source, lines in corpora().items():
        assert_same_records(reference, ours, lines, source)


@pytest.mark.parametrize("directory_kind", ["minilm", "vocab-only"])
def test_batch_calls(model_dir, tmp_path, directory_kind):
    if directory_kind == "vocab-only":
        shutil.copy(model_dir / "vocab.txt", tmp_path)
        model_dir = tmp_path
    reference, ours = transformers.BertTokenizer.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)
    for kwargs, inputs in CALLS:
        assert run_call(ours, kwargs, inputs) == run_call(reference, kwargs, inputs), kwargs
    for kwargs, inputs in PADS:
        assert run_pad(ours, kwargs, inputs) == run_pad(reference, kwargs, inputs), ("pad", kwargs)


def test_helpers(model_dir):
    reference, ours = transformers.BertTokenizer.from_pretrained(model_dir), BertTokenizer.from_pretrained(model_dir)
    tokens = ["hel", "##lo", "[CLS]", "world", ".", "don", "'", "t", "?", "##s", ","]
    assert ours.convert_tokens_to_string(tokens) == reference.convert_tokens_to_string(tokens)
    assert ours.special_tokens_map == reference.special_tokens_map
    for pair in (False, True):
        assert ours.num_special_tokens_to_add(pair) == reference.num_special_tokens_to_add(pair)


def test_saved_tokenizer_loads_in_transformers(model_dir, tmp_path):
    ours = BertTokenizer.from_pretrained(model_dir, strip_accents=False)
    ours.save_pretrained(tmp_path)
    reloaded = transformers.BertTokenizer.from_pretrained(tmp_path)
    assert reloaded.model_max_length == 512
    assert_same_records(reloaded, ours, ["Café crème [MASK] ünïcödé", "plain text"], "saved tokenizer")
