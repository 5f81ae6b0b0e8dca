"""The fused inference path: the same encoder as minibert/nn, computed without padding and without temporaries.

Tokens of all sequences are packed back to back ([T, H], T = real tokens), longest sequence first, so no
work is spent on padding and sequences of equal length sit together. Per layer:

    qkv = x W_qkv          (one GEMM for Q, K and V)       + bias            (kernel)
    attention per sequence and head: short sequences in one kernel; longer ones as batched BLAS GEMMs
        for each run of equal-length sequences, with the scale + softmax in a kernel
    a = LayerNorm(ctx W_o + b_o + x)                         (GEMM, then one kernel)
    y = LayerNorm(GELU(a W_1 + b_1) W_2 + b_2 + a)          (GEMM, kernel, GEMM, kernel)

Weights are laid out once as [in, out] so every GEMM is a plain row-major BLAS call, and the model's
weights become views of those arrays (one copy, shared). Buffers are kept and reused across layers and
calls, so calls on one model from several threads take turns (a lock).

The GEMMs run on gemm_rows(T) ≥ T rows: OpenBLAS's sgemm is up to 1.7x slower for a row count 2 to 7 past
a multiple of 8 than for the next multiple of 8. The extra rows are computed and never read: every GEMM row
depends only on its own input row, and the kernels and attention touch the T real rows only.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import NamedTuple

import numpy as np

from . import kernels
from .int8 import Int8Matrix

SHORT = 16  # sequences up to this length are attended to inside one kernel (benchmarks/bench_attention.py)
ROW_MULTIPLE = 8  # GEMM row counts are rounded up to this; see gemm_rows
SCORES_LIMIT = 1 << 22  # elements of one [n, A, L, L] score block: caps the buffer a model keeps (16 MB in float32)


def gemm_rows(tokens: int) -> int:
    """The row count to run T tokens' GEMMs on: T rounded up to a multiple of 8 when that adds 2 to 7 rows.

    Measured with OpenBLAS's Haswell sgemm (NumPy's wheels on AVX2 CPUs; `python benchmarks/bench_gemm.py
    --rows`): a layer's four BERT-Mini GEMMs on 5 rows take 1.67x as long as on 8, on 14 rows 1.46x as long
    as on 16, on 30 rows 1.19x as long as on 32, while 1 row past a multiple of 8 costs less than the
    padding would (a single row runs as a matrix-vector product)."""
    over = tokens % ROW_MULTIPLE
    return tokens if over <= 1 else tokens + ROW_MULTIPLE - over


class FastEncoder:
    """Embeddings + encoder (+ pooler) of a BertModel's weights, for inference.

    The GEMMs take each weight as a row-major [in, out] matrix, with Q, K and V side by side ([H, 3H]) and
    their biases too ([3H]). Those arrays are made once here, and `weights` (the model's nested dict) is
    pointed at views of them in the layout it had ([out, in]): the model and the fast path hold one copy
    of each weight, and changes made in place to the model's weights (an optimizer step) reach both.
    Arrays replaced by new ones are copied in by refresh().
    """

    def __init__(self, weights: dict, config, dtype: np.dtype) -> None:
        self.config, self.dtype = config, dtype
        self.embeddings = weights["embeddings"]
        self._shared: list[tuple[str, dict, str, np.ndarray]] = []  # (name, parent, key, view) of each weight laid out here
        self._int8: list[Int8Matrix] = []  # the quantized matrices of an int8 model
        self.layers = []
        for i, layer in enumerate(weights["encoder"]["layer"]):
            attention = layer["attention"]
            qkv = {f"encoder.layer.{i}.attention.self.{name}": attention["self"][name] for name in ("query", "key", "value")}
            o = {f"encoder.layer.{i}.attention.output.dense": attention["output"]["dense"]}
            ffn_in = {f"encoder.layer.{i}.intermediate.dense": layer["intermediate"]["dense"]}
            ffn_out = {f"encoder.layer.{i}.output.dense": layer["output"]["dense"]}
            self.layers.append({
                "w_qkv": self._matrix(qkv), "b_qkv": self._lay_out(qkv, "bias"),  # [H, 3H], [3H]
                "w_o": self._matrix(o), "b_o": self._lay_out(o, "bias"),  # [H, H], [H]
                "ln1": attention["output"]["LayerNorm"],
                "w_1": self._matrix(ffn_in), "b_1": self._lay_out(ffn_in, "bias"),  # [H, I], [I]
                "w_2": self._matrix(ffn_out), "b_2": self._lay_out(ffn_out, "bias"),  # [I, H], [H]
                "ln2": layer["output"]["LayerNorm"],
            })
        self.pooler = weights.get("pooler")
        if self.pooler is not None:
            self.pooler_weight = self._lay_out({"pooler.dense": self.pooler["dense"]}, "weight")  # [H, H]
        self.bias_gelu = kernels.for_dtype(dtype, "bias_gelu")
        self.softmax_rows = kernels.for_dtype(dtype, "softmax_rows")
        self._buffers: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # one call at a time: they all compute in self._buffers

    def _lay_out(self, parents: dict[str, dict], key: str) -> np.ndarray:
        """One new array holding parents' `key` arrays side by side: weights [out, in] as [in, Σ out],
        biases [out] as [Σ out]. Each parent's `key` becomes the view of its block, in its own layout."""
        arrays = [parent[key] for parent in parents.values()]
        if arrays[0].dtype == np.int8:  # int8 weights stay [out, in]: the int8 kernels read rows of Q_w
            laid_out = np.concatenate(arrays)  # [out, in] blocks -> [Σ out, in]
        else:
            laid_out = np.concatenate([a.T for a in arrays], axis=-1)  # [in, out] blocks -> [in, Σ out] (biases: [Σ out])
        start = 0
        for (name, parent), a in zip(parents.items(), arrays):
            end = start + a.shape[0]
            parent[key] = laid_out[start:end] if a.dtype == np.int8 else laid_out[..., start:end].T  # [out, in] view
            self._shared.append((f"{name}.{key}", parent, key, parent[key]))
            start += a.shape[0]
        return laid_out

    def _matrix(self, parents: dict[str, dict]) -> np.ndarray | Int8Matrix:
        """The parents' weights laid out for one GEMM: float [in, Σ out], or an int8 model's Int8Matrix."""
        if "weight_scale" not in next(iter(parents.values())):
            return self._lay_out(parents, "weight")
        self._int8.append(Int8Matrix(self._lay_out(parents, "weight"), self._lay_out(parents, "weight_scale")))
        return self._int8[-1]

    def refresh(self) -> None:
        """Copy into the laid-out arrays every weight the model's dict now holds as a different array
        (replaced, not changed in place), and point the dict back at the view. The embeddings, the
        LayerNorms and the pooler's bias are read from the dict at each call and need nothing."""
        with self._lock:
            for name, parent, key, view in self._shared:
                if parent[key] is view:
                    continue
                if np.shape(parent[key]) != view.shape:
                    raise ValueError(f"{name} was replaced by an array of shape {list(np.shape(parent[key]))}; the "
                                     f"model's is {list(view.shape)} (a new shape needs a new model)")
                view[...] = parent[key]
                parent[key] = view
            for matrix in self._int8:
                matrix.refresh()

    def __call__(self, input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states: bool):
        """input_ids etc. [B, S] (position_ids may be [1, S]), checked by the caller.

        Returns (last_hidden_state [B, S, H], pooler_output [B, H] or None, hidden_states or None), padding
        positions zero; or None when packing cannot give transformers' numbers (see packing; the caller then
        uses the reference path).
        """
        pack = packing(attention_mask, first_position_read=self.pooler is not None)
        if pack is None:
            return None
        with self._lock:
            return self._encode(pack, input_ids, token_type_ids, position_ids, output_hidden_states)

    def _encode(self, pack, input_ids, token_type_ids, position_ids, output_hidden_states: bool):
        """__call__'s work on a packing, in the shared buffers."""
        c, H, T = self.config, self.config.hidden_size, pack.total
        R = gemm_rows(T)
        rows = self._buffer("x", (R, H))  # [R, H], R ≥ T: the real tokens, then rows never read
        x = rows[:T]
        e = self.embeddings
        if position_ids.shape != input_ids.shape:
            position_ids = np.broadcast_to(position_ids, input_ids.shape)  # [1, S] -> [B, S]
        kernels.run(kernels.embed, T * H, pack.gather(input_ids), pack.gather(token_type_ids),
                    pack.gather(position_ids), e["word_embeddings"]["weight"], e["position_embeddings"]["weight"],
                    e["token_type_embeddings"]["weight"], e["LayerNorm"]["weight"], e["LayerNorm"]["bias"],
                    c.layer_norm_eps, x)
        packed_states = [x.copy()] if output_hidden_states else None
        plan = attention_plan(pack.starts, pack.lengths, c.num_attention_heads)
        work = {name: self._buffer(name, (R, n)) for name, n in  # per call, not per layer
                (("qkv", 3 * H), ("context", H), ("projected", H), ("intermediate", c.intermediate_size))}
        for layer in self.layers:
            self._layer(rows, T, layer, plan, **work)
            if output_hidden_states:
                packed_states.append(x.copy())
        pooled = None
        if self.pooler is not None:
            pooled = np.empty((len(pack.order), H), dtype=self.dtype)
            pooled[pack.order] = np.tanh(x[pack.starts] @ self.pooler_weight + self.pooler["dense"]["bias"])  # first tokens [B, H]
        hidden_states = tuple(pack.scatter(h) for h in packed_states) if output_hidden_states else None
        return pack.scatter(x), pooled, hidden_states

    def _layer(self, rows, T, w, plan, qkv, context, projected, intermediate) -> None:
        """One encoder layer over packed tokens: rows [R, H], whose first T rows are the tokens, updated in
        place; qkv [R, 3H], context [R, H], projected [R, H], intermediate [R, I]: work buffers."""
        x = rows[:T]
        eps = self.config.layer_norm_eps
        run = kernels.run
        matmul(rows, w["w_qkv"], qkv)  # [R, H] -> [R, 3H]
        run(kernels.add_bias, T * qkv.shape[1], qkv[:T], w["b_qkv"])
        self._attention(qkv[:T], plan, context)  # [T, 3H] -> context [T, H]
        matmul(context, w["w_o"], projected)
        run(kernels.bias_residual_layer_norm, x.size, projected[:T], w["b_o"], x, w["ln1"]["weight"], w["ln1"]["bias"], eps)
        matmul(rows, w["w_1"], intermediate)  # [R, H] -> [R, I]
        run(self.bias_gelu, T * intermediate.shape[1], intermediate[:T], w["b_1"])
        matmul(intermediate, w["w_2"], projected)  # [R, I] -> [R, H]
        run(kernels.bias_residual_layer_norm, x.size, projected[:T], w["b_2"], x, w["ln2"]["weight"], w["ln2"]["bias"], eps)

    def _attention(self, qkv, plan, context) -> None:
        """qkv [T, 3H] -> the first T rows of context [R, H]."""
        H, A = self.config.hidden_size, self.config.num_attention_heads
        d = H // A
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
            kernels.run(self.softmax_rows, rows.size, rows, rows.dtype.type(scale))
            out = context[start:start + n * L].reshape(n, L, A, d).transpose(0, 2, 1, 3)
            np.matmul(scores, v, out=out)  # [n, A, L, L] @ [n, A, L, d] -> [n, A, L, d], into context

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A reused work array of at least `shape`'s size, viewed as `shape`. New ones are zero, so the rows
        past the tokens hold finite numbers from the start (they only ever receive GEMM rows of those)."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.zeros(size, dtype=self.dtype)
        return buffer[:size].reshape(shape)


def matmul(x: np.ndarray, w: np.ndarray | Int8Matrix, out: np.ndarray) -> None:
    """out = x @ w: a float [in, out] matrix through BLAS, an Int8Matrix through the int8 kernels."""
    if isinstance(w, Int8Matrix):
        w.matmul(x, out)
    else:
        np.matmul(x, w, out=out)


class Packing(NamedTuple):
    """Where a batch's real tokens sit when packed back to back, longest sequence first."""

    shape: tuple[int, int]  # (B, S) of the padded batch
    order: np.ndarray  # [B] the batch rows, longest first
    lengths: np.ndarray  # [B] their lengths
    starts: np.ndarray  # [B] where each starts among the packed tokens
    total: int  # T, the number of real tokens
    index: tuple | None  # (rows [T], cols [T]): packed token t is padded position (rows[t], cols[t]); None: no padding

    def gather(self, a: np.ndarray) -> np.ndarray:
        """[B, S, ...] -> [T, ...], the real positions in packed order."""
        return a.reshape((self.total,) + a.shape[2:]) if self.index is None else a[self.index]

    def scatter(self, packed: np.ndarray) -> np.ndarray:
        """[T, N] -> a new [B, S, N], zero at padding."""
        if self.index is None:
            return packed.reshape(self.shape + packed.shape[1:]).copy()
        return scatter(packed, self.index, self.shape)


def scatter(packed: np.ndarray, index, shape: tuple[int, int]) -> np.ndarray:
    """[T, N] -> a new [B, S, N] (shape = (B, S)), zero at padding; `index` picks the T real positions (a
    boolean mask [B, S] or a (rows [T], cols [T]) pair)."""
    out = np.zeros(shape + packed.shape[1:], dtype=packed.dtype)
    out[index] = packed
    return out


def packing(attention_mask: np.ndarray, first_position_read: bool) -> Packing | None:
    """How to pack a batch with attention_mask [B, S]: each row's real positions, in order (padding may be
    anywhere). None, for the reference path, when a row has no token, or when first_position_read (a pooler
    reads position 0) and a row's position 0 is padding, as in left padding: transformers computes a hidden
    state there, which packing leaves out."""
    B, S = attention_mask.shape
    if attention_mask.all():  # no padding: packing is a reshape
        return Packing((B, S), np.arange(B), np.full(B, S), np.arange(B) * S, B * S, None)
    lengths = attention_mask.sum(axis=1)
    if lengths.min() == 0 or (first_position_read and not attention_mask[:, 0].all()):
        return None
    order = np.argsort(-lengths, kind="stable")  # longest first: equal lengths become neighbours
    lengths = lengths[order]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rows, cols = np.nonzero(attention_mask[order])  # row by row, each row's real positions in order
    return Packing((B, S), order, lengths, starts, int(lengths.sum()), (order[rows], cols))


def attention_plan(starts: np.ndarray, lengths: np.ndarray, num_heads: int) -> tuple:
    """How each layer's attention runs, worked out once per call: sequences up to SHORT tokens in one kernel
    (their starts, lengths and Σ L² work), longer ones as batched GEMMs per run of equal length
    (start, count, length), a run cut so that its scores [count, A, L, L] hold at most SCORES_LIMIT
    elements. starts/lengths [N], longest first. (Python ints: on a few sequences NumPy's per-call cost
    would outweigh the work.)"""
    short_starts, short_lengths, runs = [], [], []
    for length, group in itertools.groupby(zip(starts.tolist(), lengths.tolist()), key=lambda pair: pair[1]):
        group_starts = [start for start, _ in group]  # a run of equal lengths (sorted, so contiguous)
        if length <= SHORT:
            short_starts += group_starts
            short_lengths += [length] * len(group_starts)
        else:
            count = max(1, SCORES_LIMIT // (num_heads * length * length))
            runs.extend((group_starts[i], min(count, len(group_starts) - i), length) for i in range(0, len(group_starts), count))
    work = sum(length * length for length in short_lengths)
    return np.array(short_starts, dtype=np.int64), np.array(short_lengths, dtype=np.int64), work, runs
