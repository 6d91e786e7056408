"""The maths of the CLIP metrics, on embeddings: CLIPScore, CLIP-I, directional similarity, CMMD.

Every function takes embedding tensors (or arrays) and computes in float64. Embeddings are
L2-normalised here, so callers pass the raw encoder outputs.

>>> import torch
>>> img, txt = torch.tensor([[3.0, 4.0]]), torch.tensor([[4.0, 3.0]])
>>> clip_score(img, txt)             # 2.5 · max(cos, 0), cos = 24/25
tensor([2.4000], dtype=torch.float64)
"""

from __future__ import annotations

from typing import Any

import torch

from pytest_i2i.errors import I2IInputError


def normalize_embeddings(x: Any, *, name: str = "embeddings") -> torch.Tensor:
    """Rows of ``x`` divided by their L2 norm, in float64.

    Args:
        x: (N, D) embeddings.
        name: used in error messages.

    Returns:
        (N, D) float64 tensor of unit rows.

    Raises:
        I2IInputError: not 2-D, non-finite values, or a zero row (its direction is undefined).

    Example:
        >>> normalize_embeddings(torch.tensor([[3.0, 4.0]]))
        tensor([[0.6000, 0.8000]], dtype=torch.float64)
    """
    t = torch.as_tensor(x).detach().cpu().to(torch.float64)
    if t.ndim != 2:
        raise I2IInputError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise I2IInputError(f"{name} contain NaN or Inf")
    norms = t.norm(dim=1, keepdim=True)
    zero = (norms[:, 0] == 0).nonzero().flatten().tolist()
    if zero:
        raise I2IInputError(f"{name} rows {zero[:10]} are zero vectors; their direction is undefined")
    return t / norms


def _pair(a: Any, b: Any, names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = normalize_embeddings(a, name=names[0]), normalize_embeddings(b, name=names[1])
    if x.shape != y.shape:
        raise I2IInputError(f"{names[0]} {tuple(x.shape)} and {names[1]} {tuple(y.shape)} must have the same shape")
    return x, y


def clip_score(image_embeds: Any, text_embeds: Any, *, w: float = 2.5) -> torch.Tensor:
    """CLIPScore per pair (Hessel et al. 2021): w · max(cos(E_I, E_T), 0), with w = 2.5.

    torchmetrics' ``CLIPScore`` instead reports max(mean(100 · cos), 0): a different scale, and
    the clamp is applied to the mean, not per sample.

    Args:
        image_embeds: (N, D) image embeddings E_I.
        text_embeds: (N, D) text embeddings E_T of the matching captions.
        w: the rescaling weight (2.5 in the paper).

    Returns:
        (N,) float64 tensor in [0, w].

    Raises:
        I2IInputError: shapes differ, zero rows, non-finite values.

    Example:
        >>> clip_score(torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]]))
        tensor([0.], dtype=torch.float64)
    """
    x, y = _pair(image_embeds, text_embeds, ("image embeddings", "text embeddings"))
    return w * (x * y).sum(dim=1).clamp_min(0.0)


def direction(start: Any, end: Any, *, names: tuple[str, str] = ("start", "end")) -> torch.Tensor:
    """Ê(end) − Ê(start): the difference of the L2-normalised embeddings, per row, (N, D) float64.

    Example:
        >>> direction(torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 5.0]]))
        tensor([[-1.,  1.]], dtype=torch.float64)
    """
    x, y = _pair(start, end, names)
    return y - x


def directional_similarity(
    image_in: Any, image_out: Any, text_source: Any, text_target: Any, *, eps: float = 1e-12
) -> torch.Tensor:
    """CLIP directional similarity per pair (InstructPix2Pix, Brooks et al. 2023).

    cos(Ê_I(out) − Ê_I(in), Ê_T(target) − Ê_T(source)), where Ê is the L2-normalised embedding.
    A direction shorter than ``eps`` (an unchanged image, or identical texts) has no angle: its
    value is 0, like ``torch.nn.functional.cosine_similarity`` on a zero vector.

    Args:
        image_in, image_out: (N, D) image embeddings of the inputs and the edited outputs.
        text_source, text_target: (N, D) text embeddings of the source and target captions
            (e.g. already template-ensembled with :func:`ensemble_text_embeddings`).
        eps: directions with a norm below this count as zero.

    Returns:
        (N,) float64 tensor in [-1, 1].

    Raises:
        I2IInputError: shapes differ, zero rows, non-finite values.

    Example:
        >>> e = torch.eye(3)
        >>> round(float(directional_similarity(e[:1], e[1:2], e[:1], e[1:2])[0]), 6)
        1.0
    """
    d_img = direction(image_in, image_out, names=("input image embeddings", "output image embeddings"))
    d_txt = direction(text_source, text_target, names=("source text embeddings", "target text embeddings"))
    if d_img.shape != d_txt.shape:
        raise I2IInputError(f"image directions {tuple(d_img.shape)} and text directions {tuple(d_txt.shape)} differ")
    n_img, n_txt = d_img.norm(dim=1), d_txt.norm(dim=1)
    ok = (n_img >= eps) & (n_txt >= eps)
    out = torch.zeros(len(d_img), dtype=torch.float64)
    out[ok] = (d_img[ok] * d_txt[ok]).sum(dim=1) / (n_img[ok] * n_txt[ok])
    return out


def ensemble_text_embeddings(embeds: Any) -> torch.Tensor:
    """Prompt-template ensembling (as StyleGAN-NADA / CLIP zero-shot): normalise, average, renormalise.

    Args:
        embeds: (N, K, D) embeddings of N texts, each placed in K templates.

    Returns:
        (N, D) float64 unit rows: normalise(mean_k normalise(e_{n,k})).

    Raises:
        I2IInputError: not 3-D, zero or non-finite embeddings, or templates cancelling out.

    Example:
        >>> ensemble_text_embeddings(torch.tensor([[[1.0, 0.0], [0.0, 2.0]]]))
        tensor([[0.7071, 0.7071]], dtype=torch.float64)
    """
    t = torch.as_tensor(embeds)
    if t.ndim != 3:
        raise I2IInputError(f"template embeddings must be 3-D (N, K, D), got shape {tuple(t.shape)}")
    n, k, d = t.shape
    unit = normalize_embeddings(t.reshape(n * k, d), name="template embeddings").reshape(n, k, d)
    return normalize_embeddings(unit.mean(dim=1), name="ensembled text embeddings")


def _mean_rbf(a: torch.Tensor, b: torch.Tensor, gamma: float, chunk: int) -> torch.Tensor:
    b_sq = (b * b).sum(dim=1)
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, len(a), chunk):
        x = a[start:start + chunk]
        d2 = ((x * x).sum(dim=1)[:, None] + b_sq[None, :] - 2.0 * x @ b.T).clamp_min(0.0)
        total += torch.exp(-gamma * d2).sum()
    return total / (len(a) * len(b))


