"""Fréchet distance between Gaussians fitted to features, from streaming sufficient statistics.

FD(N(μ₁, Σ₁), N(μ₂, Σ₂)) = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½

The trace term is computed in its symmetric form with two symmetric eigendecompositions:
Σ₁^½ = V diag(√λ) Vᵀ from ``eigh(Σ₁)``, then Σ √μᵢ over the eigenvalues μᵢ of Σ₁^½ Σ₂ Σ₁^½.
This equals tr √(Σ₁Σ₂) (the two matrices are similar) without the non-symmetric
``scipy.linalg.sqrtm`` and its complex round-off. Clamping: eigenvalues at or below the round-off
floor ``k·eps·max|λ|`` (k = matrix size) count as exactly zero, so a rank-deficient covariance
(fewer samples than dimensions) adds no √noise terms; its null space is dropped before the
second step, which then works on an r x r matrix (r = rank of Σ₁).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_i2i.errors import I2IInputError

STATS_FORMAT = "pytest-i2i-feature-stats/1"


@dataclass
class FeatureStats:
    """Streaming float64 sufficient statistics of D-dimensional features: count, Σx and Σxxᵀ.

    Memory is O(D²) whatever the number of samples; statistics of disjoint batches (or of
    separate processes) merge exactly by adding them (``a + b`` or :meth:`merge`).

    Attributes:
        dim: feature dimension D.
        n: number of feature vectors seen.
        total: (D,) sum of the features.
        outer: (D, D) sum of outer products.
        meta: provenance (backbone, weights sha256, resize, feature name), saved with the stats.
    """

    dim: int
    n: int = 0
    total: np.ndarray | None = None
    outer: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.total is None:
            self.total = np.zeros(self.dim, dtype=np.float64)
        if self.outer is None:
            self.outer = np.zeros((self.dim, self.dim), dtype=np.float64)

    @classmethod
    def from_features(cls, features: Any, meta: dict[str, Any] | None = None) -> FeatureStats:
        x = _as_2d_float64(features)
        stats = cls(dim=x.shape[1], meta=dict(meta or {}))
        stats.update(x)
        return stats

    def update(self, features: Any) -> FeatureStats:
        """Add a batch of features, shape (B, D). Returns ``self``."""
        x = _as_2d_float64(features)
        if x.shape[1] != self.dim:
            raise I2IInputError(f"features have dimension {x.shape[1]}, statistics have {self.dim}")
        if not np.isfinite(x).all():
            raise I2IInputError("features contain NaN or Inf (the backbone produced non-finite activations)")
        self.n += x.shape[0]
        self.total += x.sum(axis=0)
        self.outer += x.T @ x
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """A new ``FeatureStats`` holding both sets of samples."""
        if other.dim != self.dim:
            raise I2IInputError(f"cannot merge statistics of dimension {self.dim} and {other.dim}")
        return FeatureStats(self.dim, self.n + other.n, self.total + other.total, self.outer + other.outer,
                            dict(self.meta))

    __add__ = merge

    @property
    def mean(self) -> np.ndarray:
        self._need(1)
        return self.total / self.n

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance (divides by n − 1), like ``np.cov`` and pytorch-fid."""
        self._need(2)
        mu = self.mean
        cov = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return (cov + cov.T) / 2

    def _need(self, k: int) -> None:
        if self.n < k:
            raise I2IInputError(f"need at least {k} samples for these statistics, have {self.n}")

    def save(self, path: str | os.PathLike) -> Path:
        """Save as ``.npz``: the sums, plus ``mu``/``sigma`` (readable by pytorch-fid) and JSON metadata."""
        p = Path(path)
        np.savez(
            p, format=STATS_FORMAT, n=self.n, total=self.total, outer=self.outer,
            mu=self.mean, sigma=self.cov if self.n >= 2 else np.zeros_like(self.outer),
            meta=json.dumps(self.meta, sort_keys=True),
        )
        return p if p.suffix == ".npz" else p.with_name(p.name + ".npz")


