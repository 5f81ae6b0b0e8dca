"""The float32 encoder layers as one compiled function and one parallel region (no BLAS, no Python between).

The embeddings of the packed tokens x [T, H] (fast/encoder.py), then per layer the phases of nn.bert's
layer, each a list of items the threads claim (fast/tasks.py), each waiting for the one before:

    x = LayerNorm(E_word[id] + E_type[type] + E_pos[pos])         rows                          (rows)

    qkv = x [W_q^T | W_k^T | W_v^T] + [b_q | b_k | b_v]          GEMMs, bias in the epilogue    (row block × panels)
    context = softmax(q kᵀ / √d) v   per sequence and head        plain loops up to SHORT tokens,
                                                                  else the GEMM micro-kernel    (sequence × head)
    x = LayerNorm(context W_o^T + b_o + x)                        GEMM; then rows                (row block)
    x = LayerNorm(GELU(x W_1^T + b_1) W_2^T + b_2 + x)            GEMM, GELU in its epilogue;
                                                                  GEMM; then rows

and after the last layer the pooler, tanh(x[first tokens] W_p^T + b_p).
Waking Numba's pool once per forward instead of once per GEMM or kernel is what this buys at small
inputs, where a layer's work is a few hundred microseconds; OpenBLAS is not called, so no BLAS thread
spins against the region's threads.

A batch of enough tokens is first cut into groups of whole sequences (groups()): then each thread takes
whole groups, and runs the phases above on a group's rows alone (its own counters, no other thread to
wait for), so that a group's activations stay in that thread's caches from phase to phase. Each row is
computed by the same kernels in the same order either way, so a token's numbers do not depend on the
schedule.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from . import gemm, kernels
from .gemm import BIAS, BIAS_GELU, FUSED, KC, MR, NONE, WIDTH
from .kernels import SHORT
from .softmax import softmax_exp
from .tasks import claim, finish, wait

NR = 2 * WIDTH
LN_ROWS = 16  # tokens per item of a phase over rows (the embeddings, a LayerNorm; row_items)
PHASES_PER_LAYER = 9  # Q, K, V, attention, output, LayerNorm, FFN in, FFN out, LayerNorm
VECTORS_PER_LAYER = 10  # b_q, b_k, b_v, b_o, γ₁, β₁, b_1, b_2, γ₂, β₂ (vector_slots)
GROUP_ROWS = 64, 256  # tokens of a group (groups): at least, and about at most (benchmarks/bench_groups.py)
BALANCE = 1.1  # groups only when the busiest thread's share is at most this times an even share
CHAIN_ROWS = 48  # tokens a thread from which one group runs each layer's work after attention as chains (chains)


def groups(lengths: np.ndarray, threads: int, hidden: int, intermediate: int) -> np.ndarray:
    """How encode shares the sequences (lengths [N], longest first) between `threads` threads: the
    boundaries [G + 1] of G groups of consecutive sequences.

    One group: the threads share each phase of each layer. Several: each thread takes whole groups, each
    through the embeddings and every layer alone. Then a group's activations stay in the thread's caches
    from one phase to the next, where a phase over the whole batch writes them to memory and reads them
    back, and no thread waits for another between phases; but each group reads every weight for its own
    rows only. So: groups of about GROUP_ROWS[1] tokens, a multiple of `threads` of them cut at equal
    shares of the work (Σ L · (4H² + 2HI + 2HL) multiply-adds a layer), and one group when a thread would
    get fewer than GROUP_ROWS[0] tokens or the threads' shares (claimed in order, each by the first free
    thread) would be uneven by more than BALANCE."""
    N = len(lengths)
    one = np.array([0, N], dtype=np.int64)
    if N < threads:  # checked first: a single sequence, the common small call, needs no sum
        return one
    T = int(lengths.sum())
    if T < threads * GROUP_ROWS[0]:
        return one
    count = threads * -(-T // (threads * GROUP_ROWS[1]))  # groups: whole rounds of threads
    each = lengths * (4 * hidden * hidden + 2 * hidden * intermediate + 2 * hidden * lengths)  # per layer
    work = np.cumsum(each)  # work[i]: sequences 0 to i
    targets = work[-1] * np.arange(1, count) / count
    i = np.searchsorted(work, targets)  # the first sequence whose end reaches each target
    cuts = np.where(work[i] - targets < targets - (work[i] - each[i]), i + 1, i)  # after it or before it
    bounds = np.unique(np.concatenate([[0], cuts, [N]]))
    shares = np.zeros(threads)
    for w in np.add.reduceat(each, bounds[:-1]):  # claimed in order, each by the first free thread
        shares[shares.argmin()] += w
    return bounds.astype(np.int64) if shares.max() <= BALANCE * work[-1] / threads else one


def chains(tokens: int, threads: int) -> bool:
    """Whether one group of `tokens` tokens runs each layer's work after the attention as chains, a thread's
    rows each (_chain_items), rather than phase by phase: with several threads and at least CHAIN_ROWS tokens
    a thread (benchmarks/bench_groups.py)."""
    return threads > 1 and tokens >= CHAIN_ROWS * threads


def buffers(threads: int, hidden: int, intermediate: int, heads: int, longest: int) -> dict[str, tuple]:
    """name -> shape of the per-thread work buffers of encode, for sequences up to `longest` tokens."""
    d = hidden // heads
    padded_length, padded_d = -(-longest // NR) * NR, -(-d // NR) * NR
    return {**gemm.buffers(threads, max(hidden, intermediate, longest)),
            "keys": (threads, d * padded_length), "scores": (threads, longest * padded_length),
            "values": (threads, longest * padded_d), "heads": (threads, longest * padded_d)}


def vector_slots(layer: dict) -> list[tuple[dict, str]]:
    """Where a layer's vectors lie in the model's weights (a layer's nested dict), as (dict, key), in the order
    encode reads them: b_q, b_k, b_v, b_o, γ₁, β₁, b_1, b_2, γ₂, β₂."""
    attention = layer["attention"]
    return [*((attention["self"][name], "bias") for name in ("query", "key", "value")),
            (attention["output"]["dense"], "bias"), (attention["output"]["LayerNorm"], "weight"),
            (attention["output"]["LayerNorm"], "bias"), (layer["intermediate"]["dense"], "bias"),
            (layer["output"]["dense"], "bias"), (layer["output"]["LayerNorm"], "weight"),
            (layer["output"]["LayerNorm"], "bias")]


@numba.njit(cache=True, inline="always")
def layer_weights(panels, panel_bounds, vectors, vector_bounds, layer):
    """Layer `layer`'s matrices' panels (W_q^T, W_k^T, W_v^T, W_o^T, W_1^T, W_2^T) and vectors (layer_vectors):
    views of encode's arrays."""
    m = panel_bounds[6 * layer:6 * layer + 7]
    return ((panels[m[0]:m[1]], panels[m[1]:m[2]], panels[m[2]:m[3]], panels[m[3]:m[4]], panels[m[4]:m[5]],
             panels[m[5]:m[6]]), layer_vectors(vectors, vector_bounds, layer))


@numba.njit(cache=True, inline="always")
def layer_vectors(vectors, vector_bounds, layer):
    """Layer `layer`'s vectors (b_q, b_k, b_v, b_o, γ₁, β₁, b_1, b_2, γ₂, β₂; vector_slots): views of
    `vectors`, vector i at vector_bounds[i] : vector_bounds[i + 1]."""
    v = vector_bounds[VECTORS_PER_LAYER * layer:VECTORS_PER_LAYER * (layer + 1) + 1]
    return (vectors[v[0]:v[1]], vectors[v[1]:v[2]], vectors[v[2]:v[3]], vectors[v[3]:v[4]], vectors[v[4]:v[5]],
            vectors[v[5]:v[6]], vectors[v[6]:v[7]], vectors[v[7]:v[8]], vectors[v[8]:v[9]], vectors[v[9]:v[10]])


@numba.njit(cache=True, parallel=True, error_model="numpy")
def encode(tokens, embedding, panels, panel_bounds, vectors, vector_bounds, num_heads, eps, starts, lengths, order,
           positions, x, qkv, context, projected, intermediate, hidden, pool_weight, pool_bias, first, pooled, groups,
           chains, packed, scratch, tail, keys, scores, values, heads, counters):
    """The embeddings (embed_items), then every layer, over packed tokens x [R, H] float32 (in its first
    T = Σ lengths rows), with sequence s at rows starts[s] : + lengths[s] and token t from position
    positions[t] of the padded batch [B, S], flattened (tokens: its input_ids, token_type_ids and
    position_ids; embedding: the tables and the LayerNorm's γ, β). panels: per layer the panels (gemm.pack)
    of (W_q^T, W_k^T, W_v^T, W_o^T, W_1^T, W_2^T) [in, out], stacked, matrix i at rows panel_bounds[i] :
    panel_bounds[i + 1]; vectors: per layer (b_q, b_k, b_v, b_o, γ₁, β₁, b_1, b_2, γ₂, β₂) (vector_slots)
    back to back, vector i at vector_bounds[i] : vector_bounds[i + 1] (each array argument costs the call
    time to type and unpack, hence one array for each kind). qkv [R, 3H], context and projected [R, H],
    intermediate [R, I]: work arrays. hidden [n, B·S, H] receives the last n of the L + 1 hidden states
    (the embeddings', then each layer's output), token t at row positions[t] (rows of padding are left as
    they are). Then, when pooled has rows, the pooler (pooler_items): pooled[order[s]] = tanh(first[s] W_pᵀ
    + b_p), first[s] = x[starts[s]], pool_weight = W_pᵀ [H, H]'s panels, first [S, H] a work array.
    groups: boundaries [G + 1] of groups of sequences (groups()): with G > 1, each group is one thread's;
    chains: with one group, whether each layer's work after its attention runs as chains (chains()).
    packed ... heads: buffers(), one row per thread; counters: int64 zeros [2 · (1 + PHASES_PER_LAYER ·
    layers + 3)]."""
    for thread in prange(packed.shape[0]):
        _worker(tokens, embedding, panels, panel_bounds, vectors, vector_bounds, num_heads, eps, starts, lengths,
                order, positions, x, qkv, context, projected, intermediate, hidden, pool_weight, pool_bias, first,
                pooled, groups, chains, packed.shape[0], packed[thread], scratch[thread], tail[thread], keys[thread],
                scores[thread], values[thread], heads[thread], counters)


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _worker(tokens, embedding, panels, panel_bounds, vectors, vector_bounds, num_heads, eps, starts, lengths, order,
            positions, x, qkv, context, projected, intermediate, hidden, pool_weight, pool_bias, first, pooled, groups,
            chains, threads, packed_raw, scratch, tail, keys, scores, values, heads, counters):
    """One thread's share of encode: with several groups (groups()), the groups it claims, each through
    every layer alone; with one, every phase's items that it claims (and its chains). Then its share of the
    pooler."""
    packed = gemm.aligned(packed_raw, KC, NR)  # [KC, NR]
    n_layers = (len(panel_bounds) - 1) // 6
    if groups.shape[0] > 2:  # several groups: each thread takes whole groups, through every layer alone
        mine = np.zeros_like(counters[:2 * (1 + PHASES_PER_LAYER * n_layers)])  # the phases of one group
        alone, no_chains = np.int64(1), np.bool_(False)  # typed as the arguments (literals: a second build)
        g, s0, s1, r0, r1 = claim_group(counters, groups, starts, lengths, mine)
        while g < groups.shape[0] - 1:
            _encoder(tokens, embedding, panels, panel_bounds, vectors, vector_bounds, num_heads, eps,
                     starts[s0:s1] - r0, lengths[s0:s1], positions[r0:r1], x[r0:r1], qkv[r0:r1], context[r0:r1],
                     projected[r0:r1], intermediate[r0:r1], hidden, alone, no_chains, packed, scratch, tail, keys,
                     scores, values, heads, mine)
            finish(counters, 0)
            g, s0, s1, r0, r1 = claim_group(counters, groups, starts, lengths, mine)
        wait(counters, 0, groups.shape[0] - 1)
    else:
        _encoder(tokens, embedding, panels, panel_bounds, vectors, vector_bounds, num_heads, eps, starts, lengths,
                 positions, x, qkv, context, projected, intermediate, hidden, threads, chains, packed, scratch, tail,
                 keys, scores, values, heads, counters)
    pooler_items(x, starts, order, pool_weight, pool_bias, first, projected, pooled, threads, counters,
                 1 + PHASES_PER_LAYER * n_layers, packed, scratch, tail)


@numba.njit(cache=True, inline="always")
def claim_group(counters, groups, starts, lengths, mine):
    """Claim the next group of sequences (groups(); phase 0 of counters) for the calling thread: (g, s0, s1, r0,
    r1), group g's sequences s0 : s1 at rows r0 : r1, with mine, the group's own counters, zeroed; g is the
    group count once none is left."""
    g = claim(counters, 0)
    if g >= groups.shape[0] - 1:
        return g, 0, 0, 0, 0
    s0, s1 = groups[g], groups[g + 1]
    mine[:] = 0
    return g, s0, s1, starts[s0], starts[s1 - 1] + lengths[s1 - 1]


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _encoder(tokens, embedding, panels, panel_bounds, vectors, vector_bounds, num_heads, eps, starts, lengths,
             positions, x, qkv, context, projected, intermediate, hidden, threads, chains, packed, scratch, tail, keys,
             scores, values, heads, counters):
    """The embeddings and every layer over the tokens x [T, H] (sequence s at rows starts[s] : + lengths[s]),
    phase after phase, this thread claiming items of each from counters (phases 0 to PHASES_PER_LAYER ·
    layers) alongside `threads` - 1 others; with chains, each layer's work after its attention as
    _chain_items."""
    T = lengths.sum()
    H = x.shape[1]
    scale = np.float32((H // num_heads) ** -0.5)
    no_slot = np.int64(-1)  # typed as the slot argument: a literal -1 would build _layer_norm_items twice
    n_layers = (len(panel_bounds) - 1) // 6
    n = embed_items(tokens, embedding, eps, positions, x[:T], threads, counters, 0, hidden,
                    hidden.shape[0] - n_layers - 1)
    wait(counters, 0, n)
    for layer in range(n_layers):
        phase = 1 + PHASES_PER_LAYER * layer
        (w_q, w_k, w_v, w_o, w_1, w_2), (b_q, b_k, b_v, b_o, g_1, beta_1, b_1, b_2, g_2, beta_2) = layer_weights(
            panels, panel_bounds, vectors, vector_bounds, layer)
        if layer == 0 or not chains:  # with chains, a layer's Q, K, V are the chains' of the layer before
            n_q = _gemm_items(x[:T], w_q, qkv[:T, :H], b_q, BIAS, threads, counters, phase, packed, scratch, tail)
            n_k = _gemm_items(x[:T], w_k, qkv[:T, H:2 * H], b_k, BIAS, threads, counters, phase + 1, packed, scratch,
                              tail)
            n_v = _gemm_items(x[:T], w_v, qkv[:T, 2 * H:], b_v, BIAS, threads, counters, phase + 2, packed, scratch,
                              tail)
            wait(counters, phase, n_q)
            wait(counters, phase + 1, n_k)
            wait(counters, phase + 2, n_v)
        n = _attention_items(qkv, starts, lengths, num_heads, scale, context, counters, phase + 3, packed, scratch,
                             tail, keys, scores, values, heads)
        wait(counters, phase + 3, n)
        if chains:
            n = _chain_items(panels, panel_bounds, vectors, vector_bounds, layer, eps, T, x, qkv, context, projected,
                             intermediate, hidden, positions, threads, counters, phase + 4, packed, scratch, tail)
            wait(counters, phase + 4, n)
            continue
        n = _gemm_items(context[:T], w_o, projected[:T, :], b_o, NONE, threads, counters, phase + 4, packed, scratch,
                        tail)
        wait(counters, phase + 4, n)
        n = _layer_norm_items(projected, b_o, x, g_1, beta_1, eps, T, threads, counters, phase + 5, hidden,
                              no_slot, positions)
        wait(counters, phase + 5, n)
        n = _gemm_items(x[:T], w_1, intermediate[:T, :], b_1, BIAS_GELU, threads, counters, phase + 6, packed,
                        scratch, tail)
        wait(counters, phase + 6, n)
        n = _gemm_items(intermediate[:T], w_2, projected[:T, :], b_2, NONE, threads, counters, phase + 7, packed,
                        scratch, tail)
        wait(counters, phase + 7, n)
        slot = layer - n_layers + hidden.shape[0]  # hidden's row for this layer's output (< 0: none)
        n = _layer_norm_items(projected, b_2, x, g_2, beta_2, eps, T, threads, counters, phase + 8, hidden, slot,
                              positions)
        wait(counters, phase + 8, n)


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _chain_items(panels, panel_bounds, vectors, vector_bounds, layer, eps, T, x, qkv, context, projected,
                 intermediate, hidden, positions, threads, counters, phase, packed, scratch, tail):
    """Claim and compute layer `layer`'s work after its attention as chains, one per thread: rows r0 : r1 of
    the T tokens, each row through

        x = LayerNorm(context W_o^T + b_o + x)                         GEMM on the rows; LayerNorm rows
        x = LayerNorm(GELU(x W_1^T + b_1) W_2^T + b_2 + x)            GEMM, GEMM; LayerNorm rows
        qkv = x [W_q^T | W_k^T | W_v^T] + [b_q | b_k | b_v]            the next layer's (none after the last)

    with no wait between: every step reads only the chain's own rows, so the threads meet only at the next
    attention, which reads every row, where phase by phase they meet seven times. Each thread reads every
    weight for its rows, so chains pay only with enough rows a thread (chains()). Each row goes through the
    same kernels as phase by phase, so the same numbers."""
    H = x.shape[1]
    n_layers = (len(panel_bounds) - 1) // 6
    (_, _, _, w_o, w_1, w_2), (_, _, _, b_o, g_1, beta_1, b_1, b_2, g_2, beta_2) = layer_weights(
        panels, panel_bounds, vectors, vector_bounds, layer)
    last = layer + 1 == n_layers
    (w_q, w_k, w_v, _, _, _), (b_q, b_k, b_v, _, _, _, _, _, _, _) = layer_weights(
        panels, panel_bounds, vectors, vector_bounds, layer if last else layer + 1)
    rows = -(-T // (threads * MR)) * MR  # a chain's rows: a thread's share, in whole tiles
    items = -(-T // rows)
    slot = layer - n_layers + hidden.shape[0]  # hidden's row for this layer's output (< 0: none)
    item = claim(counters, phase)
    while item < items:
        r0, r1 = item * rows, min(T, (item + 1) * rows)
        _gemm_rows(context, w_o, projected, b_o, NONE, r0, r1, packed, scratch, tail)
        layer_norm_rows(projected, b_o, x, g_1, beta_1, eps, r0, r1, hidden, -1, positions)
        _gemm_rows(x, w_1, intermediate, b_1, BIAS_GELU, r0, r1, packed, scratch, tail)
        _gemm_rows(intermediate, w_2, projected, b_2, NONE, r0, r1, packed, scratch, tail)
        layer_norm_rows(projected, b_2, x, g_2, beta_2, eps, r0, r1, hidden, slot, positions)
        if not last:
            for i, (w, b) in enumerate(((w_q, b_q), (w_k, b_k), (w_v, b_v))):
                _gemm_rows(x, w, qkv[:, i * H:(i + 1) * H], b, BIAS, r0, r1, packed, scratch, tail)
        finish(counters, phase)
        item = claim(counters, phase)
    return items


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def embed_items(tokens, embedding, eps, positions, x, threads, counters, phase, hidden, slot):
    """Claim and compute items of the embeddings, row_items' tokens each: x[t] = LayerNorm(E_word[id] +
    E_type[type] + E_pos[pos]) (kernels.embed_row), id, type and pos read at position positions[t] of the
    padded batch from tokens = (input_ids [B, S], token_type_ids [B, S], position_ids [B, S] or [1, S]);
    embedding = (E_word, E_pos, E_type, γ, β). When slot ≥ 0, row t is also copied to hidden[slot,
    positions[t]]."""
    input_ids, token_type_ids, position_ids = tokens
    word, position, token_type, gamma, beta = embedding
    S = input_ids.shape[1]
    T = x.shape[0]
    rows, items = row_items(T, threads)
    item = claim(counters, phase)
    while item < items:
        for t in range(item * rows, min(T, (item + 1) * rows)):
            b, i = positions[t] // S, positions[t] % S
            kernels.embed_row(word[input_ids[b, i]], token_type[token_type_ids[b, i]],
                              position[position_ids[b % position_ids.shape[0], i]], gamma, beta, eps, x[t])
            if slot >= 0:
                kernels.copy_row(x[t], hidden[slot, positions[t]])
        finish(counters, phase)
        item = claim(counters, phase)
    return items


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def pooler_items(x, starts, order, pool_weight, pool_bias, first, z, pooled, threads, counters, phase, packed, scratch,
                 tail):
    """Phases `phase` to `phase` + 2, when pooled [S, H] has rows: first[s] = x[starts[s]] (one item), the
    pooler's dense layer z[s] = first[s] W_pᵀ + b_p (pool_weight: W_pᵀ [H, H]'s panels, shared by the
    threads as a GEMM's weight is), then pooled[order[s]] = tanh(z[s]), the rows back in the batch's order. first
    and z: work arrays of at least S rows; buffers as _gemm_items'. In the region, so that both threads read
    the weight, where after it one thread would, from further away."""
    S, H = pooled.shape
    if S == 0:
        return
    if claim(counters, phase) == 0:
        for s in range(S):
            kernels.copy_row(x[starts[s]], first[s])
        finish(counters, phase)
    wait(counters, phase, 1)
    n = _gemm_items(first[:S], pool_weight, z[:S, :], pool_bias, BIAS, threads, counters, phase + 1, packed, scratch,
                    tail)
    wait(counters, phase + 1, n)
    items = -(-S // LN_ROWS)
    item = claim(counters, phase + 2)
    while item < items:
        for s in range(item * LN_ROWS, min(S, (item + 1) * LN_ROWS)):
            for j in range(H):
                pooled[order[s], j] = np.tanh(z[s, j])  # pooler_output = tanh(x_first W_pᵀ + b_p)
        finish(counters, phase + 2)
        item = claim(counters, phase + 2)
    wait(counters, phase + 2, items)


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _gemm_items(x, w, out, bias, epilogue, threads, counters, phase, packed, scratch, tail):
    """gemm.gemm_items on a weight's panels (gemm.pack), each item on _gemm_block. The phases pass out as a view of
    layout A (out[:T, :]), as qkv's column slices are, so that one build serves them all."""
    count, groups, per = gemm.item_count(out.shape[0], out.shape[1], WIDTH, threads)
    item = claim(counters, phase)
    while item < count:
        r0, r1, p0, p1 = gemm.item_bounds(item, out.shape[0], out.shape[1], WIDTH, groups, per)
        _gemm_block(x[:, :], w, out[:, :], bias, epilogue, r0, r1, p0, p1, packed, scratch, tail)
        finish(counters, phase)
        item = claim(counters, phase)
    return count


@numba.njit(cache=True, inline="always")
def _gemm_rows(x, w, out, bias, epilogue, r0, r1, packed, scratch, tail):
    """Rows r0 : r1 of out = epilogue(x W + bias), every panel of W's (gemm.pack), on this thread."""
    _gemm_block(x[:, :], w, out[:, :], bias, epilogue, r0, r1, np.int64(0), -(-out.shape[1] // NR), packed, scratch,
                tail)


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _gemm_block(x, w, out, bias, epilogue, r0, r1, p0, p1, packed, scratch, tail):
    """Rows r0 : r1 and panels p0 : p1 of out = epilogue(x W + bias), W's panels (gemm.pack), on this thread:
    gemm.gemm_block with the host's kernel. Every GEMM of the region runs here (each phase's items, each step
    of a chain, the attention's q kᵀ), so that the GEMM's code is built once: x and out always come as views
    of layout A (x[:, :]; a column slice such as qkv's has that layout anyway), as another layout would build
    it again; inlined into each caller, it was built and optimized again in each (docs/fast.md, the first
    compilation)."""
    gemm.gemm_block(x, w, True, out, bias, out, epilogue, r0, r1, p0, p1, packed, scratch, tail, MR, WIDTH, FUSED)


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _layer_norm_items(y, bias, x, gamma, beta, eps, T, threads, counters, phase, hidden, slot, positions):
    """Claim and compute items of x = LayerNorm(y + bias + x) (kernels.bias_residual_layer_norm), row_items'
    rows each; when slot ≥ 0, row t is also copied to hidden[slot, positions[t]]."""
    rows, items = row_items(T, threads)
    item = claim(counters, phase)
    while item < items:
        layer_norm_rows(y, bias, x, gamma, beta, eps, item * rows, min(T, (item + 1) * rows), hidden, slot,
                        positions)
        finish(counters, phase)
        item = claim(counters, phase)
    return items


@numba.njit(cache=True, inline="always")
def row_items(T, threads):
    """(rows an item, items) of a phase over T rows (the embeddings, a LayerNorm, a quantization): LN_ROWS
    rows an item, or fewer when T is too few rows for each of `threads` threads to get an item of LN_ROWS
    (at 1 × 8 one thread did each LayerNorm while the other waited)."""
    rows = min(LN_ROWS, -(-T // threads))
    return rows, -(-T // rows)


@numba.njit(cache=True, inline="always")
def layer_norm_rows(y, bias, x, gamma, beta, eps, r0, r1, hidden, slot, positions):
    """Rows r0 : r1 of x = LayerNorm(y + bias + x) (kernels.bias_residual_layer_norm_row), each row t also
    copied to hidden[slot, positions[t]] when slot ≥ 0."""
    for t in range(r0, r1):
        kernels.bias_residual_layer_norm_row(y[t], bias, x[t], gamma, beta, eps)
        if slot >= 0:
            kernels.copy_row(x[t], hidden[slot, positions[t]])


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _attention_items(qkv, starts, lengths, num_heads, scale, context, counters, phase, packed, scratch, tail, keys,
                     scores, values, heads):
    """Claim and compute items of the attention: one sequence and head each."""
    items = starts.shape[0] * num_heads
    item = claim(counters, phase)
    while item < items:
        s, h = item // num_heads, item % num_heads
        if lengths[s] <= SHORT:
            kernels.attend_short(qkv, starts[s], lengths[s], h, num_heads, scale, context, heads)
        else:
            _attend(qkv, starts[s], lengths[s], h, num_heads, scale, context, packed, scratch, tail, keys, scores,
                    values, heads)
        finish(counters, phase)
        item = claim(counters, phase)
    return items


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _attend(qkv, start, L, h, num_heads, scale, context, packed, scratch, tail, keys, scores, values, heads):
    """context_i = Σ_j softmax_j(q_i · k_j · scale) v_j for one sequence (rows start : start + L of qkv
    [T, 3H]) and head h, both products on the GEMM's micro-kernel. kᵀ is copied into whole panels of NR
    columns, zero past L, one after the other (keys [L'/NR, d, NR], gemm.pack's layout): q kᵀ runs on
    _gemm_block as a weight's panels do, reading each panel as it lies (contiguous, so no copy into
    gemm_block's aligned buffer), and the copy writes rows NR floats
    apart (kᵀ as one [d, L'] array puts them L' apart, a stride that maps them onto few L1 sets: at 512
    tokens that copy took a third of the attention's time). v is read in place when the head size is a
    whole number of panels, else through zero-padded copies (values, heads [L, d']). The second product
    takes the softmax's numerators e_ij, and its rows are divided by Σ_j e_ij after (fast/softmax.py)."""
    H = context.shape[1]
    d = H // num_heads
    q0, k0, v0 = h * d, H + h * d, 2 * H + h * d
    Lp, dp = -(-L // NR) * NR, -(-d // NR) * NR
    kt = keys[:d * Lp].reshape((Lp // NR, d, NR))  # kᵀ in panels: kt[p, c, j'] = k[p·NR + j', c]
    kt[-1] = 0
    for p in range(Lp // NR):  # panel by panel, each written in order (a scattered write costs more than a read)
        for c in range(d):
            for jj in range(min(NR, L - p * NR)):
                kt[p, c, jj] = qkv[start + p * NR + jj, k0 + c]
    s = scores[:L * Lp].reshape((L, Lp))  # [L, L']
    q = qkv[start:start + L, q0:q0 + d]
    # q kᵀ: [L, d] x [d, L'] -> [L, L'], kt's panels being as gemm.pack lays them out ([L'/NR · d, NR])
    _gemm_rows(q, kt.reshape((Lp // NR * d, NR)), s, s[0], NONE, np.int64(0), L, packed, scratch, tail)
    sums = keys[:L]  # kᵀ is read by now: its buffer holds the rows' Σ_j e_ij
    for i in range(L):  # e = exp((q kᵀ - max) · scale), row by row (the max of each row)
        sums[i] = softmax_exp(WIDTH, scores, i * Lp, L, Lp, scale)
    out = context[start:start + L, q0:q0 + d]
    v, product = qkv[start:start + L, v0:v0 + d], out  # e v: [L, L] x [L, d] -> the head's columns of context
    if d < dp:  # through zero-padded copies: [L, L] x [L, d'] -> [L, d']
        v, product = values[:L * dp].reshape((L, dp))[:, :], heads[:L * dp].reshape((L, dp))[:, :]
        v[:, d:] = 0
        for i in range(L):
            kernels.copy_row(qkv[start + i, v0:v0 + d], v[i, :d])
    gemm.gemm_block(s[:, :L], v, False, product, product[0], product, NONE, 0, L, 0, dp // NR, packed, tail, tail,
                    MR, WIDTH, FUSED)
    if d < dp:
        for i in range(L):
            kernels.copy_row(product[i, :d], out[i])
    for i in range(L):  # context_i = (e v)_i / Σ_j e_ij = softmax(q kᵀ · scale)_i v
        row = context[start + i, q0:q0 + d]  # a row's slice: contiguous, so the loop is vectorised
        inverse = np.float32(1.0) / sums[i]
        for c in range(d):
            row[c] *= inverse
