"""Detection statistics: does a metric separate edited images from nuisance-transformed ones?

* :func:`auroc`: the area under the ROC curve of a score that should be larger for positives,
  with ties counted one half, i.e. the Mann-Whitney statistic
  ``AUROC = U / (n1 n2) = P(X > Y) + P(X = Y) / 2`` (X a positive's score, Y a negative's).
* :func:`detection_auroc`: the same, sign-aware: a distance is larger for edits, a similarity
  smaller (its negation is the score).
* :func:`permutation_test`: significance of a set-level statistic ``T(x, y)`` (e.g. FID between
  the original and the edited set) by permuting which set each sample belongs to.

Pure numpy/scipy, no I/O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_i2i.errors import I2IInputError

__all__ = ["PermutationResult", "auroc", "detection_auroc", "permutation_test"]


def _scores(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise I2IInputError(f"`{name}` must be a sequence of numbers") from None
    if arr.size == 0:
        raise I2IInputError(f"`{name}` is empty")
    if np.isnan(arr).any():
        raise I2IInputError(f"`{name}` contains NaN (index {int(np.flatnonzero(np.isnan(arr))[0])})")
    return arr


def auroc(positives: Any, negatives: Any) -> float:
    r"""Area under the ROC curve of scores that should be larger for ``positives``.

    .. math::
        \text{AUROC} = \frac{U}{n_1 n_2}, \qquad U = R_1 - \frac{n_1 (n_1 + 1)}{2}

    with :math:`R_1` the sum of the positives' mid-ranks in the pooled sample (ties get the mean
    of their ranks), which equals :math:`P(X > Y) + \tfrac12 P(X = Y)`. ``+inf`` / ``-inf``
    scores are allowed (e.g. PSNR of identical images) and compare as usual.

    Args:
        positives: scores of the positives (e.g. a distance between an image and its edited copy).
        negatives: scores of the negatives (e.g. the distance to a nuisance-transformed copy).

    Returns:
        AUROC in [0, 1]: 1 when every positive scores above every negative, 0.5 for chance.

    Raises:
        I2IInputError: an empty input or NaN scores.

    Example:
        >>> auroc([3.0, 2.0, 2.0], [1.0, 2.0])
        0.8333333333333334
    """
    from scipy.stats import rankdata

    x, y = _scores(positives, "positives"), _scores(negatives, "negatives")
    ranks = rankdata(np.concatenate([x, y]), method="average")
    n1, n2 = len(x), len(y)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    return float(u / (n1 * n2))


def detection_auroc(edited: Any, nuisance: Any, *, higher_is_more_similar: bool) -> float:
    """AUROC of a paired metric for telling edited copies from nuisance copies.

    For a distance (``higher_is_more_similar=False``) the score is the metric itself; for a
    similarity (SSIM, PSNR, DINO-I, ...) it is its negation, so in both cases 1 means every
    edited copy is further from its original than every nuisance copy.
    """
    sign = -1.0 if higher_is_more_similar else 1.0
    return auroc(sign * _scores(edited, "edited"), sign * _scores(nuisance, "nuisance"))


@dataclass(frozen=True)
class PermutationResult:
    """Outcome of :func:`permutation_test`.

    Attributes:
        observed: the statistic on the unpermuted sets.
        p_value: one-sided p-value for "larger than under exchangeability".
        null: the statistic under each permutation (the null distribution used).
        n_permutations: number of permutations used.
        exact: whether every distinct permutation was enumerated.
        scheme: ``"paired"`` or ``"independent"``.
    """

    observed: float
    p_value: float
    null: np.ndarray
    n_permutations: int
    exact: bool
    scheme: str


def permutation_test(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    x: Any,
    y: Any,
    *,
    paired: bool = True,
    n_permutations: int = 999,
    seed: int = 0,
) -> PermutationResult:
    r"""One-sided permutation test of ``statistic(x, y)`` (large = the sets differ).

    What is permuted:

    * ``paired=True`` (``x[i]`` and ``y[i]`` belong together, e.g. an image and its edited
      copy): each pair's two members swap sets independently with probability 1/2 (the null
      hypothesis: the edit does not change the distribution, so labels within a pair are
      exchangeable).
    * ``paired=False``: the pooled rows are re-split at random into sets of the original sizes.

    When the number of distinct relabellings (``2**n`` paired, ``C(n1+n2, n1)`` independent)
    is at most ``n_permutations``, all of them are enumerated (the identity included) and
    :math:`p = \#\{T^* \ge T_{obs}\} / N`, as ``scipy.stats.permutation_test`` computes it. Otherwise
    ``n_permutations`` relabellings are drawn with ``numpy.random.default_rng(seed)`` and
    :math:`p = (1 + \#\{T^* \ge T_{obs}\}) / (1 + B)`. Comparisons allow a relative tolerance of 1e-12.

    Args:
        statistic: ``(x, y) -> float`` on arrays of rows.
        x, y: arrays of shape ``(n, ...)`` (paired: the same ``n``).
        paired: the permutation scheme (above).
        n_permutations: the number of random relabellings ``B`` (>= 1).
        seed: seed of the relabellings.

    Returns:
        A :class:`PermutationResult`.

    Raises:
        I2IInputError: mismatched or too small inputs, a bad ``n_permutations``, or a
            non-finite statistic.
    """
    xa, ya = np.asarray(x), np.asarray(y)
    if xa.ndim == 0 or ya.ndim == 0 or len(xa) < 1 or len(ya) < 1:
        raise I2IInputError("`x` and `y` must be non-empty arrays of rows")
    if paired and xa.shape != ya.shape:
        raise I2IInputError(f"paired permutation needs `x` and `y` of the same shape; got {xa.shape} and {ya.shape}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int) or n_permutations < 1:
        raise I2IInputError(f"`n_permutations` must be a positive int; got {n_permutations!r}")

    def stat(a: np.ndarray, b: np.ndarray) -> float:
        value = float(statistic(a, b))
        if not math.isfinite(value):
            raise I2IInputError(f"the statistic is not finite ({value}) on a permutation")
        return value

    observed = stat(xa, ya)
    n = len(xa)
    null: list[float] = []
    if paired:
        exact = 2**n <= n_permutations
        if exact:
            swaps_iter: Any = (np.array(bits, dtype=bool) for bits in itertools.product((False, True), repeat=n))
        else:
            rng = np.random.default_rng(seed)
            swaps_iter = (rng.random(n) < 0.5 for _ in range(n_permutations))
        expand = (slice(None),) + (None,) * (xa.ndim - 1)
        for swap in swaps_iter:
            s = swap[expand]
            null.append(stat(np.where(s, ya, xa), np.where(s, xa, ya)))
    else:
        pooled = np.concatenate([xa, ya])
        n1, total = len(xa), len(xa) + len(ya)
        exact = math.comb(total, n1) <= n_permutations
        if exact:
            splits: Any = itertools.combinations(range(total), n1)
        else:
            rng = np.random.default_rng(seed)
            splits = (rng.permutation(total)[:n1] for _ in range(n_permutations))
        for first in splits:
            chosen = np.zeros(total, dtype=bool)
            chosen[list(first)] = True
            null.append(stat(pooled[chosen], pooled[~chosen]))
    null_arr = np.asarray(null)
    hits = int((null_arr >= observed - 1e-12 * max(1.0, abs(observed))).sum())
    p = hits / len(null_arr) if exact else (1 + hits) / (1 + len(null_arr))
    return PermutationResult(observed=observed, p_value=float(p), null=null_arr, n_permutations=len(null_arr),
                             exact=exact, scheme="paired" if paired else "independent")
