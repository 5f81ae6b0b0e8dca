"""The fused inference path: the same encoder as minibert/nn, computed without padding and without temporaries.

Tokens of all sequences are packed back to back ([T, H], T = real tokens), longest sequence first, so no
work is spent on padding and sequences of equal length sit together. Per layer:

    qkv = [x W_q^T | x W_k^T | x W_v^T]                      + biases          (3 GEMMs)
    attention per sequence and head
    a = LayerNorm(ctx W_o^T + b_o + x)                       (GEMM, then LayerNorm rows)
    y = LayerNorm(GELU(a W_1^T + b_1) W_2^T + b_2 + a)      (GEMM with GELU, GEMM, then LayerNorm rows)

float32 runs the embeddings, every layer and the pooler in one compiled call and one parallel region
(fast/layers.py), on minibert's own GEMM (fast/gemm.py), writing the outputs in the batch's places; so does
an int8 model on a CPU with a vector int8 kernel (fast/int8_layers.py).
float64 (the verification dtype) and int8 on the portable kernel run layer by layer from Python: float64
GEMMs in BLAS, int8 ones in fast/int8.py, the work between them in kernels (fast/kernels.py). There an
int8 model's attention is nn.quantize.attention_int8, per run of equal-length sequences; float64's: short
sequences in one kernel, longer ones as batched BLAS GEMMs per run of equal-length sequences with the
scale + softmax in a kernel.

float32 GEMMs read their weights as panels (gemm.pack), a copy of the encoder's matrices and the pooler's
made at the first call, all in one array; every other weight is read from the model's own arrays, the
encoder's vectors (biases, LayerNorms) from one array of which the model's are views: the region takes two
arrays where tuples of 64 had each element typed and unpacked at every call. A packed weight's own array
is then kept read-only, so that an in-place change cannot leave its panels stale unnoticed: whoever changes
one in place makes it writeable first (as AdamW does), and the next call packs it again. The int8 region
reads the same vectors, and its matrices' parts (an Int8Matrix's panels, weight sums, scales) each kind in
one array (int8.stack), made at refresh. Buffers are kept and reused across layers and calls, so calls on
one model from several threads take turns (a lock).

On the layer-by-layer path the GEMMs run on gemm_rows(T) ≥ T rows: OpenBLAS's sgemm is slower for a row
count 2 to 7 past a multiple of 8 than for the next multiple of 8 (docs/fast.md). The extra rows are
computed and never read: every GEMM row depends only on its own input row, and the kernels and attention
touch the T real rows only.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from typing import NamedTuple

import numpy as np

from . import aligned, gemm, int8, int8_layers, kernels, layers
from ..inputs import bounds
from ..nn.quantize import attention_int8
from .int8 import Int8Matrix
from .kernels import SHORT
from .threads import num_threads

ROW_MULTIPLE = 8  # GEMM row counts are rounded up to this; see gemm_rows
SCORES_LIMIT = 1 << 22  # elements of one float64 [n, A, L, L] score block: caps the buffer a model keeps (32 MB)


def gemm_rows(tokens: int) -> int:
    """The row count to run T tokens' GEMMs on: T rounded up to a multiple of 8 when that adds 2 to 7 rows,
    where OpenBLAS's sgemm is slower than on the next multiple of 8; one row past a multiple of 8 costs less
    than the padding would (a single row runs as a matrix-vector product). Figures: docs/fast.md."""
    over = tokens % ROW_MULTIPLE
    return tokens if over <= 1 else tokens + ROW_MULTIPLE - over


class FastEncoder:
    """Embeddings + encoder (+ pooler) of a BertModel, for inference: an accelerator attached to the model.

    It computes from the model's own arrays (``weights``, the model's nested dict): a dense weight W [out, in]
    is multiplied as its transpose W.T [in, out] (x W^T), a view, row-major since BertModel keeps dense
    weights column-major; in float32 the encoder's and the pooler's as that view's panels (gemm.pack),
    packed at the first call, their arrays then read-only until refresh() (see the module's docstring).
    refresh() takes up arrays replaced in the dict (BertModel.weights_changed calls it) and rebuilds what
    is derived from them: the panels, an int8 model's Int8Matrix (codes packed for its kernels).
    """

    def __init__(self, weights: dict, config, dtype: np.dtype) -> None:
        self.weights, self.config, self.dtype = weights, config, dtype
        self._buffers: dict[str, np.ndarray] = {}
        self._work: tuple = (None, {})  # what the last call's region buffers depend on, and the buffers
        self._lock = threading.Lock()  # one call at a time: they all compute in self._buffers
        self._sources: list[np.ndarray] = []  # the arrays W [out, in] whose panels the GEMMs read, pooler's last
        self._panels: np.ndarray | None = None  # their panels, stacked (gemm.pack), None until a call needs them
        self._bounds: np.ndarray | None = None  # [sources + 1]: source i's panels are rows bounds[i] : bounds[i + 1]
        self._locked: list[np.ndarray] = []  # the sources made read-only here (writeable again at refresh)
        self._vectors: tuple[np.ndarray, np.ndarray] | None = None  # the regions' vectors: _store_vectors
        self.refresh()

    def refresh(self) -> None:
        """(Re)read the model's arrays: each layer's matrices as the GEMMs take them, and their biases."""
        def matrix(dense: dict) -> np.ndarray | Int8Matrix:
            if "weight_scale" in dense:
                return Int8Matrix(dense["weight"], dense["weight_scale"])
            return dense["weight"].T  # [out, in] -> [in, out], a view

        with self._lock:
            for array in self._locked:  # the arrays packed until now are the caller's to change again
                array.flags.writeable = True
            self._sources, self._locked = [], []
            self._work = (None, {})  # the buffers depend on the kind of layers (float32, int8 and its kernel)
            if self.dtype == np.float32:
                self._store_vectors()  # first, so that the layers below hold the stored views
            self.layers = []
            for layer in self.weights["encoder"]["layer"]:
                attention = layer["attention"]
                projections = [attention["self"][name] for name in ("query", "key", "value")]
                qkv = [(matrix(p), p["bias"]) for p in projections]  # Q, K, V: [H, H], [H] each
                if "weight_scale" in projections[0]:  # int8: one matrix of their codes side by side, [3H, H],
                    qkv = [(matrix({key: np.concatenate([p[key] for p in projections]) for key in projections[0]}),
                            np.concatenate([p["bias"] for p in projections]))]  # so x is quantized once
                self.layers.append({
                    "qkv": qkv,
                    "o": (matrix(attention["output"]["dense"]), attention["output"]["dense"]["bias"]),  # [H, H]
                    "ln1": attention["output"]["LayerNorm"],
                    # [H, I]
                    "ffn_in": (matrix(layer["intermediate"]["dense"]), layer["intermediate"]["dense"]["bias"]),
                    "ffn_out": (matrix(layer["output"]["dense"]), layer["output"]["dense"]["bias"]),  # [I, H]
                    "ln2": layer["output"]["LayerNorm"],
                })
            matrices = tuple(m for layer in self.layers for m, _ in (*layer["qkv"], layer["o"], layer["ffn_in"],
                                                                   layer["ffn_out"]))
            int8_kernels = {m.kernel for m in matrices if isinstance(m, Int8Matrix)}
            self.compiled = self.compiled_int8 = None
            if self.dtype == np.float32 and not int8_kernels:
                self._sources = [dense["weight"] for layer in self.weights["encoder"]["layer"] for dense in (
                    *(layer["attention"]["self"][name] for name in ("query", "key", "value")),
                    layer["attention"]["output"]["dense"], layer["intermediate"]["dense"], layer["output"]["dense"])]
                self.compiled = (None, None, *self._vectors)  # the matrices' panels and their bounds: _pack
            elif self.dtype == np.float32 and len(int8_kernels) == 1 and "portable" not in int8_kernels and all(
                    isinstance(m, Int8Matrix) for m in matrices):
                # int8_layers.encode's weights: the matrices (per layer the one QKV matrix, output, FFN in, FFN
                # out) stacked, their Int8Matrix parts then views; the vectors as the float32 region's
                self.compiled_int8 = (int8_kernels.pop(), *int8.stack(matrices), *self._vectors)
            e = self.weights["embeddings"]  # the embeddings' tables and LayerNorm, as kernels.embed takes them
            self.embedding = (e["word_embeddings"]["weight"], e["position_embeddings"]["weight"],
                              e["token_type_embeddings"]["weight"], e["LayerNorm"]["weight"], e["LayerNorm"]["bias"])
            # no pooler (or no region): empty arrays of the same types, so one compiled build
            self.pooler = (np.empty((0, 2 * gemm.WIDTH), self.dtype), np.empty(0, self.dtype))
            if "pooler" in self.weights and self.dtype == np.float32:  # W_pᵀ [H, H]'s panels, for the region
                self._sources.append(self.weights["pooler"]["dense"]["weight"])
            self._panels = self._bounds = None

    def _store_vectors(self) -> None:
        """Keep the encoder's vectors (per layer, in layers.encode's order: b_q, b_k, b_v, b_o, γ₁, β₁, b_1,
        b_2, γ₂, β₂) side by side in one float32 array, self._vectors = (that array, bounds [V + 1]), the
        model's dict holding views of it: the region takes them as one argument, where a tuple of 40 arrays
        made each call type and unpack every one. An array put in the dict since the last refresh is copied
        into its place; the array itself is made once, so views of it held elsewhere (an optimizer's) stay
        the model's."""
        slots = [(d, k) for layer in self.weights["encoder"]["layer"] for d, k in layers.vector_slots(layer)]
        if self._vectors is None:
            bounds = np.zeros(len(slots) + 1, np.int64)
            bounds[1:] = np.cumsum([d[k].size for d, k in slots])
            self._vectors = (np.empty(bounds[-1], np.float32), bounds)
        store, bounds = self._vectors
        for i, (d, k) in enumerate(slots):
            view = d[k]
            if view.base is not store or view.ctypes.data != store[bounds[i]:].ctypes.data:
                store[bounds[i]:bounds[i + 1]] = view
                d[k] = store[bounds[i]:bounds[i + 1]]

    def _pack(self) -> None:
        """Pack the weights not packed yet and those whose arrays were made writeable since (changed in place),
        and make their arrays read-only. Every weight's panels lie in one array (self._panels, rows
        self._bounds[i] : self._bounds[i + 1] for source i), which the region takes as one argument."""
        fresh = self._panels is None
        if fresh:
            self._bounds = np.zeros(len(self._sources) + 1, np.int64)
            self._bounds[1:] = np.cumsum([gemm.pack_shape(*a.T.shape)[0] for a in self._sources])
            self._panels = aligned.zeros((self._bounds[-1], 2 * gemm.WIDTH), np.float32)
        for i, array in enumerate(self._sources):
            if fresh or array.flags.writeable:
                gemm.pack(array.T, out=self._panels[self._bounds[i]:self._bounds[i + 1]])  # W^T [in, out]'s panels
                if array.flags.writeable:
                    array.flags.writeable = False
                    self._locked.append(array)
        if self.compiled is not None:  # the matrices, in the order of matrices in refresh
            self.compiled = (self._panels, self._bounds, *self.compiled[2:])
        if "pooler" in self.weights and self.dtype == np.float32:  # the last source, as in refresh
            self.pooler = (self._panels[self._bounds[-2]:], self.weights["pooler"]["dense"]["bias"])

    def __call__(self, input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states: bool):
        """input_ids etc. [B, S] (position_ids may be [1, S]), checked by the caller.

        Returns (last_hidden_state [B, S, H], pooler_output [B, H] or None, hidden_states or None), padding
        positions zero; or None when packing cannot give transformers' numbers (see packing; the caller then
        uses the reference path).
        """
        pack = packing(attention_mask, first_position_read="pooler" in self.weights)
        if pack is None:
            return None
        with self._lock:
            if self._panels is None or any(a.flags.writeable for a in self._sources):
                self._pack()  # the first call, or a weight changed in place since
            if self.compiled is not None or self.compiled_int8 is not None:  # the whole forward in one call
                return self._region(pack, input_ids, token_type_ids, position_ids, output_hidden_states)
            return self._encode(pack, input_ids, token_type_ids, position_ids, output_hidden_states)

    def _encode(self, pack, input_ids, token_type_ids, position_ids, output_hidden_states: bool):
        """__call__'s work on a packing, in the shared buffers, layer by layer (float64, and int8 on the
        portable kernel)."""
        c, H, T = self.config, self.config.hidden_size, pack.total
        R = gemm_rows(T)
        rows = self._buffer("x", (R, H))  # [R, H], R ≥ T: the real tokens, then rows never read
        x = rows[:T]
        if position_ids.shape != input_ids.shape:
            position_ids = np.broadcast_to(position_ids, input_ids.shape)  # [1, S] -> [B, S]
        kernels.run(kernels.embed, T * H, pack.gather(input_ids), pack.gather(token_type_ids),
                    pack.gather(position_ids), *self.embedding, c.layer_norm_eps, x)
        hidden_states = [pack.scatter(x)] if output_hidden_states else None  # [B, S, H] each
        work = {name: self._buffer(name, (R, n)) for name, n in  # per call, not per layer
                (("qkv", 3 * H), ("context", H), ("projected", H), ("intermediate", c.intermediate_size))}
        plan = attention_plan(pack.starts, pack.lengths, c.num_attention_heads,  # see _attention
                              short=0 if self.dtype == np.float32 else SHORT)
        for layer in self.layers:
            self._layer(rows, T, layer, plan, **work)
            if output_hidden_states:
                hidden_states.append(pack.scatter(x))
        pooled = None
        if "pooler" in self.weights:
            dense = self.weights["pooler"]["dense"]
            z = gemm.dense(x[pack.starts], dense["weight"], dense["bias"])  # first tokens [B, H] -> [B, H]
            pooled = np.empty_like(z)
            pooled[pack.order] = np.tanh(z)
        return pack.scatter(x), pooled, tuple(hidden_states) if output_hidden_states else None

    def _region_buffers(self, T: int, longest: int, threads: int) -> dict[str, np.ndarray]:
        """The work buffers of layers.encode or int8_layers.encode for T tokens and sequences up to `longest`
        tokens, on `threads` threads (the pool's): views of self._buffers, kept from the last call while T,
        `longest` and the thread count stay the same (naming and viewing each anew took tens of microseconds a
        call)."""
        c, H = self.config, self.config.hidden_size
        key = (T, longest, threads)
        if self._work[0] == key:
            return self._work[1]
        work = {name: self._buffer(name, (T, n)) for name, n in
                (("x", H), ("qkv", 3 * H), ("context", H), ("projected", H), ("intermediate", c.intermediate_size),
                 ("first", H))}  # first: the pooler's, at most one row per sequence
        if self.compiled is not None:
            shapes = layers.buffers(threads, H, c.intermediate_size, c.num_attention_heads, longest)
            work |= {name: self._buffer(name, shape) for name, shape in shapes.items()}
        else:
            kernel = self.compiled_int8[0]
            shapes = int8_layers.buffers(threads, H, c.num_attention_heads, longest, kernel)
            work |= {name: self._buffer(f"int8 {name}", shape, dtype) for name, (shape, dtype) in shapes.items()}
            G = int8.KERNELS[kernel][1]
            K = int8_layers.code_room(H, c.intermediate_size, G)
            work |= {"q": self._buffer("codes", (T * K,), int8.codes_dtype(kernel)),  # [T, K'] for any K
                     "x_scale": self._buffer("x_scale", (T,)), "zero": self._buffer("zero", (T,), np.int32)}
        self._work = key, work
        return work

    def _region(self, pack, input_ids, token_type_ids, position_ids, output_hidden_states: bool):
        """__call__'s work in one compiled call, layers.encode (float32) or int8_layers.encode (int8 on a vector
        kernel): the embeddings, every layer and the pooler, with the outputs written in the batch's places."""
        c, (B, S), H = self.config, pack.shape, self.config.hidden_size
        n_layers = len(self.layers)
        threads = num_threads()
        work = self._region_buffers(pack.total, int(pack.lengths[0]), threads)  # the longest sequence comes first
        new = np.zeros if pack.padded else np.empty  # the region writes every real position
        hidden = new((n_layers + 1 if output_hidden_states else 1, B * S, H), self.dtype)  # [n, B·S, H]
        tokens = tuple(np.ascontiguousarray(a) for a in (input_ids, token_type_ids, position_ids))  # one layout
        pool_weight, pool_bias = self.pooler
        has_pooler = "pooler" in self.weights
        pooled = np.empty((B if has_pooler else 0, H), self.dtype)  # [B, H]; without a pooler, no rows
        args = (tokens, self.embedding, *(self.compiled or self.compiled_int8[1:]), c.num_attention_heads,
                c.layer_norm_eps, pack.starts, pack.lengths, pack.order, pack.positions)
        with kernels.PARALLEL_REGION:
            groups = layers.groups(pack.lengths, threads, H, c.intermediate_size)
            if self.compiled is not None:
                counters = np.zeros(2 * (1 + layers.PHASES_PER_LAYER * n_layers + 3), dtype=np.int64)
                chains = layers.chains(pack.total, threads)  # taken up only with one group (_worker)
                layers.encode(*args, hidden=hidden, pool_weight=pool_weight, pool_bias=pool_bias, pooled=pooled,
                              groups=groups, chains=chains, **work, counters=counters)
            else:
                counters = np.zeros(2 * (2 + int8_layers.PHASES_PER_LAYER * n_layers + 3), dtype=np.int64)
                int8_layers.encode(self.compiled_int8[0])(*args, hidden=hidden, pool_weight=pool_weight,
                                                          pool_bias=pool_bias, pooled=pooled, groups=groups, **work,
                                                          counters=counters)
        hidden = hidden.reshape(-1, B, S, H)
        return hidden[-1], pooled if has_pooler else None, tuple(hidden) if output_hidden_states else None

    def _layer(self, rows, T, w, plan, qkv, context, projected, intermediate) -> None:
        """One encoder layer over packed tokens: rows [R, H], whose first T rows are the tokens, updated in
        place; qkv [R, 3H], context [R, H], projected [R, H], intermediate [R, I]: work buffers."""
        x = rows[:T]
        eps, run = self.config.layer_norm_eps, kernels.run
        start = 0
        for matrix, bias in w["qkv"]:  # Q, K, V side by side in qkv (an int8 model's in one matrix)
            end = start + len(bias)
            dense(rows, matrix, bias, qkv[:, start:end], T, gemm.BIAS)  # [R, H] -> [R, H] (int8: [R, 3H])
            start = end
        self._attention(qkv[:T], plan, context)  # [T, 3H] -> context [T, H]
        (w_o, b_o), (w_1, b_1), (w_2, b_2), ln1, ln2 = w["o"], w["ffn_in"], w["ffn_out"], w["ln1"], w["ln2"]
        dense(context, w_o, b_o, projected, T, gemm.NONE)
        run(kernels.bias_residual_layer_norm, x.size, projected[:T], b_o, x, ln1["weight"], ln1["bias"], eps)
        dense(rows, w_1, b_1, intermediate, T, gemm.BIAS_GELU)  # [R, H] -> [R, I]
        dense(intermediate, w_2, b_2, projected, T, gemm.NONE)  # [R, I] -> [R, H]
        run(kernels.bias_residual_layer_norm, x.size, projected[:T], b_2, x, ln2["weight"], ln2["bias"], eps)

    def _attention(self, qkv, plan, context) -> None:
        """qkv [T, 3H] -> the first T rows of context [R, H]. float32 (an int8 model on the portable kernel):
        nn.quantize.attention_int8 per run of plan's; float64: plan's kernels and batched BLAS products."""
        H, A = self.config.hidden_size, self.config.num_attention_heads
        d = H // A
        if self.dtype == np.float32:
            for start, n, L in plan[3]:
                block = qkv[start:start + n * L].reshape(n, L, 3, A, d)
                q, k, v = (block[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # [n, L, A, d] -> [n, A, L, d]
                out, _ = attention_int8(q, k, v, np.ones((n, L), dtype=bool))  # [n, A, L, d]
                context[start:start + n * L] = out.transpose(0, 2, 1, 3).reshape(n * L, H)
            return
        scale = d ** -0.5
        short_starts, short_lengths, short_work, runs = plan
        if len(short_starts):
            kernels.run(kernels.attention_short, short_work * H, qkv, short_starts, short_lengths, A, scale, context)
        for start, n, L in runs:
            block = qkv[start:start + n * L].reshape(n, L, 3, A, d)  # views, no copies
            q = block[:, :, 0].transpose(0, 2, 1, 3)  # [n, L, A, d] -> [n, A, L, d]
            k = block[:, :, 1].transpose(0, 2, 3, 1)  # -> [n, A, d, L]
            v = block[:, :, 2].transpose(0, 2, 1, 3)  # -> [n, A, L, d]
            scores = np.matmul(q, k, out=self._buffer("scores", (n, A, L, L)))  # [n, A, L, L]
            rows = scores.reshape(-1, L)
            kernels.run(kernels.softmax_rows, rows.size, rows, rows.dtype.type(scale))
            out = context[start:start + n * L].reshape(n, L, A, d).transpose(0, 2, 1, 3)
            np.matmul(scores, v, out=out)  # [n, A, L, L] @ [n, A, L, d] -> [n, A, L, d], into context

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype | None = None) -> np.ndarray:
        """A reused work array of at least `shape`'s size, viewed as `shape`, starting on a cache line (a row
        of a whole number of lines then starts on one too, and no vector store of a kernel's tile straddles
        two lines). New ones are zero, so the rows past the tokens hold finite numbers from the start (they
        only ever receive GEMM rows of those)."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = aligned.zeros((size,), dtype or self.dtype)
        return buffer[:size].reshape(shape)


def dense(x: np.ndarray, w: np.ndarray | Int8Matrix, bias: np.ndarray, out: np.ndarray, T: int, epilogue: int) -> None:
    """out = epilogue(x @ w + bias) on the first T rows (gemm's epilogues; NONE leaves the bias to the caller),
    on the layer-by-layer path: a float [in, out] matrix through BLAS, an Int8Matrix through the int8
    kernels, each followed by the epilogue's kernel."""
    if isinstance(w, Int8Matrix):
        w.matmul(x, out)
    else:
        np.matmul(x, w, out=out)
    if epilogue == gemm.BIAS:
        kernels.run(kernels.add_bias, T * out.shape[1], out[:T], bias)
    elif epilogue == gemm.BIAS_GELU:
        kernels.run(kernels.for_dtype(out.dtype, "bias_gelu"), T * out.shape[1], out[:T], bias)


class Packing(NamedTuple):
    """Where a batch's real tokens sit when packed back to back, longest sequence first."""

    shape: tuple[int, int]  # (B, S) of the padded batch
    order: np.ndarray  # [B] the batch rows, longest first
    lengths: np.ndarray  # [B] their lengths
    starts: np.ndarray  # [B] where each starts among the packed tokens
    positions: np.ndarray  # [T] packed token t is position positions[t] of the padded batch, flattened to [B·S]

    @property
    def total(self) -> int:
        """T, the number of real tokens."""
        return len(self.positions)

    @property
    def padded(self) -> bool:
        """Whether the batch has padding (else packing is a reshape)."""
        return len(self.positions) != self.shape[0] * self.shape[1]

    def gather(self, a: np.ndarray) -> np.ndarray:
        """[B, S, ...] -> [T, ...], the real positions in packed order."""
        flat = a.reshape((-1,) + a.shape[2:])  # [B·S, ...]
        return flat[self.positions] if self.padded else flat

    def scatter(self, packed: np.ndarray) -> np.ndarray:
        """[T, N] -> a new [B, S, N], zero at padding."""
        if not self.padded:
            return packed.reshape(self.shape + packed.shape[1:]).copy()
        B, S = self.shape
        return scatter(packed, self.positions, (B * S,)).reshape(self.shape + packed.shape[1:])


def scatter(packed: np.ndarray, index, shape: tuple[int, ...]) -> np.ndarray:
    """[T, N] -> a new [*shape, N], zero at padding; `index` picks the T real positions: a boolean mask of
    `shape` ([B, S]), or their flat positions when shape is (B·S,)."""
    out = np.zeros(shape + packed.shape[1:], dtype=packed.dtype)
    out[index] = packed
    return out


@functools.lru_cache(maxsize=8)
def unpadded(batch: int, seq: int) -> Packing:
    """The packing of a [batch, seq] batch without padding, made once per shape (the last few shapes kept): a
    call on a few tokens spends more making these arrays than reading them. Nothing writes to them."""
    return Packing((batch, seq), np.arange(batch), np.full(batch, seq), np.arange(batch) * seq,
                   np.arange(batch * seq))


def packing(attention_mask: np.ndarray, first_position_read: bool) -> Packing | None:
    """How to pack a batch with attention_mask [B, S]: each row's real positions, in order (padding may be
    anywhere). None, for the reference path, when a row has no token, or when first_position_read (a pooler
    reads position 0) and a row's position 0 is padding, as in left padding: transformers computes a hidden
    state there, which packing leaves out."""
    B, S = attention_mask.shape
    if bounds(attention_mask)[0] == 1:  # no padding (the mask's values are 0 and 1): packing is a reshape
        return unpadded(B, S)
    lengths = attention_mask.sum(axis=1)
    if lengths.min() == 0 or (first_position_read and not attention_mask[:, 0].all()):
        return None
    order = np.argsort(-lengths, kind="stable")  # longest first: equal lengths become neighbours
    lengths = lengths[order]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rows, cols = np.nonzero(attention_mask[order])  # row by row, each row's real positions in order
    return Packing((B, S), order, lengths, starts, order[rows] * S + cols)


def attention_plan(starts: np.ndarray, lengths: np.ndarray, num_heads: int, short: int = SHORT) -> tuple:
    """How each layer's attention runs, worked out once per call: sequences up to `short` tokens in one kernel
    (their starts, lengths and Σ L² work), longer ones as batched GEMMs per run of equal length
    (start, count, length), a run cut so that its scores [count, A, L, L] hold at most SCORES_LIMIT
    elements. starts/lengths [N], longest first. (Python ints: on a few sequences NumPy's per-call cost
    would outweigh the work.)"""
    short_starts, short_lengths, runs = [], [], []
    for length, group in itertools.groupby(zip(starts.tolist(), lengths.tolist()), key=lambda pair: pair[1]):
        group_starts = [start for start, _ in group]  # a run of equal lengths (sorted, so contiguous)
        if length <= short:
            short_starts += group_starts
            short_lengths += [length] * len(group_starts)
        else:
            count = max(1, SCORES_LIMIT // (num_heads * length * length))
            runs.extend((group_starts[i], min(count, len(group_starts) - i), length)
                        for i in range(0, len(group_starts), count))
    work = sum(length * length for length in short_lengths)
    return np.array(short_starts, dtype=np.int64), np.array(short_lengths, dtype=np.int64), work, runs