def mmd2_rbf(x: Any, y: Any, *, sigma: float = 10.0, scale: float = 1000.0, chunk: int = 4096) -> torch.Tensor:
    """Biased (V-statistic) MMD² with a Gaussian RBF kernel, times ``scale`` (CMMD, Jayasumana et al. 2024).

    k(a, b) = exp(−‖a − b‖² / (2σ²))

    MMD²_b = 1/n² Σᵢⱼ k(xᵢ, xⱼ) + 1/m² Σᵢⱼ k(yᵢ, yⱼ) − 2/(nm) Σᵢⱼ k(xᵢ, yⱼ)

    This is the minimum-variance estimator of Gretton et al. (2012, Eq. 5) used by the CMMD
    reference code (google-research ``cmmd/distance.py``): the sums include i = j, so it is
    ≥ 0 and exactly 0 for identical sets. CMMD uses σ = 10 and scale 1000 on L2-normalised
    CLIP embeddings (the caller normalises).

    Args:
        x: (n, D) embeddings of the first set.
        y: (m, D) embeddings of the second set.
        sigma: kernel bandwidth σ.
        scale: the result is multiplied by this (1000 makes CMMD human-readable).
        chunk: rows per block of the kernel matrices (bounds memory at chunk × max(n, m)).

    Returns:
        0-d float64 tensor.

    Raises:
        I2IInputError: not 2-D, empty, dimensions differ, non-finite values, sigma <= 0.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> float(mmd2_rbf(x, x))
        0.0
    """
    a = torch.as_tensor(x).detach().cpu().to(torch.float64)
    b = torch.as_tensor(y).detach().cpu().to(torch.float64)
    for t, name in ((a, "x"), (b, "y")):
        if t.ndim != 2 or len(t) == 0:
            raise I2IInputError(f"{name} must be a non-empty 2-D (N, D) array, got shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise I2IInputError(f"{name} contains NaN or Inf")
    if a.shape[1] != b.shape[1]:
        raise I2IInputError(f"embedding dimensions differ ({a.shape[1]} vs {b.shape[1]})")
    if not sigma > 0:
        raise I2IInputError(f"sigma must be > 0, got {sigma}")
    gamma = 1.0 / (2.0 * sigma**2)
    k_xx = _mean_rbf(a, a, gamma, chunk)
    k_yy = _mean_rbf(b, b, gamma, chunk)
    k_xy = _mean_rbf(a, b, gamma, chunk)
    return scale * (k_xx + k_yy - 2.0 * k_xy)


def cmmd_statistic(x: Any, y: Any) -> float:
    """CMMD of two sets of raw CLIP image embeddings: :func:`mmd2_rbf` of the L2-normalised rows
    with the paper's σ = 10 and scale 1000 (the statistic the sensitivity engine tests per edit)."""
    return float(mmd2_rbf(normalize_embeddings(x, name="x"), normalize_embeddings(y, name="y")))
