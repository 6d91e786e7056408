"""Fréchet distance between Gaussians fitted to features, from streaming sufficient statistics.

FD(N(μ₁, Σ₁), N(μ₂, Σ₂)) = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½

The trace term equals tr √(Σ₁Σ₂) (the two matrices are similar) and is computed without a
matrix square root, from the eigenvalues only of one symmetric matrix:

* **Cholesky route** (Σ₁ numerically positive definite): Σ₁ = LLᵀ (LAPACK stores U = Lᵀ), and
  Lᵀ Σ₂ L is similar to Σ₁Σ₂, so tr √(Σ₁Σ₂) = Σ √μᵢ over the eigenvalues μᵢ of Lᵀ Σ₂ L. Three
  float64 LAPACK calls through scipy (``dpotrf``; ``dsygst``, which forms Lᵀ Σ₂ L at the cost of
  one matrix product; ``dsyevr`` for the eigenvalues only), about 2.7 k³ flops against the
  non-symmetric Schur decomposition behind ``scipy.linalg.sqrtm(Σ₁Σ₂)``. Measured faster than the
  same steps through torch (MKL ``eigvalsh``) or numpy (``benchmarks/bench_frechet.py``). Σ₁ counts as positive definite when its Cholesky factorization
  succeeds and LAPACK's reciprocal condition estimate (``dpocon``) exceeds 10·k·eps, which puts
  its smallest eigenvalue above the round-off floor below.
* **Rank-reduced route** (otherwise, e.g. fewer samples than dimensions): the pivoted Cholesky
  factorization of Σ₁ (LAPACK ``dpstrf``, O(k²p) for p pivots) gives Σ₁ ≈ F Fᵀ, F of size k x p,
  and the eigenvectors of FᵀF turn F into Σ₁'s eigenvectors scaled by the square roots of their
  eigenvalues. The rank decision is the eigh route's, made exactly without eigenvectors: r, the
  number of Σ₁'s eigenvalues above the floor, is the inertia of Σ₁ − floor·I (Sylvester's law,
  from one Bunch–Kaufman LDLᵀ factorization, ``dsytrf``, k³/3 flops). The second step works on
  the r x r matrix Aᵀ Σ₂ A, A = the top r of those scaled eigenvectors. When the pivoting stopped
  before r columns (an eigenvalue above the floor spread over pivots under the tolerance), the
  eigenvectors come from a full symmetric eigendecomposition instead (the module's previous route).

Only the lower triangle of each covariance is read (like ``numpy.linalg.eigvalsh``): a matrix
that is not exactly symmetric counts as the symmetric matrix with its lower triangle.

Round-off floor: eigenvalues at or below ``k·eps·max|λ|`` (k = matrix size) count as exactly
zero, in Σ₁ (rank-reduced route) and in the matrix of the second step (both routes), so a
rank-deficient covariance (fewer samples than dimensions) adds no √noise terms.

:func:`frechet_distance_features` computes the same distance directly from two sets of feature
rows, in the exact low-rank nuclear-norm form when the sets are smaller than the dimension.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.linalg import blas, lapack

from pytest_i2i.errors import I2IInputError

STATS_FORMAT = "pytest-i2i-feature-stats/1"


class FeatureStats:
    """Streaming float64 sufficient statistics of D-dimensional features: count, Σx and Σxxᵀ.

    Memory is O(D²) whatever the number of samples; statistics of disjoint batches (or of
    separate processes) merge exactly by adding them (``a + b`` or :meth:`merge`).

    Rows are folded into Σxxᵀ in blocks of more than D rows rather than batch by batch (one
    pass over the D x D sum per block: the per-batch update at D = 2048 was memory-bound). Until
    the first fold, that is while there are no more samples than dimensions (n ≤ D), the rows
    themselves are at hand (:attr:`rows`), at most the memory of ``outer``: two such sets get the
    exact low-rank form of the Fréchet distance (:func:`frechet_distance_stats`), O(n·m·D)
    instead of O(D³), and Σxxᵀ is never formed.

    Args:
        dim: feature dimension D.
        n, total, outer: the sums of samples seen elsewhere (e.g. read from a file, or reduced
            across processes); zero by default.
        meta: provenance (backbone, weights sha256, resize, feature name), saved with the stats.

    Attributes:
        dim, n, total, meta: as above; ``total`` is the (D,) sum of the features.
        outer: (D, D) sum of outer products (formed on first access).
        rows: (n, D) the features seen, while n ≤ D and all of them were seen by this object
            (or merged from such objects); else ``None``.

    Example:
        >>> import numpy as np
        >>> s = FeatureStats.from_features(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]]))
        >>> s.n, s.mean.tolist(), s.rows is None
        (3, [2.0, 4.0], True)
    """

    def __init__(self, dim: int, n: int = 0, total: np.ndarray | None = None, outer: np.ndarray | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.dim, self.n, self.meta = int(dim), int(n), dict(meta or {})
        self.total = np.zeros(self.dim, dtype=np.float64) if total is None else total
        self._outer = np.zeros((self.dim, self.dim), dtype=np.float64) if outer is None else outer
        self._unfolded: list[np.ndarray] = []  # row blocks not yet in _outer
        self._unfolded_n = 0
        self._kept: list[np.ndarray] | None = [] if self.n == 0 else None  # every row block, while n <= D

    def __repr__(self) -> str:
        return f"FeatureStats(dim={self.dim}, n={self.n}, meta={self.meta!r})"

    @classmethod
    def from_features(cls, features: Any, meta: dict[str, Any] | None = None) -> FeatureStats:
        x = _as_2d_float64(features)
        stats = cls(dim=x.shape[1], meta=meta)
        stats.update(x)
        return stats

    def update(self, features: Any) -> FeatureStats:
        """Add a batch of features, shape (B, D). Returns ``self``."""
        x = _as_2d_float64(features)
        if x is features or not x.flags.owndata:  # rows are kept: never a view of the caller's buffer
            x = x.copy()
        if x.shape[1] != self.dim:
            raise I2IInputError(f"features have dimension {x.shape[1]}, statistics have {self.dim}")
        if not np.isfinite(x).all():
            raise I2IInputError("features contain NaN or Inf (the backbone produced non-finite activations)")
        self.n += x.shape[0]
        self.total += x.sum(axis=0)
        self._unfolded.append(x)
        self._unfolded_n += x.shape[0]
        if self._kept is not None:
            self._kept = self._kept + [x] if self.n <= self.dim else None
        if self._unfolded_n > self.dim:
            self._fold()
        return self

    def _fold(self) -> None:
        if self._unfolded:
            block = np.concatenate(self._unfolded) if len(self._unfolded) > 1 else self._unfolded[0]
            self._outer += block.T @ block
            self._unfolded, self._unfolded_n = [], 0

    @property
    def outer(self) -> np.ndarray:
        """(D, D) sum of outer products Σxxᵀ of every sample seen."""
        self._fold()
        return self._outer

    @property
    def rows(self) -> np.ndarray | None:
        """(n, D) every feature row seen, in order, while n ≤ D; ``None`` beyond, or for sums
        that came from elsewhere (a file, another process)."""
        if self._kept is None:
            return None
        if len(self._kept) != 1:
            self._kept = [np.concatenate(self._kept) if self._kept else np.zeros((0, self.dim))]
        return self._kept[0]

    def merge(self, other: FeatureStats) -> FeatureStats:
        """A new ``FeatureStats`` holding both sets of samples."""
        if other.dim != self.dim:
            raise I2IInputError(f"cannot merge statistics of dimension {self.dim} and {other.dim}")
        merged = FeatureStats(self.dim, self.n + other.n, self.total + other.total, meta=self.meta)
        if self.rows is not None and other.rows is not None and merged.n <= self.dim:
            merged._kept = [self.rows, other.rows]
            merged._unfolded, merged._unfolded_n = list(merged._kept), merged.n
        else:
            merged._outer = self.outer + other.outer
        return merged

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
    tolerance = COV_TOLERANCE * max(scale, np.finfo(np.float64).tiny)
    if sigma.size and not _psd_within(sigma, tolerance):
        smallest = _smallest_eigenvalue(sigma)
        raise I2IInputError(f"{where}: the covariance (sigma) is not positive semi-definite (smallest eigenvalue "
                            f"{smallest:.6g}); a covariance has no negative eigenvalues")
    return mu, sigma


def _psd_within(sigma: np.ndarray, tolerance: float) -> bool:
    """Whether every eigenvalue of the symmetric ``sigma`` is >= ``-tolerance``: a Cholesky
    factorization of ``sigma + tolerance·I`` succeeds (k³/3 flops, no eigendecomposition)."""
    shifted = _upper_fortran(sigma).copy(order="F")
    shifted[np.diag_indices(sigma.shape[0])] += tolerance
    _, info = lapack.dpotrf(shifted, lower=0, clean=0, overwrite_a=1)
    return info == 0


def _smallest_eigenvalue(sigma: np.ndarray) -> float:
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
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (formula and routes in the module docstring).

    Args:
        mu1, mu2: (D,) means.
        sigma1, sigma2: (D, D) symmetric positive semi-definite covariances (lower triangles read).

    Returns:
        The distance as a Python float (float64 arithmetic; eigenvalues at or below the round-off
        floor count as 0).

    Raises:
        I2IInputError: shapes disagree, inputs are not finite, or a covariance is not positive
            semi-definite beyond round-off (:data:`COV_TOLERANCE`; ``sigma = -I`` gave 0.0): checked
            on the way (a negative variance, a negative eigenvalue of Σ₁ in the rank-reduced route or
            of the second step's matrix), at no extra cost on the Cholesky route.

    Example:
        >>> import numpy as np
        >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2))
        2.0
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    if d < 0 or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise I2IInputError(
            f"Fréchet distance needs means (D,) and covariances (D, D) of one D; got {mu1.shape}, {s1.shape}, "
            f"{mu2.shape}, {s2.shape}"
        )
    for name, arr in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.isfinite(arr).all():
            raise I2IInputError(f"Fréchet distance input {name} contains NaN or Inf")
    for name, sig in (("sigma1", s1), ("sigma2", s2)):
        if d and float(np.diagonal(sig).min()) < 0:
            raise I2IInputError(f"Fréchet distance: {name} is not a covariance: it has a negative variance "
                                f"({float(np.diagonal(sig).min()):.6g} on its diagonal)")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * _trace_sqrt_product(s1, s2))


def frechet_distance_stats(a: FeatureStats | GaussianStats, b: FeatureStats | GaussianStats) -> float:
    """Fréchet distance between the Gaussians of two statistics.

    When both sides kept their feature rows (:class:`FeatureStats` with n ≤ D), the exact low-rank
    form of :func:`frechet_distance_features` (O(n·m·D), no D x D factorization); otherwise
    :func:`frechet_distance` on the means and covariances. Both forms are exact and agree to
    round-off (tested).
    """
    rows_a, rows_b = getattr(a, "rows", None), getattr(b, "rows", None)
    if rows_a is not None and rows_b is not None and min(rows_a.shape[0], rows_b.shape[0]) >= 2:
        return frechet_distance_features(rows_a, rows_b)
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


# A covariance is read through its lower triangle only (numpy's row-major view), as LAPACK reads
# one triangle: the Fortran-ordered transpose ``s.T`` of a row-major ``s`` is handed to LAPACK and
# BLAS with uplo "U", which is s's lower triangle, and nothing is copied that need not be.


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr √(Σ₁Σ₂) = tr (Σ₁^½ Σ₂ Σ₁^½)^½ for float64 (D, D) covariances (no validation).

    The Cholesky route when Σ₁ is numerically positive definite, the rank-reduced route otherwise
    (module docstring). Eigenvalues at or below the round-off floor count as zero.
    """
    d = sigma1.shape[0]
    if d == 0:
        return 0.0
    s1, s2 = _upper_fortran(sigma1), _upper_fortran(sigma2)
    u, info = lapack.dpotrf(s1, lower=0, clean=0)  # Σ₁ = UᵀU
    if info == 0 and _well_conditioned(u, sigma1):
        m, info = lapack.dsygst(s2, u, itype=2, lower=0)  # U Σ₂ Uᵀ, similar to Σ₂Σ₁
        if info != 0:  # pragma: no cover - LAPACK argument error, not a property of the data
            raise RuntimeError(f"dsygst argument {-info} was illegal")
        return _sum_sqrt_above_floor(_eigvals_lower(m.T, overwrite=True))  # m's upper = m.T's lower
    return _trace_sqrt_rank_reduced(sigma1, sigma2)


