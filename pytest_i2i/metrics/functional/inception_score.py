"""Inception Score (Salimans et al. 2016).

IS = exp( E_x KL( p(y|x) ‖ p(y) ) ), computed on each of ``splits`` equal chunks of the samples;
the mean and std over chunks are reported. p(y|x) = softmax(logits). The default logits are the
*unbiased* 1008-way logits (pool3 · Wᵀ, no bias), as in the original TensorFlow code and
torch-fidelity. With ``shuffle=True`` the samples are permuted by
``numpy.random.RandomState(seed).permutation`` first (torch-fidelity's rule), so equal seeds
give equal splits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pytest_i2i.errors import I2IInputError


def inception_score_from_logits(
    logits: Any, *, splits: int = 10, shuffle: bool = True, seed: int = 2020
) -> tuple[float, float, np.ndarray]:
    """Inception Score from logits (N, C).

    Returns:
        ``(mean, std, per_split_scores)``.

    Raises:
        I2IInputError: fewer samples than splits, or non-finite logits.
    """
    x = torch.as_tensor(np.asarray(logits.detach().cpu() if hasattr(logits, "detach") else logits),
                        dtype=torch.float64)
    if x.ndim != 2:
        raise I2IInputError(f"logits must be 2-D (N, C), got shape {tuple(x.shape)}")
    n = x.shape[0]
    if n < max(splits, 2):
        raise I2IInputError(f"Inception Score with {splits} splits needs at least {max(splits, 2)} images, got {n}")
    if not torch.isfinite(x).all():
        raise I2IInputError("logits contain NaN or Inf")
    if shuffle:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    p = x.softmax(dim=1)
    log_p = x.log_softmax(dim=1)
    scores = np.empty(splits)
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        pc, lpc = p[lo:hi], log_p[lo:hi]
        q = pc.mean(dim=0, keepdim=True)
        scores[i] = float((pc * (lpc - q.log())).sum(dim=1).mean().exp())
    return float(scores.mean()), float(scores.std()), scores


def inception_score_gap(x: Any, y: Any) -> float:
    """``|IS(y) − IS(x)|`` with one split and no shuffle: how far the Inception Score of a set of
    logits ``y`` moved from that of ``x`` (the statistic the sensitivity engine tests per edit).

    Args:
        x, y: (N, C) logits of two sets.
    """
    def score(logits: Any) -> float:
        return inception_score_from_logits(logits, splits=1, shuffle=False)[0]

    return abs(score(y) - score(x))
