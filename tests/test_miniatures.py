"""The table of Google's 24 BERT miniatures (minibert/loading/miniatures.tsv)."""

import math

from minibert import BertConfig, miniatures
from minibert.loading.miniatures import find_miniature
from minibert.loading.weights import bert_shapes


def test_all_24_with_consistent_shapes():
    table = miniatures()
    assert len(table) == 24
    assert {(m.layers, m.hidden) for m in table} == {(L, H) for L in (2, 4, 6, 8, 10, 12) for H in (128, 256, 512, 768)}
    for m in table:
        assert m.heads == m.hidden // 64 and m.intermediate == 4 * m.hidden
        assert m.hub_id == f"google/bert_uncased_L-{m.layers}_H-{m.hidden}_A-{m.heads}"


def test_parameter_counts_are_those_of_the_architecture():
    for m in miniatures():
        assert m.parameters == sum(math.prod(s)
                                   for s in bert_shapes(BertConfig.from_pretrained(m.name)).values()), m.name
    assert find_miniature("bert-mini").parameters == 11_170_560  # "11.2M", as the model card says


def test_short_names_and_published_glue_scores():
    assert find_miniature("bert-mini").hub_id == "google/bert_uncased_L-4_H-256_A-4"
    assert find_miniature("google/bert_uncased_L-2_H-128_A-2").name == "bert-tiny"
    assert find_miniature("bert_uncased_L-8_H-512_A-8").name == "bert-medium"
    assert find_miniature("bert-huge") is None
    assert find_miniature("bert-mini").glue["sst2"] == "85.9"
    assert find_miniature("bert-tiny").glue["sst2"] == "83.2"  # Turc et al. (2019), GLUE SST-2 test accuracy
    assert find_miniature("bert-base").glue == {}  # the release published GLUE for Tiny..Medium only


def test_config_from_a_short_name_needs_no_download():
    config = BertConfig.from_pretrained("bert-mini")
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
            config.intermediate_size) == (4, 256, 4, 1024)