def _upper_fortran(sigma: np.ndarray) -> np.ndarray:
    """``sigma`` as a Fortran-ordered array whose upper triangle is sigma's lower triangle."""
    return np.ascontiguousarray(sigma).T


def _well_conditioned(u: np.ndarray, sigma1: np.ndarray) -> bool:
    """Whether λ_min(Σ₁) clears the round-off floor ``k·eps·λ_max``, from the Cholesky factor.

    λ_min ≥ 1/‖Σ₁⁻¹‖₁ and λ_max ≤ ‖Σ₁‖₁, so rcond = 1/(‖Σ₁‖₁ ‖Σ₁⁻¹‖₁) > k·eps suffices; LAPACK
    estimates ‖Σ₁⁻¹‖₁ from below (typically within a factor 3), hence the margin of 10.
    """
    d = sigma1.shape[0]
    anorm = float(np.abs(sigma1).sum(axis=0).max())  # ‖Σ₁‖₁ (both triangles: an estimate's input)
    rcond, info = lapack.dpocon(u, anorm, uplo="U")
    return info == 0 and rcond > 10.0 * d * _EPS


def _sym_times(sigma: np.ndarray, a: np.ndarray) -> np.ndarray:
    """S @ a for the symmetric S with sigma's lower triangle (BLAS dsymm)."""
    return blas.dsymm(1.0, _upper_fortran(sigma), np.asfortranarray(a), side=0, lower=0)


