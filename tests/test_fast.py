"""The fast path (minibert/fast) equals the readable reference path (minibert/nn)."""

import math
import os
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minibert
from minibert import BertConfig, BertModel
from minibert.fast import encoder, gemm, layers, set_num_threads, simd
from minibert.fast.aligned import CACHE_LINE
from minibert.fast.encoder import attention_plan, gemm_rows
from tests.fixtures.cases import RANDOM_CONFIGS, random_weights
from tests.fixtures.cpu import run_for_cpu, run_with_lanes

BOUND = {"float32": 1e-5, "float64": 1e-12}


def models(config, weights, dtype):
    fast, reference = BertModel(config, weights, dtype=dtype), BertModel(config, weights, dtype=dtype)
    reference.use_fast = False
    return fast, reference


def compare(fast, reference, label, **inputs):
    a = fast(**inputs, output_hidden_states=True)
    b = reference(**inputs, output_hidden_states=True)
    real = np.broadcast_to(np.asarray(inputs.get("attention_mask", 1)), a.last_hidden_state.shape[:2]).astype(bool)
    worst = max(np.abs(x - y)[real].max() for x, y in zip(a.hidden_states, b.hidden_states))
    pooled = np.abs(a.pooler_output - b.pooler_output).max() if a.pooler_output is not None else 0.0
    print(f"fast vs reference, {label}: hidden states {worst:.1e}, pooler {pooled:.1e}")
    assert worst <= BOUND[str(fast.dtype)] and pooled <= BOUND[str(fast.dtype)]
    np.testing.assert_array_equal(a.last_hidden_state[~real], 0)  # nothing computed on padding
    return a


def prefix_mask(lengths, seq):
    return (np.arange(seq)[None] < np.array(lengths)[:, None]).astype(np.int64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_bert_mini_every_shape(dtype):
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    fast, reference = models(config, random_weights(RANDOM_CONFIGS["mini"]), dtype)
    rng = np.random.default_rng(0)
    cases = {
        "batch of one": (1, 9, [9]), "sequence of one": (2, 1, [1, 1]),
        "mixed lengths, short and long, padded": (6, 70, [70, 3, 33, 70, 12, 41]),
        "equal lengths": (4, 48, [48] * 4), "max length 512": (2, 512, [512, 300]),
    }
    for label, (batch, seq, lengths) in cases.items():
        ids = rng.integers(0, config.vocab_size, (batch, seq))
        types = (rng.random((batch, seq)) < 0.3).astype(np.int64)
        compare(fast, reference, label, input_ids=ids, attention_mask=prefix_mask(lengths, seq), token_type_ids=types)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_configs_and_masks(data):
    """Random head counts and sizes, FFN widths, depths, LayerNorm eps, batches and masks (right, left or
    scattered padding), token types and positions: both paths agree at every real position and on the
    pooler, in both dtypes. (Left padding with a pooler takes the reference path inside the fast model, as
    `packing` says.)"""
    heads, head_size = data.draw(st.integers(1, 4)), data.draw(st.sampled_from([8, 16, 24]))
    config = BertConfig.from_dict(dict(
        hidden_size=heads * head_size, num_attention_heads=heads, num_hidden_layers=data.draw(st.integers(1, 2)),
        intermediate_size=data.draw(st.integers(4, 64)), vocab_size=50, max_position_embeddings=64,
        type_vocab_size=data.draw(st.integers(1, 2)), layer_norm_eps=data.draw(st.sampled_from([1e-12, 1e-5]))))
    weights = minibert.init_weights(config, seed=data.draw(st.integers(0, 2**30)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**30)))
    batch, seq = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 40))
    lengths = rng.integers(1, seq + 1, batch)[:, None]
    mask = {"none": np.ones((batch, seq), np.int64), "right": np.arange(seq) < lengths,
            "left": np.arange(seq) >= seq - lengths, "scattered": rng.random((batch, seq)) < 0.7,
            }[data.draw(st.sampled_from(["none", "right", "left", "scattered"]))].astype(np.int64)
    inputs = {"input_ids": rng.integers(0, config.vocab_size, (batch, seq)), "attention_mask": mask}
    if data.draw(st.booleans()):
        inputs["token_type_ids"] = rng.integers(0, config.type_vocab_size, (batch, seq))
    if data.draw(st.booleans()):
        inputs["position_ids"] = rng.integers(0, 64, data.draw(st.sampled_from([(1, seq), (batch, seq)])))
    real = mask.astype(bool)
    for dtype in ("float32", "float64"):
        fast, reference = models(config, weights, dtype)
        a, b = fast(**inputs, output_hidden_states=True), reference(**inputs, output_hidden_states=True)
        worst = max(np.abs(x - y)[real].max(initial=0) for x, y in zip(a.hidden_states, b.hidden_states))
        worst = max(worst, np.abs(a.pooler_output - b.pooler_output).max())
        assert worst <= BOUND[dtype], (dtype, worst, config, inputs)


