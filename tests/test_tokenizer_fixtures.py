"""minibert's BertTokenizer against frozen transformers outputs, without transformers.

Every line of every installed real-text corpus (tests/fixtures/corpora.py) must give exactly what
transformers' BertTokenizer gave: ids, type ids, mask, offsets and both decodings, under four settings.
"""

import json
import shutil

import numpy as np
import pytest

from minibert import AddedToken, BertTokenizer
from tests.fixtures.cases import FIXTURES
from tests.fixtures.corpora import corpora
from tests.fixtures.tokenizer_cases import (
    CALLS, MAPPINGS, PADS, SETTINGS, encode_added, line_record, record_digest, run_additions, run_call, run_mappings,
    run_pad, text_digest,
)

LINES = np.load(FIXTURES / "tokenizer_lines.npz")
SOURCES = corpora()


@pytest.fixture(scope="module")
def model_dir(minilm_path):
    return minilm_path


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_every_corpus_line_matches(model_dir, setting):
    tokenizer = BertTokenizer.from_pretrained(model_dir, **SETTINGS[setting])
    compared, mismatches = 0, []
    for source, lines in SOURCES.items():
        if f"{source}/text" not in LINES.files:
            continue
        texts, expected = LINES[f"{source}/text"], LINES[f"{source}/{setting}"]
        for i, text in enumerate(lines[:len(texts)]):
            if int(text_digest(text), 16) != texts[i]:
                continue  # the installed copy of the line differs from the one the fixture saw
            compared += 1
            if int(record_digest(tokenizer, text), 16) != expected[i]:
                mismatches.append(f"{source}[{i}] {text[:60]!r} -> {line_record(tokenizer, text)[:200]}")
    print(f"{setting}: {compared} lines compared, {len(mismatches)} mismatches")
    assert compared > 0, "no corpus line of the fixture is installed here (bash tests/fixtures/install_corpora.sh)"
    assert not mismatches, f"{len(mismatches)} of {compared} lines differ:\n" + "\n".join(mismatches[:10])


def test_fixture_corpora_are_installed():
    """Each installed corpus is the text the fixture was made from (at least 90% of its lines the same), so
    the line tests above compare what they seem to; the fixture's sources missing here are skipped there, and
    named here."""
    fixture_sources = {k.split("/")[0] for k in LINES.files if k.endswith("/text")}
    for source in sorted(fixture_sources & set(SOURCES)):
        texts = LINES[f"{source}/text"]
        same = sum(int(text_digest(line), 16) == digest for line, digest in zip(SOURCES[source], texts))
        print(f"{source}: {same} of the fixture's {len(texts)} lines installed as it saw them")
        assert same >= 0.9 * len(texts), (f"{source} differs from the text the fixture was made from: regenerate "
                                          "it (tests/fixtures/make_tokenizer_fixtures.py)")
    missing = sorted(fixture_sources - set(SOURCES))
    if missing:
        pytest.skip(f"corpora not installed here: {', '.join(missing)} (bash tests/fixtures/install_corpora.sh)")


CALLS_FIXTURE = json.loads((FIXTURES / "tokenizer_calls.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("directory_kind", ["minilm", "vocab-only"])
def test_batch_calls_match(model_dir, tmp_path, directory_kind):
    """Pairs, padding, truncation strategies, overflow, words, tensors and errors, call by call; then pad(),
    and the lookups between characters, words and tokens."""
    if directory_kind == "vocab-only":
        shutil.copy(model_dir / "vocab.txt", tmp_path)
        model_dir = tmp_path
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    recorded = CALLS_FIXTURE[directory_kind]
    assert [(c["kwargs"], c["inputs"]) for c in recorded] == [(k, i) for k, i in CALLS]
    for case in recorded:
        assert run_call(tokenizer, case["kwargs"], case["inputs"]) == case["expected"], case["kwargs"]
    pads = CALLS_FIXTURE[f"{directory_kind} pad"]
    assert [(c["kwargs"], c["inputs"]) for c in pads] == [(k, i) for k, i in PADS]
    for case in pads:
        assert run_pad(tokenizer, case["kwargs"], case["inputs"]) == case["expected"], ("pad", case["kwargs"])
    lookups = CALLS_FIXTURE[f"{directory_kind} mappings"]
    assert [(c["kwargs"], c["inputs"]) for c in lookups] == [(k, i) for k, i in MAPPINGS]
    for case in lookups:
        assert run_mappings(tokenizer, case["kwargs"], case["inputs"]) == case["expected"], ("lookups", case["kwargs"])


def as_json(value):
    """As the fixture stores it: tuples become lists."""
    return json.loads(json.dumps(value, ensure_ascii=False))


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_added_tokens_match(model_dir, tmp_path, setting):
    """Tokens added by add_tokens / add_special_tokens: the counts returned, the vocabulary, the special
    tokens, and encodings, decodings and tokens() of texts full of them. Then the directory transformers
    saved after adding them (tokenizer.json and tokenizer_config.json, no vocab.txt) loads in minibert with
    the same encodings, and so does minibert's own save of it."""
    recorded = CALLS_FIXTURE[f"added {setting}"]
    ours = run_additions(BertTokenizer.from_pretrained(model_dir, **SETTINGS[setting]), AddedToken)
    assert as_json(ours) == {k: v for k, v in recorded.items() if k != "saved"}

    saved = tmp_path / "saved by transformers"
    saved.mkdir()
    tokenizer_json = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer_json["added_tokens"] = recorded["saved"]["added_tokens"]
    (saved / "tokenizer.json").write_text(json.dumps(tokenizer_json), encoding="utf-8")
    (saved / "tokenizer_config.json").write_text(json.dumps(recorded["saved"]["tokenizer_config.json"]),
                                                 encoding="utf-8")
    loaded = BertTokenizer.from_pretrained(saved)
    assert as_json(encode_added(loaded)) == recorded["encodings"]
    loaded.save_pretrained(tmp_path / "saved by minibert")
    assert as_json(encode_added(BertTokenizer.from_pretrained(tmp_path / "saved by minibert"))) == recorded["encodings"]
