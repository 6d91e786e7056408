"""Label-layout maths: pixel-wise label-based contrastive loss, kNN label purity and FCN-score.

Contrastive loss (Zhao et al. 2021, "Contrastive Learning for Label-Efficient Semantic
Segmentation", arXiv 2012.06985, Sec. 3; implemented from the paper's description, the equation
text was not available offline). With unit-normalised features fₚ, labels yₚ and temperature τ:

    sₚq = fₚ · f_q / τ
    ℓₚ = (1 / |Pₚ|) Σ_{q ∈ Pₚ} −log( exp(sₚq) / (exp(sₚq) + Σ_{n ∈ Nₚ} exp(sₚn)) )
    L  = mean of ℓₚ over the anchors p with |Pₚ| ≥ 1

* within-image: Pₚ = cells q ≠ p of the same image with y_q = yₚ; Nₚ = cells of the same image
  with a different label.
* cross-image: Pₚ = cells of a second image with the anchor's label; Nₚ = cells of the anchor's
  own image with a different label (negatives never come from the second image).

Cells labelled ``ignore_index`` are neither anchors, positives nor negatives. The loss is ≥ 0;
for perfectly clustered features (same label → same unit vector, different labels → opposite
vectors) it is log(1 + |Nₚ| e^{−2/τ}) per anchor, near 0 for small τ.

kNN label purity: for each labelled cell, the share of its k nearest labelled cells of the same
image (cosine similarity, the cell itself excluded) that have its label; averaged per image, in [0, 1].

FCN-score (Isola et al. 2017, pix2pix): from the confusion matrix C (rows: label, columns:
prediction) over labelled pixels, pixel accuracy = Σ_c C_cc / Σ C; class accuracy = mean over
classes present in the labels of C_cc / Σ_j C_cj; IoU_c = C_cc / (Σ_j C_cj + Σ_i C_ic − C_cc) and
mean IoU = mean over classes present in the labels or the predictions (the nan-mean of the
Cityscapes / FCN evaluation code).

Everything is computed in float64 on the CPU and returns float64 (losses, scores) or int64
(labels, confusion matrices) tensors; no gradients are tracked.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from pytest_i2i.errors import I2IInputError

__all__ = [
    "confusion_matrix", "cross_image_contrastive_loss", "downsample_labels", "knn_label_purity",
    "label_contrastive_loss", "segmentation_scores",
]


def _name(names: Sequence[str] | None, i: int, arg: str) -> str:
    return names[i] if names is not None else f"{arg}[{i}]"


def _check_features(features: Tensor, labels: Tensor, fname: str, lname: str) -> tuple[Tensor, Tensor]:
    if not isinstance(features, Tensor) or not isinstance(labels, Tensor):
        raise I2IInputError(f"`{fname}` and `{lname}` must be torch.Tensors")
    if features.ndim != 4 or features.shape[-1] == 0:
        raise I2IInputError(f"`{fname}` must have shape (N, h, w, D) with D > 0; got {tuple(features.shape)}")
    if labels.shape != features.shape[:3]:
        raise I2IInputError(f"`{lname}` must have shape (N, h, w) = {tuple(features.shape[:3])}; "
                            f"got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise I2IInputError(f"`{lname}` must be an integer tensor of class ids; got {labels.dtype}")
    f = features.detach().cpu().to(torch.float64)
    if not torch.isfinite(f).all():
        raise I2IInputError(f"`{fname}` contains NaN or Inf")
    norms = f.norm(dim=-1, keepdim=True)
    if (norms == 0).any():
        raise I2IInputError(f"`{fname}` has an all-zero feature vector, which has no direction")
    return f / norms, labels.detach().cpu().to(torch.int64)


def _check_tau(temperature: float) -> float:
    if not float(temperature) > 0.0:
        raise I2IInputError(f"temperature must be > 0; got {temperature}")
    return float(temperature)


def _contrast(fa: Tensor, ya: Tensor, fb: Tensor, yb: Tensor, tau: float, ignore_index: int,
              same_image: bool) -> tuple[Tensor, int]:
    """Sum of ℓₚ over the anchors of one image and their count (anchors: cells with a positive)."""
    fa, ya, fb, yb = fa.reshape(-1, fa.shape[-1]), ya.reshape(-1), fb.reshape(-1, fb.shape[-1]), yb.reshape(-1)
    va, vb = ya != ignore_index, yb != ignore_index
    fa, ya, fb, yb = fa[va], ya[va], fb[vb], yb[vb]
    pos = ya[:, None] == yb[None, :]
    if same_image:
        pos.fill_diagonal_(False)
    neg = ya[:, None] != ya[None, :]  # negatives always from the anchor's own image
    s_pos = fa @ fb.T / tau
    s_neg = (fa @ fa.T / tau).masked_fill(~neg, float("-inf"))
    neg_lse = torch.logsumexp(s_neg, dim=1, keepdim=True) if len(ya) else s_neg.sum(1, keepdim=True)
    # −log(e^s / (e^s + Σₙ e^sₙ)) = logaddexp(s, logsumexp sₙ) − s; with no negatives it is 0
    terms = (torch.logaddexp(s_pos, neg_lse) - s_pos).masked_fill(~pos, 0.0)
    n_pos = pos.sum(1)
    anchors = n_pos > 0
    per_anchor = terms.sum(1)[anchors] / n_pos[anchors]
    return per_anchor.sum(), int(anchors.sum())


def label_contrastive_loss(
    features: Tensor, labels: Tensor, *, temperature: float = 0.1, ignore_index: int = 255,
    names: Sequence[str] | None = None,
) -> Tensor:
    """Within-image pixel-wise label-based contrastive loss (Zhao et al. 2021) of each image.

    L = mean over anchors p of (1/|Pₚ|) Σ_{q∈Pₚ} −log(e^{sₚq} / (e^{sₚq} + Σ_{n∈Nₚ} e^{sₚn})), with
    sₚq = fₚ·f_q/τ on unit-normalised features, Pₚ the other cells of the image with label yₚ and
    Nₚ the cells of the image with another label (see the module docstring).

    Args:
        features: (N, h, w, D) features per grid cell (normalised here).
        labels: (N, h, w) integer class ids; ``ignore_index`` cells are excluded.
        temperature: τ > 0.
        ignore_index: the label excluded everywhere.
        names: image names used in error messages (default ``labels[i]``).

    Returns:
        (N,) float64 loss per image (lower: features cluster by label).

    Raises:
        I2IInputError: bad shapes or dtypes, non-finite or zero features, τ ≤ 0, or an image with
            no labelled cell that shares its label with another cell.

    Example:
        >>> f = torch.tensor([[[[1., 0.], [1., 0.]], [[0., 1.], [0., 1.]]]])
        >>> y = torch.tensor([[[0, 0], [1, 1]]])
        >>> round(float(label_contrastive_loss(f, y, temperature=1.0)[0]), 4)   # log(1 + 2e^-1)
        0.5514
    """
    tau = _check_tau(temperature)
    f, y = _check_features(features, labels, "features", "labels")
    out = torch.empty(f.shape[0], dtype=torch.float64)
    for i in range(f.shape[0]):
        total, count = _contrast(f[i], y[i], f[i], y[i], tau, ignore_index, same_image=True)
        if count == 0:
            raise I2IInputError(f"{_name(names, i, 'labels')}: no labelled cell shares its label with another "
                                "cell of the grid, so the contrastive loss is undefined")
        out[i] = total / count
    return out


def cross_image_contrastive_loss(
    features: Tensor, labels: Tensor, partner_features: Tensor, partner_labels: Tensor, *,
    temperature: float = 0.1, ignore_index: int = 255, names: Sequence[str] | None = None,
) -> Tensor:
    """Cross-image label-based contrastive loss (Zhao et al. 2021): positives from a second image.

    For anchor p of image i: Pₚ = cells of ``partner_features[i]`` with label yₚ, Nₚ = cells of
    image i itself with another label; ℓₚ and L as in :func:`label_contrastive_loss`.

    Args:
        features, labels: (N, h, w, D) and (N, h, w) of the anchor images.
        partner_features, partner_labels: (N, h', w', D) and (N, h', w') of the image paired with
            each anchor image (e.g. the next image of the set).
        temperature, ignore_index, names: as for :func:`label_contrastive_loss`.

    Returns:
        (N,) float64 loss per anchor image.

    Raises:
        I2IInputError: as for :func:`label_contrastive_loss`; also differing N or D, or an image
            sharing no label with its partner.

    Example:
        >>> f = torch.tensor([[[[1., 0.], [0., 1.]]]])
        >>> y = torch.tensor([[[0, 1]]])
        >>> round(float(cross_image_contrastive_loss(f, y, f, y, temperature=1.0)[0]), 4)  # log(1 + e^-1)
        0.3133
    """
    tau = _check_tau(temperature)
    f, y = _check_features(features, labels, "features", "labels")
    g, z = _check_features(partner_features, partner_labels, "partner_features", "partner_labels")
    if g.shape[0] != f.shape[0] or g.shape[-1] != f.shape[-1]:
        raise I2IInputError(f"`partner_features` must have N = {f.shape[0]} and D = {f.shape[-1]}; "
                            f"got {tuple(g.shape)}")
    out = torch.empty(f.shape[0], dtype=torch.float64)
    for i in range(f.shape[0]):
        total, count = _contrast(f[i], y[i], g[i], z[i], tau, ignore_index, same_image=False)
        if count == 0:
            raise I2IInputError(f"{_name(names, i, 'labels')}: shares no labelled class with its partner image, "
                                "so the cross-image contrastive loss is undefined")
        out[i] = total / count
    return out


def knn_label_purity(
    features: Tensor, labels: Tensor, *, k: int = 5, ignore_index: int = 255, names: Sequence[str] | None = None,
) -> Tensor:
    """Mean share of each labelled cell's k nearest cells (cosine, same image) that share its label.

    purity = mean_p (1/k') |{q ∈ kNN(p) : y_q = yₚ}|, k' = min(k, M − 1), M the labelled cells of
    the image; the cell itself is never its own neighbour. Ties between equal similarities are
    broken by ``torch.topk``.

    Args:
        features: (N, h, w, D) features per grid cell.
        labels: (N, h, w) integer class ids; ``ignore_index`` cells are excluded.
        k: number of neighbours, ≥ 1.
        ignore_index, names: as for :func:`label_contrastive_loss`.

    Returns:
        (N,) float64 purity per image, in [0, 1] (higher: features cluster by label).

    Raises:
        I2IInputError: bad shapes, k < 1, or an image with fewer than 2 labelled cells.

    Example:
        >>> f = torch.tensor([[[[1., 0.], [1., .1]], [[0., 1.], [.1, 1.]]]])
        >>> float(knn_label_purity(f, torch.tensor([[[0, 0], [1, 1]]]), k=1)[0])
        1.0
    """
    if int(k) < 1:
        raise I2IInputError(f"k must be >= 1; got {k}")
    f, y = _check_features(features, labels, "features", "labels")
    out = torch.empty(f.shape[0], dtype=torch.float64)
    for i in range(f.shape[0]):
        fi, yi = f[i].reshape(-1, f.shape[-1]), y[i].reshape(-1)
        valid = yi != ignore_index
        fi, yi = fi[valid], yi[valid]
        if len(yi) < 2:
            raise I2IInputError(f"{_name(names, i, 'labels')}: fewer than 2 labelled cells on the feature grid")
        kk = min(int(k), len(yi) - 1)
        sim = (fi @ fi.T).fill_diagonal_(float("-inf"))
        nn_idx = sim.topk(kk, dim=1).indices
        out[i] = (yi[nn_idx] == yi[:, None]).to(torch.float64).mean()
    return out


def downsample_labels(
    labels: Tensor, size: tuple[int, int], *, mode: str = "nearest", ignore_index: int = 255,
) -> Tensor:
    """Label maps (N, H, W) brought to the grid ``size`` = (h, w).

    ``"nearest"``: cell (i, j) takes the label at pixel (⌊(i + ½) H/h⌋, ⌊(j + ½) W/w⌋) (the cell
    centre, torch's ``nearest-exact``). ``"majority"``: the most frequent label other than
    ``ignore_index`` among the pixels of the cell (pixel rows ⌊iH/h⌋ … ⌈(i+1)H/h⌉ − 1, as adaptive
    pooling bins them); ties go to the smaller class id; a cell with only ignored pixels is ignored.

    Args:
        labels: (N, H, W) integer class ids.
        size: the target grid (h, w).
        mode: ``"nearest"`` or ``"majority"``.
        ignore_index: the label that never wins a majority vote.

    Returns:
        (N, h, w) int64 labels.

    Raises:
        I2IInputError: bad shape, dtype, size or mode.

    Example:
        >>> downsample_labels(torch.tensor([[[0, 0, 1, 1]] * 2]), (1, 2)).tolist()
        [[[0, 1]]]
    """
    if not isinstance(labels, Tensor) or labels.ndim != 3:
        raise I2IInputError(f"`labels` must be an (N, H, W) tensor; got {getattr(labels, 'shape', type(labels))}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise I2IInputError(f"`labels` must be an integer tensor of class ids; got {labels.dtype}")
    h, w = (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise I2IInputError(f"size must be positive; got {size}")
    y = labels.detach().cpu().to(torch.int64)
    if mode == "nearest":
        return F.interpolate(y[:, None].to(torch.float64), size=(h, w), mode="nearest-exact")[:, 0].to(torch.int64)
    if mode != "majority":
        raise I2IInputError(f"label downsampling mode must be 'nearest' or 'majority'; got {mode!r}")
    classes, compact = torch.unique(y, return_inverse=True)
    counts = F.adaptive_avg_pool2d(F.one_hot(compact, len(classes)).permute(0, 3, 1, 2).to(torch.float64), (h, w))
    ignored = classes == ignore_index
    counts[:, ignored] = -1.0
    best = counts.argmax(dim=1)  # the first maximum: the smallest class id on ties
    out = classes[best]
    return out.masked_fill(counts.amax(dim=1) <= 0, ignore_index)


def confusion_matrix(preds: Tensor, target: Tensor, num_classes: int, *, ignore_index: int = 255) -> Tensor:
    """Per-image confusion matrices C[n, i, j] = #pixels of image n with label i predicted as j.

    Args:
        preds: (N, H, W) predicted class ids in [0, num_classes).
        target: (N, H, W) label class ids in [0, num_classes) or ``ignore_index`` (not counted).
        num_classes: C ≥ 1.
        ignore_index: the label excluded from the counts.

    Returns:
        (N, C, C) int64 confusion matrices (sum over N for the set).

    Raises:
        I2IInputError: differing shapes, non-integer tensors, ids outside [0, C).

    Example:
        >>> confusion_matrix(torch.tensor([[[0, 1]]]), torch.tensor([[[0, 0]]]), 2)[0].tolist()
        [[1, 1], [0, 0]]
    """
    c = int(num_classes)
    if c < 1:
        raise I2IInputError(f"num_classes must be >= 1; got {num_classes}")
    if preds.shape != target.shape or preds.ndim != 3:
        raise I2IInputError(f"`preds` and `target` must both have shape (N, H, W); got {tuple(preds.shape)} and "
                            f"{tuple(target.shape)}")
    for t, name in ((preds, "preds"), (target, "target")):
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise I2IInputError(f"`{name}` must be an integer tensor of class ids; got {t.dtype}")
    p, t = preds.detach().cpu().to(torch.int64), target.detach().cpu().to(torch.int64)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= c))
    if bad.any():
        n = int(bad.nonzero()[0, 0])
        raise I2IInputError(f"`target[{n}]` has class ids outside [0, {c}) that are not ignore_index={ignore_index}: "
                            f"{sorted(set(t[bad].tolist()))[:5]}")
    if ((p < 0) | (p >= c)).any():
        raise I2IInputError(f"`preds` has class ids outside [0, {c})")
    flat = (t * c + p).masked_fill(~valid, 0).flatten(1)
    cm = torch.zeros(p.shape[0], c * c, dtype=torch.int64).scatter_add_(1, flat, valid.flatten(1).to(torch.int64))
    return cm.view(-1, c, c)


def segmentation_scores(confmat: Tensor) -> dict[str, Tensor]:
    """Pixel accuracy, class accuracy, mean IoU and per-class IoU of confusion matrices.

    pixel_accuracy = Σ_c C_cc / Σ C; class_accuracy = mean over {c : Σ_j C_cj > 0} of C_cc / Σ_j C_cj;
    IoU_c = C_cc / (Σ_j C_cj + Σ_i C_ic − C_cc), NaN for a class absent from labels and
    predictions; mean_iou = mean of the defined IoU_c.

    Args:
        confmat: (C, C) or (N, C, C) counts, rows labels and columns predictions.

    Returns:
        ``{"pixel_accuracy", "class_accuracy", "mean_iou"}``: float64 of shape () or (N,);
        ``"iou"``: (C,) or (N, C) float64 with NaN for undefined classes.

    Raises:
        I2IInputError: a confusion matrix with no counted pixel.

    Example:
        >>> s = segmentation_scores(torch.tensor([[2, 0], [1, 1]]))
        >>> [round(float(s[k]), 4) for k in ("pixel_accuracy", "class_accuracy", "mean_iou")]
        [0.75, 0.75, 0.5833]
    """
    cm = confmat.detach().cpu().to(torch.float64)
    total = cm.sum((-2, -1))
    if (total == 0).any():
        raise I2IInputError("a confusion matrix counts no labelled pixel (every label is ignore_index?)")
    diag = cm.diagonal(dim1=-2, dim2=-1)
    rows, cols = cm.sum(-1), cm.sum(-2)
    union = rows + cols - diag
    iou = torch.where(union > 0, diag / union.clamp_min(1), torch.full_like(diag, float("nan")))
    present = rows > 0
    class_acc = torch.where(present, diag / rows.clamp_min(1), torch.zeros_like(diag)).sum(-1) / present.sum(-1)
    return {"pixel_accuracy": diag.sum(-1) / total, "class_accuracy": class_acc, "mean_iou": iou.nanmean(-1),
            "iou": iou}