def _trace_sqrt_rank_reduced(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    d = sigma1.shape[0]
    # pivoted Cholesky stops at the first non-positive pivot and so cannot see a negative
    # eigenvalue: Σ₁ is checked positive semi-definite (to COV_TOLERANCE) by its inertia
    tolerance = COV_TOLERANCE * max(float(np.abs(sigma1).max()), np.finfo(np.float64).tiny)
    if _count_eigenvalues_above(sigma1, -tolerance) < d:
        raise I2IInputError("Fréchet distance: sigma1 is not positive semi-definite (it has an eigenvalue below "
                            f"-{tolerance:.3g}); a covariance has no negative eigenvalues")
    # Σ₁'s numerical range: pivoted Cholesky, Pᵀ Σ₁ P ≈ Uᵀ U, pivoting stops once every remaining
    # diagonal entry is at or below k·eps·max diag(Σ₁)
    c, piv, rank, info = lapack.dpstrf(_upper_fortran(sigma1), tol=d * _EPS * float(np.diagonal(sigma1).max()),
                                       lower=0)
    if info < 0:  # pragma: no cover - LAPACK argument error, not a property of the data
        raise RuntimeError(f"dpstrf argument {-info} was illegal")
    if rank == 0:
        return 0.0
    f = np.empty((d, rank))
    f[piv - 1] = np.triu(c[:rank]).T  # Σ₁ ≈ F Fᵀ
    lam, vecs = np.linalg.eigh(f.T @ f)  # ≈ Σ₁'s top `rank` eigenvalues, ascending
    # the rank decision of the eigh route: r eigenvalues of Σ₁ itself above the floor, counted
    # exactly (Sylvester's law of inertia) from an LDLᵀ factorization of Σ₁ − floor·I
    r = _count_eigenvalues_above(sigma1, _noise_floor(float(lam[-1]), d))
    if r == 0:
        return 0.0
    if r > rank:  # an eigenvalue above the floor spread over pivots under the tolerance
        return _trace_sqrt_eigh(sigma1, sigma2)
    a = f @ vecs[:, rank - r:]  # = V_r Λ_r^½ up to column signs: the top r directions
    return _sum_sqrt_above_floor(_eigvalsh(a.T @ _sym_times(sigma2, a)))


def _count_eigenvalues_above(sigma: np.ndarray, tau: float) -> int:
    """How many eigenvalues of the symmetric matrix with sigma's lower triangle exceed ``tau``.

    The inertia of S − τI from its Bunch–Kaufman factorization P(S − τI)Pᵀ = U D Uᵀ (LAPACK
    dsytrf, k³/3 flops): each 2 x 2 block of D has one positive and one negative eigenvalue, each
    1 x 1 block is its own eigenvalue.
    """
    d = sigma.shape[0]
    shifted = _upper_fortran(sigma).copy(order="F")
    shifted[np.diag_indices(d)] -= tau
    lwork, _ = lapack.dsytrf_lwork(d, lower=0)
    ldu, ipiv, info = lapack.dsytrf(shifted, lower=0, lwork=int(lwork), overwrite_a=1)
    if info < 0:  # pragma: no cover - LAPACK argument error, not a property of the data
        raise RuntimeError(f"dsytrf argument {-info} was illegal")
    one_by_one = ipiv > 0
    return int((np.diagonal(ldu)[one_by_one] > 0).sum()) + int((~one_by_one).sum()) // 2


def _eigvals_lower(sigma: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Eigenvalues of the symmetric matrix with sigma's lower triangle (LAPACK dsyevr, no vectors)."""
    d = sigma.shape[0]
    lwork, liwork, _ = lapack.dsyevr_lwork(d, lower=0)
    ev, _, _, _, info = lapack.dsyevr(_upper_fortran(sigma), compute_v=0, lower=0, lwork=int(lwork),
                                      liwork=int(liwork), overwrite_a=int(overwrite))
    if info != 0:  # pragma: no cover - LAPACK convergence failure on a finite symmetric matrix
        raise RuntimeError(f"dsyevr failed (info={info})")
    return ev


def _trace_sqrt_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Σ₁^½ from a full symmetric eigendecomposition; its eigenvalues at or below the floor dropped."""
    w, v = np.linalg.eigh(sigma1, UPLO="L")
    keep = w > _noise_floor(float(np.abs(w).max()), w.size)
    # Σ₁^½ = V_r Λ_r^½ V_rᵀ over the r eigenvalues above round-off, and the non-zero eigenvalues of
    # Σ₁^½ Σ₂ Σ₁^½ are those of the r x r matrix Aᵀ Σ₂ A with A = V_r Λ_r^½.
    a = v[:, keep] * np.sqrt(w[keep])
    return _sum_sqrt_above_floor(_eigvalsh(a.T @ _sym_times(sigma2, a)))


def _eigvalsh(m: np.ndarray) -> np.ndarray:
    return np.linalg.eigvalsh((m + m.T) * 0.5) if m.size else np.zeros(0)


def _sum_sqrt_above_floor(eigenvalues: np.ndarray) -> float:
    """Σ √λ over the eigenvalues of the second step (similar to Σ₁^½ Σ₂ Σ₁^½) above the round-off
    floor; one below ``-COV_TOLERANCE·max|λ|`` means Σ₂ is not positive semi-definite (refused)."""
    if eigenvalues.size == 0:
        return 0.0
    top = float(np.abs(eigenvalues).max())
    if float(eigenvalues.min()) < -COV_TOLERANCE * top:
        raise I2IInputError(f"Fréchet distance: sigma2 is not positive semi-definite (Σ₁^½ Σ₂ Σ₁^½ has the "
                            f"eigenvalue {float(eigenvalues.min()):.6g}); a covariance has no negative eigenvalues")
    ev = eigenvalues[eigenvalues > _noise_floor(float(np.abs(eigenvalues).max()), eigenvalues.size)]
    return float(np.sqrt(ev).sum())


_EPS = float(np.finfo(np.float64).eps)


def _noise_floor(max_abs_eigenvalue: float, k: int) -> float:
    """Eigenvalues at or below this are round-off of a zero eigenvalue (LAPACK's rank tolerance)."""
    return k * _EPS * max_abs_eigenvalue


def frechet_distance_features(x: Any, y: Any) -> float:
    r"""Fréchet distance between Gaussians fitted to two sets of feature rows (unbiased covariances).

    With :math:`A = (X - \bar x)^\top / \sqrt{n-1}` (so :math:`\Sigma_x = A A^\top`) and :math:`B`
    likewise for ``y``, the non-zero eigenvalues of :math:`\Sigma_x \Sigma_y` are those of
    :math:`(B^\top A)^\top (B^\top A)`, so :math:`\operatorname{tr}\sqrt{\Sigma_x \Sigma_y} = \|B^\top A\|_*`
    (nuclear norm, from singular values only) and

    .. math:: \text{FD} = \|\bar x - \bar y\|^2 + \|A\|_F^2 + \|B\|_F^2 - 2 \|B^\top A\|_*

    at :math:`O(nmD)` cost for ``n``, ``m`` rows of dimension ``D``: fast enough for permutation
    tests. When both sets are large enough that forming the :math:`D \times D` covariances is
    cheaper, the covariances go to :func:`frechet_distance` (its Cholesky route) instead. Both
    forms are exact; they agree to round-off (tested). Round-off below zero is clamped to 0.

    Args:
        x: (n, D) features of the first set, n >= 2 (numpy array or tensor).
        y: (m, D) features of the second set, m >= 2.

    Returns:
        The distance as a Python float (float64 arithmetic).

    Raises:
        I2IInputError: an input is not 2-D, has fewer than 2 rows, the dimensions differ, or it
        holds NaN/Inf.

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
        >>> round(frechet_distance_features(x, x + 1.0), 12)
        2.0
    """
    xs = _as_2d_float64(x, "frechet_distance_features: x")
    ys = _as_2d_float64(y, "frechet_distance_features: y")
    for name, arr in (("x", xs), ("y", ys)):
        if arr.shape[0] < 2:
            raise I2IInputError(f"frechet_distance_features: {name} needs at least 2 rows, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise I2IInputError(f"frechet_distance_features: {name} contains NaN or Inf")
    n, d = xs.shape
    m = ys.shape[0]
    if ys.shape[1] != d:
        raise I2IInputError(f"frechet_distance_features: x has dimension {d}, y has dimension {ys.shape[1]}")
    mx, my = xs.mean(axis=0), ys.mean(axis=0)
    xc, yc = xs - mx, ys - my
    diff = mx - my
    small, large = sorted((n, m))
    if 2 * n * m * d + 4 * small * small * large <= 2 * (n + m) * d * d + 4 * d ** 3:
        a_sq = float(np.einsum("ij,ij->", xc, xc)) / (n - 1)
        b_sq = float(np.einsum("ij,ij->", yc, yc)) / (m - 1)
        nuclear = float(np.linalg.svd(yc @ xc.T, compute_uv=False).sum()) / float(np.sqrt((n - 1) * (m - 1)))
        value = float(diff @ diff) + a_sq + b_sq - 2.0 * nuclear
    else:
        value = frechet_distance(mx, xc.T @ xc / (n - 1), my, yc.T @ yc / (m - 1))
    return float(max(value, 0.0))


def _as_2d_float64(features: Any, name: str = "features") -> np.ndarray:
    if hasattr(features, "detach"):
        features = features.detach().cpu().double().numpy()
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise I2IInputError(f"{name} must be a 2-D array (N, D), got shape {x.shape}")
    return x