def test_real_weights(minilm_path):
    fast = BertModel.from_pretrained(minilm_path)
    reference = BertModel.from_pretrained(minilm_path)
    reference.use_fast = False
    tokenizer = minibert.BertTokenizer.from_pretrained(minilm_path)
    texts = ["Packing sequences removes the work spent on padding.", "Short.",
             "A much longer sentence, one that runs well past thirty-two word pieces so that the batched BLAS "
             "attention path is used for it rather than the in-kernel one, which handles the short ones."]
    compare(fast, reference, "all-MiniLM-L6-v2", **tokenizer(texts, padding=True, return_tensors="np"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_padding_anywhere_is_packed(dtype):
    """Left padding and holes: each row's real positions are packed, in order, with their own position ids."""
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    weights = random_weights(RANDOM_CONFIGS["mini"])
    ids = np.random.default_rng(0).integers(0, config.vocab_size, (3, 40))
    holes = np.ones((3, 40), dtype=np.int64)
    holes[0, 5:9], holes[1, 30:], holes[2, 1::3] = 0, 0, 0
    compare(*models(config, weights, dtype), f"{dtype}, holes", input_ids=ids, attention_mask=holes)
    left = prefix_mask([40, 17, 3], 40)[:, ::-1].copy()
    no_pooler = {k: v for k, v in weights.items() if not k.startswith("pooler")}  # as the masked-LM head's encoder
    compare(*models(config, no_pooler, dtype), f"{dtype}, left padding, no pooler", input_ids=ids, attention_mask=left)


def test_other_masks_and_attention_maps_use_the_reference_path():
    config = BertConfig.from_dict(RANDOM_CONFIGS["tiny"])
    fast, reference = models(config, random_weights(RANDOM_CONFIGS["tiny"]), "float32")
    ids = np.array([[5, 6, 7, 8], [9, 10, 11, 12]])
    for mask in ([[0, 1, 1, 1], [1, 1, 1, 1]],  # left padding: the pooler reads position 0, a padding position
                 [[1, 1, 1, 1], [0, 0, 0, 0]]):  # a row without a token
        out, expected = fast(ids, attention_mask=np.array(mask)), reference(ids, attention_mask=np.array(mask))
        np.testing.assert_array_equal(out.last_hidden_state, expected.last_hidden_state)
        np.testing.assert_array_equal(out.pooler_output, expected.pooler_output)
    with_maps = fast(ids, output_attentions=True)
    np.testing.assert_array_equal(with_maps.last_hidden_state, reference(ids).last_hidden_state)
    assert len(with_maps.attentions) == config.num_hidden_layers


@pytest.mark.parametrize("padded", [False, True])
def test_outputs_do_not_alias_the_reused_buffers(padded):
    """The fast path computes in buffers it keeps between calls: what it returns must be copies."""
    config = BertConfig.from_dict(RANDOM_CONFIGS["tiny"])
    fast, _ = models(config, random_weights(RANDOM_CONFIGS["tiny"]), "float32")
    rng = np.random.default_rng(0)
    mask = prefix_mask([5, 3], 5) if padded else np.ones((2, 5), dtype=np.int64)
    first = fast(rng.integers(0, config.vocab_size, (2, 5)), attention_mask=mask, output_hidden_states=True)
    kept = [first.last_hidden_state.copy(), first.pooler_output.copy(), *(h.copy() for h in first.hidden_states)]
    fast(rng.integers(0, config.vocab_size, (2, 5)), attention_mask=mask, output_hidden_states=True)
    for before, after in zip(kept, [first.last_hidden_state, first.pooler_output, *first.hidden_states]):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("lengths", [[5], [7, 3, 2], [9], [1]])
def test_nothing_is_read_from_the_reused_buffers(lengths):
    """GEMMs run on a row count rounded up past the tokens (gemm_rows), and buffers carry over between
    calls: poisoning every buffer with NaN before a call must not change a single output bit."""
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    fast, _ = models(config, random_weights(RANDOM_CONFIGS["mini"]), "float32")
    ids = np.random.default_rng(0).integers(0, config.vocab_size, (len(lengths), max(lengths)))
    inputs = {"input_ids": ids, "attention_mask": prefix_mask(lengths, max(lengths))}
    clean = fast(**inputs, output_hidden_states=True)
    for buffer in fast.fast._buffers.values():
        buffer[:] = np.nan
    poisoned = fast(**inputs, output_hidden_states=True)
    for a, b in zip([clean.last_hidden_state, clean.pooler_output, *clean.hidden_states],
                    [poisoned.last_hidden_state, poisoned.pooler_output, *poisoned.hidden_states]):
        np.testing.assert_array_equal(a, b)


def test_calls_from_several_threads_give_the_sequential_results():
    """One model shared by a threaded server: calls share the fast path's buffers, so they must not overlap
    (without the lock, 309 of 400 such outputs came out wrong)."""
    import threading

    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    fast, _ = models(config, random_weights(RANDOM_CONFIGS["mini"]), "float32")
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, config.vocab_size, (1, length)) for length in (7, 33, 64, 128)]
    expected = [fast(ids).last_hidden_state for ids in inputs]
    wrong = []

    def calls(i):
        for _ in range(25):
            if not np.array_equal(fast(inputs[i]).last_hidden_state, expected[i]):
                wrong.append(i)

    threads = [threading.Thread(target=calls, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_long_runs_are_cut_to_bound_the_score_buffer(monkeypatch):
    """SCORES_LIMIT caps the [n, A, L, L] score block a model keeps; cut runs give the reference's numbers."""
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    heads = config.num_attention_heads
    monkeypatch.setattr(encoder, "SCORES_LIMIT", 2 * heads * 24 * 24)  # two 24-token sequences per block
    assert attention_plan(np.arange(5) * 24, np.full(5, 24), heads)[3] == [(0, 2, 24), (48, 2, 24), (96, 1, 24)]
    assert attention_plan(np.array([0]), np.array([40]), heads)[3] == [(0, 1, 40)]  # one sequence over the cap
    lengths = [24] * 5 + [40, 9]
    ids = np.random.default_rng(0).integers(0, config.vocab_size, (len(lengths), 40))
    for dtype in ("float32", "float64"):
        fast, reference = models(config, random_weights(RANDOM_CONFIGS["mini"]), dtype)
        compare(fast, reference, "runs cut by SCORES_LIMIT", input_ids=ids, attention_mask=prefix_mask(lengths, 40))
        assert fast.fast._buffers["scores"].size <= 2 * heads * 40 * 40


def unique_storage_bytes(arrays) -> int:
    """Bytes of the distinct memory blocks behind `arrays` (views count toward the array they view)."""
    owners = {}
    for a in arrays:
        while a.base is not None:
            a = a.base
        owners[id(a)] = a.nbytes
    return sum(owners.values())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_what_the_fast_path_holds_besides_the_model_s_weights(dtype):
    """The fast path computes from the model's arrays. float64: besides its work buffers it holds no array;
    float32: besides them, one copy of the encoder's matrices and the pooler's, packed into panels (one array),
    and the encoder's vectors lie side by side in one array, of which the model's are views."""
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    model = BertModel(config, random_weights(RANDOM_CONFIGS["mini"]), dtype=dtype)
    model(np.ones((2, 8), dtype=np.int64))  # fills the buffers
    parameters = list(minibert.loading.weights.flatten(model.weights).values())
    held = [a for a in vars(model.fast).values() if isinstance(a, np.ndarray)]
    held += [a for a in minibert.loading.weights.flatten(model.fast.weights).values()]
    held += [a for layer in model.fast.layers for pair in (*layer["qkv"], layer["o"], layer["ffn_in"], layer["ffn_out"])
             for a in pair]  # (matrix, bias) pairs
    panels = [model.fast.compiled[0]] if dtype == "float32" else []  # every matrix's panels, the pooler's last
    packed = [a for name, a in minibert.loading.weights.flatten(model.weights).items()
              if name.endswith("dense.weight") or ".self." in name and name.endswith(".weight")] if panels else []
    assert len(packed) == (len(model.fast.compiled[1]) - 1 if panels else 0) == (
        6 * config.num_hidden_layers + 1 if dtype == "float32" else 0)
    if dtype == "float32":
        vectors = model.fast.compiled[2]
        assert all(a.base is vectors for name, a in minibert.loading.weights.flatten(model.weights).items()
                   if name.startswith("encoder.") and a.ndim == 1)
    panel_bytes = sum(4 * math.prod(gemm.pack_shape(w.shape[1], w.shape[0])) for w in packed) if panels else 0
    one_copy = sum(a.nbytes for a in parameters)
    held_bytes = unique_storage_bytes(parameters + held + panels)
    print(f"weights {one_copy} bytes, panels {panel_bytes}; model + fast path hold {held_bytes}")
    # each array sits in a block up to one cache line larger, for its alignment (fast/aligned.py)
    assert model.fast.weights is model.weights
    assert one_copy + panel_bytes <= held_bytes <= one_copy + panel_bytes + CACHE_LINE * (len(parameters) + len(panels))


def test_in_place_changes_reach_the_fast_path():
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    fast, reference = models(config, random_weights(RANDOM_CONFIGS["mini"]), "float64")
    ids = np.random.default_rng(0).integers(0, config.vocab_size, (3, 20))
    mask = prefix_mask([20, 7, 13], 20)
    before = fast(ids, attention_mask=mask).last_hidden_state
    for model in (fast, reference):  # as an optimizer step does, in place, without weights_changed()
        layer = model.weights["encoder"]["layer"][1]
        layer["attention"]["self"]["key"]["weight"] *= 1.5
        layer["attention"]["self"]["value"]["bias"] += 0.1
        layer["output"]["dense"]["weight"] -= 0.01
        model.weights["pooler"]["dense"]["weight"][:, :3] = 0
    after = compare(fast, reference, "after in-place changes", input_ids=ids, attention_mask=mask)
    assert np.abs(after.last_hidden_state - before).max() > 1e-3


def test_packed_weights_are_read_only_until_made_writeable():
    """float32 reads the encoder's and the pooler's weights as packed panels. Their arrays are read-only, so
    that an in-place change cannot leave the panels stale unnoticed; one made writeable and changed in place
    is packed again at the next call; weights_changed() makes the arrays packed until then writeable again."""
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    weights = random_weights(RANDOM_CONFIGS["mini"])
    fast, reference = (BertModel(config, {k: v.copy() for k, v in weights.items()}, dtype="float32") for _ in "ab")
    reference.use_fast = False
    ids = np.random.default_rng(1).integers(0, config.vocab_size, (2, 12))
    before = fast(ids).last_hidden_state
    key = fast.weights["encoder"]["layer"][1]["attention"]["self"]["key"]["weight"]
    with pytest.raises(ValueError, match="read-only"):
        key *= 1.5
    for model in (fast, reference):
        for dense in (model.weights["encoder"]["layer"][1]["attention"]["self"]["key"],
                      model.weights["encoder"]["layer"][0]["intermediate"]["dense"], model.weights["pooler"]["dense"]):
            dense["weight"].flags.writeable = True
            dense["weight"] *= 1.5
    after = compare(fast, reference, "after in-place changes to writeable weights", input_ids=ids)
    assert np.abs(after.last_hidden_state - before).max() > 1e-3
    assert not key.flags.writeable  # packed again, and read-only again
    fast.weights["encoder"]["layer"][1]["attention"]["self"]["key"]["weight"] = key.copy()
    fast.weights_changed()
    assert key.flags.writeable  # no longer the model's: the caller's to change


def test_adamw_steps_reach_the_float32_fast_path():
    """AdamW updates the read-only packed weights in place (making them writeable), and the next fast call
    packs them again: it gives what the reference path gives on the updated weights."""
    from minibert.train import AdamW
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    model = BertModel(config, random_weights(RANDOM_CONFIGS["mini"]), dtype="float32")
    ids = np.random.default_rng(2).integers(0, config.vocab_size, (3, 10))
    before = model(ids).last_hidden_state
    params = model.state_dict()
    grads = {name: np.random.default_rng(3).standard_normal(p.shape).astype(np.float32) for name, p in params.items()}
    AdamW(params, lr=1e-2).step(grads)
    after = model(ids).last_hidden_state
    model.use_fast = False
    reference = model(ids).last_hidden_state
    print(f"after an AdamW step: fast vs reference {np.abs(after - reference).max():.1e}")
    assert np.abs(after - reference).max() <= BOUND["float32"] and np.abs(after - before).max() > 1e-3


def test_replaced_weights_reach_the_fast_path_after_weights_changed():
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    fast, reference = models(config, random_weights(RANDOM_CONFIGS["mini"]), "float64")
    ids = np.random.default_rng(0).integers(0, config.vocab_size, (2, 24))
    query = fast.weights["encoder"]["layer"][0]["attention"]["self"]["query"]
    for model in (fast, reference):
        replaced = model.weights["encoder"]["layer"][0]["attention"]["self"]["query"]
        replaced["weight"] = np.full_like(query["weight"], 0.02)
        replaced["bias"] = np.linspace(-1, 1, query["bias"].size)
        model.weights_changed()
    compare(fast, reference, "after replacing the query weight and bias", input_ids=ids)
    assert query["weight"].dtype == np.float64 and query["weight"].T.flags.c_contiguous  # stored as the model's own
    query["weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"encoder\.layer\.0\.attention\.self\.query\.weight .*shape \[3, 3\]"):
        fast.weights_changed()


def test_float32_vectors_lie_in_one_array_that_replacements_and_in_place_changes_reach():
    """The float32 region reads the encoder's vectors from one array, of which the model's are views. A vector
    replaced in the dict (then weights_changed()) is copied into its place there, so that a view taken
    before, as an optimizer holds one, stays the model's: both changes reach the fast path."""
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    fast, reference = models(config, random_weights(RANDOM_CONFIGS["mini"]), "float32")
    ids = np.random.default_rng(0).integers(0, config.vocab_size, (2, 24))
    before = fast(ids).last_hidden_state
    held = fast.state_dict()["encoder.layer.0.attention.self.query.bias"]
    for model in (fast, reference):
        query = model.weights["encoder"]["layer"][0]["attention"]["self"]["query"]
        query["bias"] = np.linspace(-1, 1, query["bias"].size, dtype=np.float32)
        model.weights_changed()
    after = compare(fast, reference, "after replacing a bias", input_ids=ids)
    assert np.abs(after.last_hidden_state - before).max() > 1e-3
    for bias in (held, reference.weights["encoder"]["layer"][0]["attention"]["self"]["query"]["bias"]):
        bias += 0.5  # in place: through the view taken before the replacement, in the fast model
    changed = compare(fast, reference, "after an in-place change through a view taken before", input_ids=ids)
    assert np.abs(changed.last_hidden_state - after.last_hidden_state).max() > 1e-3


def test_gemm_rows():
    assert [gemm_rows(t) for t in (1, 2, 7, 8, 9, 10, 16, 17, 30, 127, 129)] == [1, 8, 8, 8, 9, 16, 16,
                                                                                 17, 32, 128, 129]


def test_heads_run_on_the_fast_path():
    directory = minibert.BertForSequenceClassification
    from tests.fixtures.cases import FIXTURES
    model = directory.from_pretrained(FIXTURES / "heads" / "sequence-single")
    ids = np.array([[2, 10, 11, 3], [2, 12, 3, 0]])
    mask = prefix_mask([4, 3], 4)
    fast_logits = model(ids, attention_mask=mask).logits
    model.bert.use_fast = False
    np.testing.assert_allclose(fast_logits, model(ids, attention_mask=mask).logits, rtol=0, atol=1e-5)


def other_threads_cpu_seconds() -> float:
    """CPU time so far of this process's threads other than the main one (Linux /proc)."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        if int(task) != os.getpid():
            with open(f"/proc/self/task/{task}/stat") as f:
                total += sum(int(t) for t in f.read().rsplit(")", 1)[1].split()[11:13])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def busy_after(call) -> float:
    """Seconds of CPU other threads burn in the 0.3 s after call(): a BLAS call leaves OpenBLAS's threads
    spinning there, against the next forward's threads."""
    call()
    before = other_threads_cpu_seconds()
    time.sleep(0.3)
    return other_threads_cpu_seconds() - before


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads threads' CPU time from Linux /proc")
def test_no_thread_spins_after_a_forward():
    """Neither the pooler nor a task head calls BLAS on the fast path (gemm.dense), float32 or int8: no
    thread keeps a core busy after a call."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((32, 256)).astype(np.float32), rng.standard_normal((256, 256)).astype(np.float32)
    blas = busy_after(lambda: x @ w)  # the probe must see a BLAS call's spinning, or this test sees nothing
    if blas < 0.05:
        pytest.skip(f"BLAS runs on one thread here (its threads burned {blas:.2f} s after a call)")
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    weights = random_weights(RANDOM_CONFIGS["mini"])
    ids = rng.integers(0, config.vocab_size, (32, 32))  # the pooler [32, 256] x [256, 256], BLAS would thread
    with pytest.warns(UserWarning, match="newly initialised"):
        tagger = minibert.BertForTokenClassification(config, weights)
    for label, model in [("float32 pooler", BertModel(config, weights)),
                         ("int8 pooler", BertModel(config, weights).quantize("int8")),
                         ("token classifier", tagger)]:
        model(ids)  # compiled before the measured call
        busy = busy_after(lambda: model(ids))
        print(f"{label}: other threads busy {busy:.3f} s after a call (after a BLAS call: {blas:.3f} s)")
        assert busy < 0.05


def test_thread_count():
    set_num_threads(1)
    set_num_threads(2)
    with pytest.raises(ValueError, match="positive integer"):
        set_num_threads(0)


def test_the_planned_thread_count_follows_set_num_threads_per_thread():
    """threads.num_threads(), the count a forward plans for, is the calling thread's set_num_threads count
    (a new thread: Numba's default). A count set on Numba directly is not seen, and the forward still gives
    the same numbers on the threads Numba runs."""
    import threading

    import numba

    from minibert.fast.threads import num_threads
    default = numba.config.NUMBA_NUM_THREADS
    seen = []
    try:
        set_num_threads(1)
        worker = threading.Thread(target=lambda: seen.append(num_threads()))
        worker.start()
        worker.join()
        assert num_threads() == 1 and seen == [default]
    finally:
        set_num_threads(default)
    assert num_threads() == default
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    ids = np.random.default_rng(4).integers(0, config.vocab_size, (3, 40))
    fast, reference = models(config, random_weights(RANDOM_CONFIGS["mini"]), "float32")
    planned = fast(ids).last_hidden_state
    try:
        numba.set_num_threads(1)  # not through minibert: the forward still plans for `default` threads
        one = compare(fast, reference, "Numba's count set directly", input_ids=ids).last_hidden_state
    finally:
        numba.set_num_threads(default)
    np.testing.assert_array_equal(one, planned)


def test_chains_give_the_numbers_of_phases(monkeypatch):
    """One group of enough tokens runs each layer's work after its attention as chains of a thread's rows
    (layers.chains): against the reference, and the same bits as phase by phase, on one long sequence and on
    a padded batch that stays one group."""
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    fast, reference = models(config, random_weights(RANDOM_CONFIGS["mini"]), "float32")
    rng = np.random.default_rng(5)
    cases = [{"input_ids": rng.integers(0, config.vocab_size, (1, 203))},
             {"input_ids": rng.integers(0, config.vocab_size, (3, 70)), "attention_mask": prefix_mask([70, 41, 9], 70)}]
    chains = layers.chains
    for inputs in cases:
        lengths = np.sort(inputs.get("attention_mask", np.ones_like(inputs["input_ids"])).sum(axis=1))[::-1]
        assert chains(lengths.sum(), 2) and len(layers.groups(lengths, 2, 256, 1024)) == 2  # one group, chains
        with_chains = compare(fast, reference, f"chains, {lengths.sum()} tokens", **inputs)
        monkeypatch.setattr(layers, "chains", lambda *_: False)
        phases = fast(**inputs, output_hidden_states=True)
        monkeypatch.setattr(layers, "chains", chains)
        for a, b in zip(with_chains.hidden_states, phases.hidden_states):
            np.testing.assert_array_equal(a, b)


def test_one_thread_runs_every_item():
    """The float32 forward shares its work by claiming items (fast/tasks.py): on one thread, that thread
    claims them all, with the same numbers."""
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    ids = np.random.default_rng(3).integers(0, config.vocab_size, (3, 40))
    mask = prefix_mask([40, 17, 5], 40)
    fast, reference = models(config, random_weights(RANDOM_CONFIGS["mini"]), "float32")
    two = fast(ids, attention_mask=mask).last_hidden_state
    try:
        set_num_threads(1)
        one = compare(fast, reference, "one thread", input_ids=ids, attention_mask=mask).last_hidden_state
    finally:
        set_num_threads(2)
    print(f"one thread vs two: {np.abs(one - two).max():.1e}")
    np.testing.assert_array_equal(one, two)  # each item is computed alike whichever thread claims it


@pytest.mark.parametrize("cut", ["one group", "each sequence", "uneven"])
def test_every_grouping_gives_the_same_numbers(monkeypatch, cut):
    """encode's two schedules (layers.groups): threads sharing each phase over the whole batch, or each
    thread taking whole groups of sequences through every layer. A token's numbers do not depend on the
    schedule nor on where its sequence falls, bit for bit, and match the reference path."""
    config = BertConfig.from_dict(RANDOM_CONFIGS["mini"])
    fast, reference = models(config, random_weights(RANDOM_CONFIGS["mini"]), "float32")
    rng = np.random.default_rng(4)
    ids, types = rng.integers(0, config.vocab_size, (5, 40)), rng.integers(0, 2, (5, 40))
    mask = prefix_mask([33, 40, 5, 40, 17], 40)
    inputs = dict(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    monkeypatch.setattr(layers, "groups", lambda lengths, *_: np.array([0, len(lengths)]))
    expected = fast(**inputs)
    bounds = {"one group": [0, 5], "each sequence": [0, 1, 2, 3, 4, 5], "uneven": [0, 3, 4, 5]}[cut]
    monkeypatch.setattr(layers, "groups", lambda *_: np.array(bounds))
    got = compare(fast, reference, cut, input_ids=ids, attention_mask=mask, token_type_ids=types)
    for a, b in zip(got.hidden_states + (got.pooler_output,), expected.hidden_states + (expected.pooler_output,)):
        np.testing.assert_array_equal(a, b)


def test_groups():
    """Whole rounds of groups of about GROUP_ROWS[1] tokens with equal shares of the work; one group when a
    thread would get too few tokens, or uneven work."""
    def groups(lengths, threads=2):
        return layers.groups(np.array(lengths), threads, 256, 1024).tolist()

    assert groups([128] * 32) == list(range(0, 33, 2))  # 4096 tokens: 16 groups of 256
    assert groups([512] * 8) == list(range(9))
    assert groups([128] * 32, threads=1) == list(range(0, 33, 2))  # one thread: the same groups, one after another
    assert groups([64, 64]) == [0, 1, 2]  # a thread's GROUP_ROWS[0] tokens
    assert groups([64, 63]) == [0, 2] and groups([128]) == [0, 1] and groups([7] * 16) == [0, 16]
    assert groups([128] * 3) == [0, 3]  # two groups to one thread, one to the other: uneven
    assert len(groups([128] * 3, threads=1)) == 3  # with one thread, never uneven
    lengths = np.sort(np.random.default_rng(0).integers(5, 129, 40))[::-1]
    bounds = groups(lengths)
    work = lengths * (4 * 256 * 256 + 2 * 256 * 1024 + 2 * 256 * lengths)
    shares = np.add.reduceat(work, bounds[:-1])
    assert bounds[0] == 0 and bounds[-1] == 40 and np.all(np.diff(bounds) > 0) and (len(bounds) - 1) % 2 == 0
    assert shares.max() / shares.min() < 1.5, shares


FORWARD_ON_TAILS = """
import numpy as np
from minibert import BertConfig, BertModel, init_weights
from minibert.fast import layers, simd
config = BertConfig.from_dict(dict(hidden_size=72, num_attention_heads=3, num_hidden_layers=2,
                                   intermediate_size=70, vocab_size=60, max_position_embeddings=64))
weights = init_weights(config, seed=0)
fast, reference = BertModel(config, weights), BertModel(config, weights)
reference.use_fast = False
lengths = np.array([40, 1, 17, 9, 33])
ids = np.random.default_rng(0).integers(0, 60, (5, 40))
mask = (np.arange(40)[None] < lengths[:, None]).astype(np.int64)
a = fast(ids, attention_mask=mask).last_hidden_state
b = reference(ids, attention_mask=mask).last_hidden_state
layers.groups = lambda lengths, *_: np.arange(len(lengths) + 1)  # each sequence a group of its own
grouped = fast(ids, attention_mask=mask).last_hidden_state
print(simd.host().name, simd.host().width, float(np.abs(a - b)[mask.astype(bool)].max()), np.array_equal(a, grouped))
"""


@pytest.mark.slow
def test_generic_target_forward():
    """The float32 forward as NUMBA_CPU_NAME=generic builds it (4-lane vectors, no FMA), against the
    reference, on tails of every kind: head size 24 (attention panels padded), FFN width 70 (a narrower
    last panel), sequences of 1 to 40 tokens (row tails; short and long attention); and with each sequence
    a group of its own (layers.groups), the same bit for bit."""
    name, width, worst, same = run_for_cpu(FORWARD_ON_TAILS, timeout=1200).split()
    print(f"generic target ({name}, {width} lanes): fast vs reference {float(worst):.1e}; groups the same: {same}")
    assert (name, width) == ("generic", "4") and float(worst) <= BOUND["float32"] and same == "True"


@pytest.mark.slow
def test_forward_with_the_other_vector_width(tmp_path):
    """The float32 forward with the kernels of the other x86 width on this CPU, 16 lanes (AVX-512's 8 × 32
    tiles) on a CPU without AVX-512, else 8 (AVX2's 6 × 16), on the tails above: so that each width's tiles,
    panels and attention buffers are checked whichever CPU runs the tests."""
    lanes = 8 if simd.host().width == 16 else 16
    name, width, worst, same = run_with_lanes(FORWARD_ON_TAILS, lanes, tmp_path, timeout=1200).split()
    print(f"{lanes} lanes on {name}: fast vs reference {float(worst):.1e}; groups the same: {same}")
    assert width == str(lanes) and float(worst) <= BOUND["float32"] and same == "True"


DEBUG_MODE = """
import numpy as np
import minibert
from minibert import BertConfig
from minibert.train import value_and_grad
config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                    num_labels=2)
model = minibert.BertForSequenceClassification(config, minibert.init_weights(config, 0), seed=1)
default = model.bert.use_fast
model.bert.use_fast = False  # the reference path, in both processes
ids = np.random.default_rng(0).integers(0, 99, (3, 7))
mask = (np.arange(7) < np.array([[7], [5], [2]])).astype(np.int64)
loss, grads = value_and_grad(model, {"input_ids": ids, "attention_mask": mask}, np.array([0, 1, 1]))
np.savez(OUTPUT, default=default, logits=model(ids, attention_mask=mask).logits, loss=loss, **grads)
"""


def test_numba_debugging_mode_runs_the_reference_path(tmp_path):
    """Under NUMBA_DISABLE_JIT=1 (Numba's debugging mode: every kernel runs as Python, where the fast path's SIMD
    intrinsics cannot) models default to the reference path, and it gives the logits and gradients of the
    reference path in a normal process, bit for bit."""
    runs = {}
    for name, disable in (("debug", "1"), ("normal", "0")):
        output = tmp_path / f"{name}.npz"
        run_for_cpu(f"OUTPUT = {str(output)!r}\n{DEBUG_MODE}", "host", NUMBA_DISABLE_JIT=disable)
        runs[name] = np.load(output)
    debug, normal = runs["debug"], runs["normal"]
    tensors = [k for k in debug.files if k != "default"]
    print(f"debug mode: use_fast {debug['default']} by default (normal: {normal['default']}); {len(tensors)} "
          f"tensors, max abs diff {max(np.abs(debug[k] - normal[k]).max() for k in tensors):.1e}")
    assert not debug["default"] and normal["default"]
    assert len(tensors) > 30 and all(np.array_equal(debug[k], normal[k]) for k in tensors)