@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance only (e.g. a pytorch-fid ``.npz`` reference file)."""

    mean: np.ndarray
    cov: np.ndarray
    n: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


#: a covariance may be asymmetric, or have negative eigenvalues, by this much relative to its largest
#: entry / eigenvalue (float64 round-off of np.cov and of the streaming sums is ~1e-13)
COV_TOLERANCE = 1e-6


def check_gaussian(mean: Any, cov: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, cov)`` as float64 arrays, checked: mean 1-D (D,), cov (D, D), finite, symmetric and
    positive semi-definite (to :data:`COV_TOLERANCE`).

    A covariance that is not positive semi-definite (e.g. ``-I``) is no covariance: the Fréchet
    formula would return a number (``sigma = -I`` gives 0.0 or a negative distance) that means nothing.

    Raises:
        I2IInputError: naming ``where`` (e.g. the statistics file) and what is wrong.
    """
    mu, sigma = np.asarray(mean, dtype=np.float64), np.asarray(cov, dtype=np.float64)
    if mu.ndim != 1 or mu.shape[0] < 1:
        raise I2IInputError(f"{where}: the mean (mu) must be a 1-D vector of D values, got shape {mu.shape}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise I2IInputError(f"{where}: the covariance (sigma) must be ({d}, {d}) for a mean of {d} values, "
                            f"got shape {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise I2IInputError(f"{where}: the mean or covariance contains NaN or Inf")
    scale = float(np.abs(sigma).max()) if sigma.size else 0.0
    asym = float(np.abs(sigma - sigma.T).max()) if sigma.size else 0.0
    if asym > COV_TOLERANCE * max(scale, np.finfo(np.float64).tiny):
        raise I2IInputError(f"{where}: the covariance (sigma) is not symmetric (largest |sigma - sigma.T| = {asym:.3g} "
                            f"for entries up to {scale:.3g})")
    smallest = _smallest_eigenvalue(sigma)
    if smallest < -COV_TOLERANCE * max(scale, np.finfo(np.float64).tiny):
        raise I2IInputError(f"{where}: the covariance (sigma) is not positive semi-definite (smallest eigenvalue "
                            f"{smallest:.6g}); a covariance has no negative eigenvalues")
    return mu, sigma


def _smallest_eigenvalue(sigma: np.ndarray) -> float:
    if sigma.size == 0:
        return 0.0
    diag = float(np.diag(sigma).min())
    if diag < 0:  # a negative variance: no eigendecomposition needed
        return diag
    return float(np.linalg.eigvalsh((sigma + sigma.T) / 2)[0])


def load_stats(path: str | os.PathLike) -> FeatureStats | GaussianStats:
    """Read statistics saved by :meth:`FeatureStats.save` or a pytorch-fid ``mu``/``sigma`` ``.npz``.

    Every array is checked (:func:`check_gaussian`): a 1-D mean, a square, finite, symmetric,
    positive semi-definite covariance of the same dimension, a sample count >= 0.

    Raises:
        I2IInputError: the file is missing, not a regular file, not a readable ``.npz``, or holds
            statistics that are not a Gaussian's (the message names the file and the array).
    """
    from pytest_i2i.files import regular_file

    p = regular_file(path, "statistics file")
    where = f"statistics file {p}"
    try:
        with np.load(p, allow_pickle=False) as f:
            keys = set(f.files)
            if {"total", "outer", "n"} <= keys:
                meta = json.loads(str(f["meta"])) if "meta" in keys else {}
                if not isinstance(meta, dict):
                    raise I2IInputError(f"{where}: 'meta' must be a JSON object, got {type(meta).__name__}")
                total, outer, n = f["total"].astype(np.float64), f["outer"].astype(np.float64), f["n"]
                if n.shape != () or not np.issubdtype(n.dtype, np.integer) or int(n) < 0:
                    raise I2IInputError(f"{where}: 'n' must be a non-negative integer, got {n!r}")
                if total.ndim != 1 or outer.shape != (total.shape[0],) * 2:
                    raise I2IInputError(f"{where}: 'total' must be (D,) and 'outer' (D, D), got {total.shape} and "
                                        f"{outer.shape}")
                stats = FeatureStats(int(total.shape[0]), int(n), total, outer, meta)
                if stats.n >= 2:
                    check_gaussian(stats.mean, stats.cov, where)
                elif not (np.isfinite(total).all() and np.isfinite(outer).all()):
                    raise I2IInputError(f"{where}: the sums contain NaN or Inf")
                return stats
            if {"mu", "sigma"} <= keys:
                mu, sigma = check_gaussian(f["mu"], f["sigma"], where)
                return GaussianStats(mu, sigma)
    except I2IInputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        raise I2IInputError(f"{where} is not a readable .npz ({type(e).__name__}: {e})") from None
    raise I2IInputError(f"{where} has neither pytest-i2i sums nor pytorch-fid mu/sigma (keys {sorted(keys)})")


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (formula in the module docstring).

    Args:
        mu1, mu2: (D,) means.
        sigma1, sigma2: (D, D) symmetric positive semi-definite covariances.

    Returns:
        The distance as a Python float (float64 arithmetic; negative eigenvalues from round-off
        are clamped to 0).

    Raises:
        I2IInputError: shapes disagree, inputs are not finite, or a covariance is not symmetric
            positive semi-definite (beyond round-off).

    Example:
        >>> import numpy as np
        >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2))
        2.0
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.ndim != 1 or mu2.ndim != 1:
        raise I2IInputError(f"Fréchet distance needs 1-D means (D,); got shapes {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise I2IInputError(
            f"Fréchet distance needs means (D,) and covariances (D, D) of one D; got {mu1.shape}, {s1.shape}, "
            f"{mu2.shape}, {s2.shape}"
        )
    for arr in (mu1, mu2, s1, s2):
        if not np.isfinite(arr).all():
            raise I2IInputError("Fréchet distance inputs contain NaN or Inf")
    for label, sig in (("sigma1", s1), ("sigma2", s2)):
        scale = max(float(np.abs(sig).max()) if sig.size else 0.0, np.finfo(np.float64).tiny)
        if sig.size and (float(np.abs(sig - sig.T).max()) > COV_TOLERANCE * scale or float(np.diag(sig).min()) < 0):
            raise I2IInputError(f"Fréchet distance: {label} is not a covariance (not symmetric, or a negative variance)")
    diff = mu1 - mu2
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    if w.size and w[0] < -COV_TOLERANCE * max(float(np.abs(w).max()), np.finfo(np.float64).tiny):
        raise I2IInputError(f"Fréchet distance: sigma1 is not positive semi-definite (smallest eigenvalue {w[0]:.6g})")
    keep = w > _noise_floor(w)
    # Σ₁^½ = V_r Λ_r^½ V_rᵀ over the r eigenvalues above round-off, and the non-zero eigenvalues of
    # Σ₁^½ Σ₂ Σ₁^½ are those of the r x r matrix Aᵀ Σ₂ A with A = V_r Λ_r^½.
    a = v[:, keep] * np.sqrt(w[keep])
    m = a.T @ s2 @ a
    ev = np.linalg.eigvalsh((m + m.T) / 2) if m.size else np.zeros(0)
    if ev.size and ev[0] < -COV_TOLERANCE * max(float(np.abs(ev).max()), np.finfo(np.float64).tiny):
        raise I2IInputError("Fréchet distance: sigma2 is not positive semi-definite (negative eigenvalues in the "
                            f"span of sigma1: {ev[0]:.6g})")
    tr_covmean = float(np.sqrt(ev[ev > _noise_floor(ev)]).sum())
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def _noise_floor(eigenvalues: np.ndarray) -> float:
    """Eigenvalues at or below this are round-off of a zero eigenvalue (LAPACK's rank tolerance)."""
    if eigenvalues.size == 0:
        return 0.0
    return eigenvalues.size * np.finfo(np.float64).eps * max(float(np.abs(eigenvalues).max()), 0.0)


