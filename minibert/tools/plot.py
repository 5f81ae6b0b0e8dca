"""Attention maps as a picture: one panel per layer and head (`minibert trace --save`, the walkthrough).

Needs matplotlib (the viz extra); imported only when a picture is drawn.
"""

from __future__ import annotations

import numpy as np


def attention_figure(maps: list[np.ndarray], tokens: list[str], title: str = ""):
    """A matplotlib Figure of attention probabilities: maps holds one [A, S, S] array per layer (one
    sentence), tokens its S tokens. Row i of a panel is token i's query, column j the key it attends to;
    each row sums to 1. One colour scale, 0 to 1, for every panel."""
    import matplotlib.pyplot as plt

    layers, heads = len(maps), maps[0].shape[0]
    fig, axes = plt.subplots(layers, heads, figsize=(2.2 * heads + 1.6, 2.2 * layers + 1.4), squeeze=False,
                             layout="constrained")
    for i in range(layers):
        for h in range(heads):
            ax = axes[i][h]
            image = ax.imshow(maps[i][h], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(tokens)), tokens if i == layers - 1 else [], rotation=90, fontsize=6)
            ax.set_yticks(range(len(tokens)), tokens if h == 0 else [], fontsize=6)
            ax.set_title(f"layer {i + 1}, head {h + 1}", fontsize=8)
        axes[i][0].set_ylabel("query (attends)", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("key (attended to)", fontsize=7)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention probability (each row sums to 1)")
    fig.suptitle((f"{title}\n" if title else "")
                 + "attention: each row (query token) attends to the columns (key tokens)", fontsize=9)
    return fig
