"""Kernel Inception Distance: the unbiased MMD² estimate with the polynomial kernel (Bińkowski et al. 2018).

k(x, y) = (xᵀy / d + 1)³

MMD²ᵤ = 1/(m(m−1)) Σ_{i≠j} [k(xᵢ, xⱼ) + k(yᵢ, yⱼ)] − 2/m² Σ_{i,j} k(xᵢ, yⱼ)

computed on ``subsets`` random subsets of ``m = min(subset_size, n₁, n₂)`` samples from each
set; KID is the mean over subsets and its std is reported. Subsets are drawn with
``numpy.random.RandomState(seed).choice(n, m, replace=False)``, first from the first set then
the second, so with the same seed the subsets equal torch-fidelity's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_i2i.errors import I2IInputError


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    """k(x, y) = (gamma · xᵀy + coef0)^degree, with gamma = 1/d by default. Shapes (m, d), (k, d) → (m, k)."""
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * g + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                  coef0: float = 1.0) -> float:
    """Unbiased MMD² between two equally sized samples (m, d) under the polynomial kernel."""
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise I2IInputError(f"unbiased MMD² needs two samples of equal size >= 2, got {x.shape[0]} and {y.shape[0]}")
    kxx = polynomial_kernel(x, x, degree, gamma, coef0)
    kyy = polynomial_kernel(y, y, degree, gamma, coef0)
    kxy = polynomial_kernel(x, y, degree, gamma, coef0)
    sum_xx = kxx.sum() - np.trace(kxx)
    sum_yy = kyy.sum() - np.trace(kyy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * kxy.sum() / (m * m))


def kernel_inception_distance(
    real: Any, fake: Any, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
    gamma: float | None = None, coef0: float = 1.0, seed: int = 2020,
) -> tuple[float, float, np.ndarray]:
    """KID between feature sets ``real`` (n₁, d) and ``fake`` (n₂, d).

    Args:
        real, fake: feature arrays or tensors.
        subsets: number of random subsets (default 100).
        subset_size: subset size; capped at min(n₁, n₂) (default 1000).
        degree, gamma, coef0: polynomial kernel parameters (defaults 3, 1/d, 1).
        seed: seed of the subset draws (torch-fidelity's default is 2020).

    Returns:
        ``(mean, std, per_subset_values)``.

    Raises:
        I2IInputError: fewer than 2 samples in a set, or dimensions differ.
    """
    x, y = _f64(real, "real"), _f64(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise I2IInputError(f"KID: feature dimensions differ ({x.shape[1]} vs {y.shape[1]})")
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise I2IInputError(f"KID needs at least 2 samples per set, got {x.shape[0]} and {y.shape[0]}")
    rng = np.random.RandomState(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        xs = x[rng.choice(x.shape[0], m, replace=False)]
        ys = y[rng.choice(y.shape[0], m, replace=False)]
        values[i] = mmd2_unbiased(xs, ys, degree, gamma, coef0)
    return float(values.mean()), float(values.std()), values


def _f64(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().double().numpy()
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise I2IInputError(f"{name} features must be 2-D (N, D), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise I2IInputError(f"{name} features contain NaN or Inf")
    return a