def _as_2d_float64(features: Any) -> np.ndarray:
    if hasattr(features, "detach"):
        features = features.detach().cpu().double().numpy()
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise I2IInputError(f"features must be a 2-D array (N, D), got shape {x.shape}")
    return x


def frechet_distance_features(x: np.ndarray, y: np.ndarray) -> float:
    r"""Fréchet distance between Gaussians fitted to feature rows, in its exact low-rank form.

    With :math:`A = (X - \bar x)^\top / \sqrt{n-1}` (so :math:`\Sigma_x = A A^\top`, unbiased) and
    :math:`B` likewise for ``y``, the nonzero eigenvalues of :math:`\Sigma_x \Sigma_y` are those of
    :math:`(B^\top A)^\top (B^\top A)`, so :math:`\operatorname{tr}\sqrt{\Sigma_x \Sigma_y} = \|B^\top A\|_*`
    (nuclear norm) and

    .. math:: \text{FD} = \|\bar x - \bar y\|^2 + \|A\|_F^2 + \|B\|_F^2 - 2 \|B^\top A\|_*

    the same value as :func:`frechet_distance` on the
    full covariances (tested to 1e-6 relative), at :math:`O(n^2 D)` instead of :math:`O(D^3)`:
    fast enough for permutation tests.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    a = (x - x.mean(0)).T / math.sqrt(len(x) - 1)
    b = (y - y.mean(0)).T / math.sqrt(len(y) - 1)
    nuclear = np.linalg.svd(b.T @ a, compute_uv=False).sum()
    value = float(((x.mean(0) - y.mean(0)) ** 2).sum() + (a**2).sum() + (b**2).sum() - 2.0 * nuclear)
    return max(value, 0.0)
