"""Maths of the learned perceptual metrics on backbone features: LPIPS, DISTS and DreamSim's distance.

Shapes: feature maps ``(N, C, h, w)`` (one per tapped layer), per-pair values ``(N,)``.

* The local distance of Zhang et al. (2018), :func:`local_distance_map`: each position's
  channel vector is unit-normalised, ``f̂ = f / (‖f‖₂ + ε)`` with ε = 1e-10 (the ``lpips``
  package's ``normalize_tensor``), and the squared differences of the two images' vectors are
  summed over channels with weights. It is the one local-distance function of the project: LPIPS
  weights the channels with its learned linear layers (:func:`lpips_layer_maps`), the unweighted
  "deep features" baseline sums them (``lin_weights=None``).
* LPIPS (Zhang et al. 2018): ``d(a, b) = Σ_l mean_{h,w} ( w_l · (f̂ᵃ_l − f̂ᵇ_l)² )`` where the
  1x1 convolution ``w_l`` (C_l → 1, no bias) is the learned linear layer of tap ``l``; with
  ``spatial`` each layer's map is upsampled bilinearly (``align_corners=False``) to the image size
  and the maps are summed, giving a per-pixel map (the mean of that map is close to, not equal to,
  the value: bilinear upsampling does not preserve the mean).
* DISTS (Ding et al. 2020): per tap ``k`` (the input image itself, then five VGG16 stages) and
  channel ``i``, with spatial means μ, variances σ² and covariance σ_xy,
  ``S1 = (2 μx μy + c1) / (μx² + μy² + c1)``, ``S2 = (2 σxy + c2) / (σx² + σy² + c2)``,
  c1 = c2 = 1e-6, and ``D = 1 − Σ_{k,i} (α_ki S1_ki + β_ki S2_ki)`` with α, β normalised by
  ``Σα + Σβ``.
* DreamSim (Fu et al. 2023): ``1 − cos(ẽa, ẽb)`` where ``ẽ = (e − mean(e)) / ‖e − mean(e)‖`` of
  the concatenated embedding ``e`` (the ``dreamsim`` package's ``normalize_embeds=True``).

The metrics compute in float32 (the reference implementations' precision, which the tests
compare against; :func:`local_distance_map` keeps its inputs' dtype, so float64 features give a
float64 map); none tracks gradients on its own (callers run it under ``torch.inference_mode``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from pytest_i2i.errors import I2IInputError

__all__ = [
    "LPIPS_EPS", "DISTS_C1", "DISTS_C2", "local_distance_map", "lpips_layer_maps", "lpips_from_layer_maps",
    "lpips_spatial_map", "dists_from_features", "dreamsim_distance",
]

#: ε of the channel normalisation f / (‖f‖₂ + ε) (``lpips.normalize_tensor``; torchmetrics uses
#: f / √(‖f‖² + 1e-8), equal to within 1e-8 except where ‖f‖ < 1e-3)
LPIPS_EPS = 1e-10
#: DISTS' stabilising constants of the structure (c1) and texture (c2) terms
DISTS_C1 = 1e-6
DISTS_C2 = 1e-6


def _check_pairs(fa: Sequence[Tensor], fb: Sequence[Tensor], what: str) -> None:
    if len(fa) != len(fb) or not fa:
        raise I2IInputError(f"{what}: need the same number (>= 1) of feature maps for both images; "
                            f"got {len(fa)} and {len(fb)}")
    for k, (x, y) in enumerate(zip(fa, fb)):
        if x.ndim != 4 or x.shape != y.shape:
            raise I2IInputError(f"{what}: feature maps of tap {k} must be (N, C, h, w) of equal shape; "
                                f"got {tuple(x.shape)} and {tuple(y.shape)}")


def local_distance_map(fa: Tensor, fb: Tensor, weights: Tensor | None = None, eps: float = LPIPS_EPS) -> Tensor:
    """The local distance of Zhang et al. (2018) at every position: ``Σ_c w_c (f̂a_c − f̂b_c)²``.

    ``f̂ = f / (‖f‖₂ + eps)`` is each position's channel vector unit-normalised (``lpips``'
    ``normalize_tensor``). This is the project's one local-distance function: LPIPS weights the
    channels with its learned linear layer (``weights``); without weights it is the squared
    Euclidean distance of the unit vectors, ``2 − 2 cos`` for non-zero vectors (in [0, 4]), the
    unweighted "deep features" baseline of the paper (``lpips.LPIPS(lpips=False)``), and divided by
    ``C`` the channel mean of the squared differences.

    It is computed as the reference writes it (normalise, subtract, square, weight), on blocks of
    about 256 K numbers of both maps at a time, so the temporaries of a block stay in the CPU's
    cache (``benchmarks/bench_lpips.py``'s breakdown: the LPIPS head took 0.048 s per pass of 64
    pairs, against 0.162 s with the expanded form ``Σ w a²/na² + Σ w b²/nb² − 2 Σ w a b / (na nb)``
    on whole maps that this replaced). The difference is taken as ``(a − b · na/nb) / na``: one pass over
    a block, exactly 0 for identical maps, within 1e-6 of the ``lpips`` package in float32
    (tested). Any memory layout is accepted; channels-last maps (the CNN trunks' output,
    or (N, h, w, C) token grids passed as ``x.permute(0, 3, 1, 2)``) are read without a copy. It
    computes in the inputs' dtype: float32 for LPIPS (as the references), float64 inputs give
    float64 results (within 1e-12 of the direct formula, tested).

    Args:
        fa, fb: (N, C, h, w) feature maps of the two images of N pairs.
        weights: (C,) or (1, C, 1, 1) channel weights (LPIPS' linear layer), or ``None`` (all 1).
        eps: added to the norms, so a zero vector is compared as a zero vector (never NaN).

    Returns:
        (N, h, w) in the inputs' dtype, non-negative for non-negative weights.

    Raises:
        I2IInputError: shapes differ or are not (N, C, h, w), or weights that are not C numbers.

    Example:
        >>> a = torch.tensor([[[[1.0]], [[0.0]]]])
        >>> b = torch.tensor([[[[0.0]], [[2.0]]]])
        >>> local_distance_map(a, b).flatten().tolist()
        [2.0]
        >>> local_distance_map(a, b, torch.tensor([0.5, 0.25])).flatten().tolist()
        [0.75]
    """
    _check_pairs([fa], [fb], "local_distance_map")
    n, c, h, w = fa.shape
    if weights is not None:
        if weights.numel() != c:
            raise I2IInputError(f"local_distance_map: {weights.numel()} weights for {c} channels")
        weights = weights.reshape(c).to(device=fa.device, dtype=fa.dtype)
    # (N·h·w, C) rows of channel vectors: a view for channels-last maps, a copy otherwise
    a = fa.permute(0, 2, 3, 1).reshape(-1, c)
    b = fb.permute(0, 2, 3, 1).reshape(-1, c).to(a.device)
    block = max(1, _BLOCK_NUMBERS // c)
    out = []
    for s in range(0, a.shape[0], block):
        xa, xb = a[s:s + block], b[s:s + block]
        na = torch.linalg.vector_norm(xa, dim=1).add_(eps)
        nb = torch.linalg.vector_norm(xb, dim=1).add_(eps)
        # a/na − b/nb = (a − b·(na/nb)) / na: one pass over the block, and exactly 0 for a == b
        diff = torch.addcmul(xa, xb, (na / nb)[:, None], value=-1)
        diff = diff.mul_(diff)
        out.append((diff.sum(1) if weights is None else torch.mv(diff, weights)).div_(na * na))
    return (out[0] if len(out) == 1 else torch.cat(out)).reshape(n, h, w)


#: numbers per block of :func:`local_distance_map` (1 MiB of float32: a block's temporaries stay in cache)
_BLOCK_NUMBERS = 1 << 18


def lpips_layer_maps(fa: Sequence[Tensor], fb: Sequence[Tensor],
                     lin_weights: Sequence[Tensor] | None) -> list[Tensor]:
    """Per tap, the linearly weighted local distance map ``w_l · (f̂ᵃ_l − f̂ᵇ_l)²`` (N, 1, h_l, w_l).

    Args:
        fa, fb: per tap, (N, C_l, h_l, w_l) feature maps of the two images.
        lin_weights: per tap, the (1, C_l, 1, 1) weight of LPIPS' 1x1 convolution; ``None`` sums
            the channels unweighted (the "deep features" baseline, ``lpips.LPIPS(lpips=False)``).

    Raises:
        I2IInputError: feature maps that do not pair up, or weights that do not fit them.
    """
    _check_pairs(fa, fb, "lpips")
    if lin_weights is not None and len(lin_weights) != len(fa):
        raise I2IInputError(f"lpips: {len(lin_weights)} linear layers for {len(fa)} tapped layers")
    maps = []
    for k, (x, y) in enumerate(zip(fa, fb)):
        w = None
        if lin_weights is not None:
            w = lin_weights[k]
            if tuple(w.shape) != (1, x.shape[1], 1, 1):
                raise I2IInputError(f"lpips: linear layer {k} has shape {tuple(w.shape)}; its tap has {x.shape[1]} "
                                    f"channels, so (1, {x.shape[1]}, 1, 1) is needed")
        maps.append(local_distance_map(x, y, w)[:, None])
    return maps


def lpips_from_layer_maps(maps: Sequence[Tensor]) -> Tensor:
    """LPIPS per pair from :func:`lpips_layer_maps`: the sum over taps of each map's spatial mean. (N,)"""
    total = maps[0].mean([2, 3], keepdim=True)
    for m in maps[1:]:
        total = total + m.mean([2, 3], keepdim=True)
    return total.flatten()


def lpips_spatial_map(maps: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
    """The per-pixel LPIPS map: each tap's map upsampled bilinearly to ``size`` (H, W), summed. (N, H, W)

    Maps on the same grid are summed before upsampling (the upsampling is linear, so the result is
    the same up to float round-off, 1e-7): AlexNet's last three taps share one 15 x 15 grid at 256 px.
    """
    by_grid: dict[tuple[int, int], Tensor] = {}
    for m in maps:
        grid = tuple(m.shape[-2:])
        by_grid[grid] = m if grid not in by_grid else by_grid[grid] + m
    total = None
    for m in by_grid.values():
        up = m if tuple(m.shape[-2:]) == tuple(size) else F.interpolate(m, size=tuple(size), mode="bilinear",
                                                                         align_corners=False)
        total = up if total is None else total + up
    return total[:, 0]


def dists_from_features(fa: Sequence[Tensor], fb: Sequence[Tensor], alpha: Tensor, beta: Tensor) -> Tensor:
    """DISTS per pair from the taps (the input image first, then the VGG16 stages). (N,)

    Args:
        fa, fb: per tap, (N, C_k, h_k, w_k) features of the two images.
        alpha, beta: (1, Σ C_k, 1, 1) learned weights of the structure and texture terms
            (normalised here by ``Σα + Σβ``, as the reference does).

    Raises:
        I2IInputError: taps that do not pair up, or weights whose size is not Σ C_k.
    """
    _check_pairs(fa, fb, "dists")
    chns = [x.shape[1] for x in fa]
    if alpha.shape != beta.shape or alpha.ndim != 4 or alpha.shape[1] != sum(chns):
        raise I2IInputError(f"dists: alpha/beta of shapes {tuple(alpha.shape)}/{tuple(beta.shape)} do not fit "
                            f"taps with {chns} channels (need (1, {sum(chns)}, 1, 1))")
    alpha, beta = alpha.to(fa[0].device), beta.to(fa[0].device)
    w_sum = alpha.sum() + beta.sum()
    alphas = torch.split(alpha / w_sum, chns, dim=1)
    betas = torch.split(beta / w_sum, chns, dim=1)
    dist1 = torch.zeros((), device=fa[0].device)
    dist2 = torch.zeros((), device=fa[0].device)
    for k, (x, y) in enumerate(zip(fa, fb)):
        x_mean = x.mean([2, 3], keepdim=True)
        y_mean = y.mean([2, 3], keepdim=True)
        s1 = (2 * x_mean * y_mean + DISTS_C1) / (x_mean ** 2 + y_mean ** 2 + DISTS_C1)
        dist1 = dist1 + (alphas[k] * s1).sum(1, keepdim=True)
        x_var = ((x - x_mean) ** 2).mean([2, 3], keepdim=True)
        y_var = ((y - y_mean) ** 2).mean([2, 3], keepdim=True)
        xy_cov = (x * y).mean([2, 3], keepdim=True) - x_mean * y_mean
        s2 = (2 * xy_cov + DISTS_C2) / (x_var + y_var + DISTS_C2)
        dist2 = dist2 + (betas[k] * s2).sum(1, keepdim=True)
    return (1 - (dist1 + dist2)).flatten()


def dreamsim_distance(ea: Tensor, eb: Tensor) -> Tensor:
    """DreamSim's distance of embedding pairs: ``1 − cos(ẽa, ẽb)``, ``ẽ = (e − mean e) / ‖e − mean e‖``.

    Args:
        ea, eb: (N, D) concatenated embeddings of the two images.

    Returns:
        (N,) float32 distances in [0, 2].

    Raises:
        I2IInputError: shapes differ or are not (N, D).

    Example:
        >>> e = torch.tensor([[1.0, 2.0, 4.0]])
        >>> dreamsim_distance(e, 3 * e + 1).abs().tolist()
        [0.0]
    """
    if ea.ndim != 2 or ea.shape != eb.shape:
        raise I2IInputError(f"dreamsim: embeddings must be (N, D) of equal shape; got {tuple(ea.shape)} and "
                            f"{tuple(eb.shape)}")
    return 1 - F.cosine_similarity(_center_unit(ea), _center_unit(eb), dim=-1)


def _center_unit(e: Tensor) -> Tensor:
    # dreamsim.model.normalize_embedding: subtract each row's mean, divide by its norm
    e = (e.T - torch.mean(e, dim=1)).T
    return (e.T / torch.norm(e, dim=1)).T
