"""The BERT fine-tuning recipe's optimiser: AdamW, linear warm-up then linear decay, gradient clipping."""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ..fast.kernels import kernel, run


def linear_schedule(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor for update `step` (0-based): step/warmup rising to 1, then falling linearly to 0
    at total_steps (transformers' get_linear_schedule_with_warmup)."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients by min(1, max_norm / (‖g‖ + 1e-6)), ‖g‖ the norm over all of them (torch's rule).
    In place; returns ‖g‖ before clipping."""
    if not max_norm > 0:  # torch does not check: a negative max_norm would turn every gradient around
        raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
    total = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    scale = min(1.0, max_norm / (total + 1e-6))
    for g in grads.values():
        g *= scale
    return total


@kernel()
def adamw_update(p, g, m, v, shrink, lr_corrected, b1, b2, c2_sqrt, eps):
    """One AdamW step for one parameter and its g, m, v as 2-D views of one shape (see rows), all in one pass
    (torch.optim.AdamW's operations): p ·= shrink (decoupled decay); m += (g - m)(1 - β₁);
    v = v β₂ + (1 - β₂) g²; p -= lr' m / (√v / √c₂ + ε)."""
    for i in prange(p.shape[0]):
        for j in range(p.shape[1]):
            p[i, j] *= shrink
            m[i, j] += (g[i, j] - m[i, j]) * (1 - b1)
            v[i, j] = v[i, j] * b2 + (1 - b2) * g[i, j] * g[i, j]
            p[i, j] -= lr_corrected * m[i, j] / (math.sqrt(v[i, j]) / c2_sqrt + eps)


def rows(a: np.ndarray, transposed: bool) -> np.ndarray:
    """A 2-D view of `a` for the kernel: its transpose when `transposed` (a column-major matrix, as the
    model's dense weights are, whose transpose has unit-stride rows), else [-1, last axis].
    ValueError when only a copy would be 2-D (the update would be lost)."""
    view = a.T if transposed else a.reshape(-1, a.shape[-1] if a.ndim else 1)
    if view.size and not np.may_share_memory(view, a):
        raise ValueError(f"AdamW updates parameters in place and cannot view one of shape {a.shape} and strides "
                         f"{a.strides} as rows; pass contiguous arrays or the model's own (state_dict())")
    return view


class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter), updating parameter arrays in place:

        p ← p · (1 - lr·λ)                                  (not for biases and LayerNorm weights)
        m ← β₁ m + (1 - β₁) g;   v ← β₂ v + (1 - β₂) g²
        p ← p - lr / (1 - β₁ᵗ) · m / (√v / √(1 - β₂ᵗ) + ε)

    in torch.optim.AdamW's order of operations, so a run matches torch's step for step. The moments m and
    v have each parameter's shape and memory layout. A read-only parameter (a float32 model keeps the weights
    its fast path has packed so) is made writeable before its update, which has the fast path pack it again
    at its next call.
    """

    def __init__(self, params: dict[str, np.ndarray], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01,
                 no_decay: tuple[str, ...] = ("bias", "LayerNorm.weight")) -> None:
        b1, b2 = betas
        for name, value, fits in (("lr", lr, lr >= 0), ("betas[0]", b1, 0 <= b1 < 1), ("betas[1]", b2, 0 <= b2 < 1),
                                  ("eps", eps, eps >= 0), ("weight_decay", weight_decay, weight_decay >= 0)):
            if not fits:  # torch.optim.AdamW's checks; NaN fails them too
                raise ValueError(f"AdamW: invalid {name} {value!r}")
        self.params, self.lr, self.betas, self.eps, self.weight_decay = params, lr, betas, eps, weight_decay
        self.decay = {name: not name.endswith(no_decay) for name in params}
        self.m = {name: np.zeros_like(p) for name, p in params.items()}  # zeros_like keeps p's layout
        self.v = {name: np.zeros_like(p) for name, p in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray], lr: float | None = None) -> None:
        missing = set(self.params) - set(grads)
        if missing:
            raise ValueError(f"no gradient for {', '.join(sorted(missing)[:3])}{' ...' if len(missing) > 3 else ''}")
        lr = self.lr if lr is None else lr
        self.t += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for name, p in self.params.items():
            shrink = 1 - lr * self.weight_decay if self.decay[name] else 1.0
            m, v, g = self.m[name], self.v[name], np.asarray(grads[name])
            if np.shape(g) != p.shape:
                raise ValueError(f"the gradient for {name} has shape {list(np.shape(g))}, the "
                                 f"parameter {list(p.shape)}")
            if g.dtype != p.dtype or g.strides != m.strides:  # in the moments' layout: the kernel reads all three alike
                g = np.empty_like(m)
                g[...] = grads[name]
            if not p.flags.writeable:
                try:
                    p.flags.writeable = True
                except ValueError:  # a view of read-only memory (a buffer, a read-only mapping)
                    raise ValueError(f"AdamW updates parameters in place, and {name} is a view of read-only "
                                     "memory; pass arrays of their own (np.array(p))") from None
            transposed = p.ndim == 2 and p.strides[0] == p.itemsize != p.strides[1]  # decided once, for all four
            run(adamw_update, p.size, *(rows(a, transposed) for a in (p, g, m, v)), shrink, lr / correction1, b1, b2,
                math.sqrt(correction2), self.eps)
