"""Does a label-map → photo model keep the input's semantic layout? (Cityscapes, facades, ...)

* :func:`layout_contrast`: the pixel-wise label-based contrastive loss of Zhao et al. 2021
  (arXiv 2012.06985) on the ViT patch tokens of the outputs, grouped by the input label map
  brought to the patch grid; within-image (default) or cross-image; lower is better. The kNN
  label purity of the same features goes into ``extra``.
* :func:`fcn_score`: the FCN-score of pix2pix (Isola et al. 2017): a user-supplied segmenter on
  the outputs, scored against the input labels (mean IoU, pixel and class accuracy).

Maths in :mod:`pytest_i2i.metrics.functional.layout`. Label maps are integer (H, W) arrays or
tensors, an (N, H, W) array / tensor, PNG files of class ids (mode L, P, I or I;16) or a folder of
them (sorted by name); the label ``ignore_index`` (default 255) is excluded everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as TF

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.distributed import map_shards
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.imageset import ImageSet, load_images
from pytest_i2i.images.prepare import center_crop_to_aspect
from pytest_i2i.metrics.base import backbone_fields, frontend, per_sample_result, resolve_backbone, resolve_resize, timed
from pytest_i2i.metrics.registry import DEFAULT_BATCH_SIZE, DEFAULT_CONFIDENCE, DEFAULT_N_RESAMPLES, DEFAULT_SEED
from pytest_i2i.metrics.functional import layout as F
from pytest_i2i.result import MetricResult

DEFAULT_BACKBONE = "dino-vits16"
LABEL_EXTENSIONS = (".png",)


def load_label_maps(label_maps: Any, *, name: str = "label_maps") -> tuple[list[torch.Tensor], list[str]]:
    """(H, W) int64 label maps and their names from any accepted label input (see the module doc)."""
    if isinstance(label_maps, (str, os.PathLike)):
        p = Path(label_maps).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in LABEL_EXTENSIONS and not f.name.startswith("."))
            if not files:
                raise I2IInputError(f"{name}: folder {p} contains no PNG label maps")
            return [_read_png(f, name) for f in files], [f.name for f in files]
        if p.is_file():
            return [_read_png(p, name)], [p.name]
        raise I2IInputError(f"{name}: path {p} does not exist")
    if isinstance(label_maps, (np.ndarray, torch.Tensor)) and label_maps.ndim == 3:
        items: list[Any] = list(label_maps)
    elif isinstance(label_maps, (np.ndarray, torch.Tensor)):
        items = [label_maps]
    elif isinstance(label_maps, Sequence) and len(label_maps) > 0:
        items = list(label_maps)
    else:
        raise I2IInputError(f"{name}: expected integer (H, W) arrays / tensors, an (N, H, W) array, PNG paths or "
                            f"a folder; got {type(label_maps).__name__}")
    maps, names = [], []
    for i, item in enumerate(items):
        label = f"{name}[{i}]"
        if isinstance(item, (str, os.PathLike)):
            maps.append(_read_png(Path(item).expanduser(), name))
            names.append(Path(item).name)
            continue
        t = torch.from_numpy(np.asarray(item)) if isinstance(item, np.ndarray) else item
        if not isinstance(t, torch.Tensor) or t.ndim != 2:
            raise I2IInputError(f"{label}: a label map must be an (H, W) integer array; got "
                                f"{getattr(t, 'shape', type(t).__name__)}")
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise I2IInputError(f"{label}: label maps must hold integer class ids; got dtype {t.dtype}")
        if t.numel() == 0 or (t < 0).any():
            raise I2IInputError(f"{label}: label maps must be non-empty with class ids >= 0")
        maps.append(t.to(torch.int64))
        names.append(label)
    return maps, names


def _read_png(path: Path, name: str) -> torch.Tensor:
    from PIL import Image

    if not path.is_file():
        raise I2IInputError(f"{name}: path {path} does not exist")
    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I", "I;16"):
            raise I2IInputError(f"{name}: {path.name} has mode {im.mode}; label maps must be single-channel class "
                                "ids (mode L, P, I or I;16), not colour-coded images")
        arr = np.array(im).astype(np.int64)
    return torch.from_numpy(arr)


def _paired_inputs(outputs: Any, label_maps: Any) -> tuple[ImageSet, list[torch.Tensor], list[str]]:
    images = load_images(outputs, name="outputs")
    maps, map_names = load_label_maps(label_maps)
    if len(maps) != len(images):
        raise I2IInputError(f"outputs has {len(images)} images but label_maps has {len(maps)} label maps")
    return images, maps, map_names


@frontend
def layout_contrast(
    outputs: Any,
    label_maps: Any,
    *,
    backbone: str | Backbone | None = None,
    variant: str = "within",
    temperature: float = 0.1,
    knn_k: int = 5,
    label_downsample: str = "nearest",
    upsample: int = 1,
    ignore_index: int = 255,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Label-based contrastive loss (Zhao et al. 2021) of the outputs' ViT patch features (lower is better).

    Each output's ``patch_tokens`` (h × w × D, from :meth:`Backbone.features`) are optionally
    upsampled bilinearly by ``upsample`` (pixel-like features), unit-normalised, and grouped by
    its input label map, which is centre-cropped like the image (when the backbone crops) and
    brought to the feature grid by ``label_downsample``. Then per image

        L = mean_p (1/|Pₚ|) Σ_{q∈Pₚ} −log(e^{fₚ·f_q/τ} / (e^{fₚ·f_q/τ} + Σ_{n∈Nₚ} e^{fₚ·fₙ/τ}))

    ``variant="within"``: positives Pₚ and negatives Nₚ from the same image; ``"cross"``: positives
    from the next image of the set (image i pairs with i + 1, the last with the first), negatives
    from the anchor's own image, as the paper prescribes. Both variants and the kNN label purity
    are computed from the same features and reported in ``extra``.

    Args:
        outputs: the generated images (see :func:`pytest_i2i.load_images`), paired by position
            with ``label_maps``.
        label_maps: the input label maps (see :func:`load_label_maps`).
        backbone: backbone name or loaded :class:`Backbone` with ``patch_tokens`` (default ``"dino-vits16"``).
        variant: ``"within"`` or ``"cross"`` (needs at least 2 images): the one reported as ``value``.
        temperature: τ > 0.
        knn_k: neighbours of the kNN label purity.
        label_downsample: ``"nearest"`` (cell centre) or ``"majority"``.
        upsample: integer factor ≥ 1 applied to the feature grid before the loss.
        ignore_index: label excluded everywhere.
        weights, device, resize, batch_size: as for :func:`pytest_i2i.fd_vit`.
        confidence, n_resamples, seed: of the percentile-bootstrap CI of the mean.

    Returns:
        A :class:`MetricResult` named ``"layout_contrast"``: the mean over images of the chosen
        variant's loss, bootstrap ``ci``, ``per_sample`` losses and ``sample_names`` (of the
        outputs). ``extra``: ``variant``, ``within_image`` and ``cross_image`` (per image; ``None``
        for cross with one image), ``knn_purity`` (per image) and ``knn_purity_mean``, ``grid``,
        ``temperature``, ``knn_k``, ``label_downsample``, ``upsample``.

    Raises:
        I2IInputError: differing counts, bad label maps, bad arguments, an image whose grid has no
            label shared by two cells (or with its partner for ``"cross"``).

    Example:
        >>> import pytest_i2i
        >>> r = pytest_i2i.layout_contrast("fakes/", "labels/")      # doctest: +SKIP
    """
    if variant not in ("within", "cross"):
        raise I2IInputError(f"variant must be 'within' or 'cross'; got {variant!r}")
    if int(upsample) != upsample or upsample < 1:
        raise I2IInputError(f"upsample must be an integer >= 1; got {upsample}")
    with timed() as t:
        images, maps, _ = _paired_inputs(outputs, label_maps)
        if variant == "cross" and len(images) < 2:
            raise I2IInputError("variant='cross' needs at least 2 images")
        bb = resolve_backbone(backbone, DEFAULT_BACKBONE, weights, device)
        mode = resolve_resize(resize, bb)
        step = max(1, batch_size)

        def contrast_chunk(idx: range, labels: list[torch.Tensor], notes: list[str]) -> torch.Tensor:
            """Patch features of images ``idx``; appends their downsampled label maps and size notes."""
            chunk = images.decoded(idx)
            decoded = list(chunk)
            tokens = bb.features(chunk, resize=mode, batch_size=batch_size)
            if "patch_tokens" not in tokens:
                raise I2IInputError(f"backbone {bb.name!r} gives no 'patch_tokens'; use a ViT backbone")
            f = tokens["patch_tokens"].to(torch.float64)
            if upsample > 1:
                f = TF.interpolate(f.permute(0, 3, 1, 2), scale_factor=int(upsample), mode="bilinear",
                                   align_corners=False).permute(0, 2, 3, 1)
            for j, i in enumerate(idx):
                img, y = decoded[j], maps[i]
                if tuple(img.shape[1:]) != tuple(y.shape):
                    notes.append(f"{images.names[i]}: image {img.shape[1]}x{img.shape[2]} and label map "
                                 f"{y.shape[0]}x{y.shape[1]} differ in size; both were mapped onto the feature grid")
                if bb.spec.center_crop:
                    y = center_crop_to_aspect(y[None], bb.input_size)[0]
                labels.append(F.downsample_labels(y[None], tuple(f.shape[1:3]), mode=label_downsample,
                                                  ignore_index=ignore_index)[0])
            return f

        def shard(indices: range) -> tuple[list[torch.Tensor], list[torch.Tensor], list[str]]:
            feats: list[torch.Tensor] = []
            labels: list[torch.Tensor] = []
            notes: list[str] = []
            for start in range(indices.start, indices.stop, step):
                feats.append(contrast_chunk(range(start, min(start + step, indices.stop)), labels, notes))
            return feats, labels, notes

        feats, labels, notes = map_shards(len(images), step, shard)
        f_all, y_all = torch.cat(feats), torch.stack(labels)
        names = images.names
        within = F.label_contrastive_loss(f_all, y_all, temperature=temperature, ignore_index=ignore_index,
                                          names=names)
        cross = None
        if len(names) >= 2:
            cross = F.cross_image_contrastive_loss(
                f_all, y_all, f_all.roll(-1, 0), y_all.roll(-1, 0), temperature=temperature,
                ignore_index=ignore_index, names=names,
            ) if variant == "cross" or _shares_labels(y_all, ignore_index) else None
        purity = F.knn_label_purity(f_all, y_all, k=knn_k, ignore_index=ignore_index, names=names)
    values = within if variant == "within" else cross
    fields = backbone_fields(bb)
    fields["warnings"] += notes
    extra = {
        "variant": variant, "within_image": within.tolist(), "cross_image": None if cross is None else cross.tolist(),
        "knn_purity": purity.tolist(), "knn_purity_mean": float(purity.mean()), "grid": list(y_all.shape[1:]),
        "temperature": float(temperature), "knn_k": int(knn_k), "label_downsample": label_downsample,
        "upsample": int(upsample),
    }
    return per_sample_result("layout_contrast", values, names, higher_is_better=False, confidence=confidence,
                             n_resamples=n_resamples, seed=seed, resize=mode, wall_time_s=t.seconds, extra=extra,
                             **fields)


def _shares_labels(labels: torch.Tensor, ignore_index: int) -> bool:
    """Whether every image shares a labelled class with the next one (so the cross variant is defined)."""
    sets = [set(y.unique().tolist()) - {ignore_index} for y in labels]
    return all(sets[i] & sets[(i + 1) % len(sets)] for i in range(len(sets)))


@frontend
def fcn_score(
    outputs: Any,
    label_maps: Any,
    *,
    segmenter: Callable[[torch.Tensor], torch.Tensor],
    num_classes: int,
    ignore_index: int = 255,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> MetricResult:
    """FCN-score (pix2pix): a segmenter's predictions on the outputs scored against the input labels.

    The segmenter gets each output as it is, (N, 3, H, W) float in [0, 1] (consecutive images of
    equal size are batched), and returns logits (N, num_classes, H', W'). The arg-max prediction
    is resized to the label map's size by nearest neighbour (cell centres), so labels are scored
    at their full resolution. One confusion matrix is accumulated over the set (rows labels,
    columns predictions, ``ignore_index`` pixels excluded):

        pixel accuracy = Σ_c C_cc / Σ C
        class accuracy = mean over labelled classes of C_cc / Σ_j C_cj
        mean IoU       = mean over classes in labels or predictions of C_cc / (Σ_j C_cj + Σ_i C_ic − C_cc)

    Args:
        outputs: the generated images, paired by position with ``label_maps``.
        label_maps: the input label maps (see :func:`load_label_maps`), ids in [0, num_classes).
        segmenter: callable or ``nn.Module`` mapping images to logits; run under
            ``torch.inference_mode`` (an ``nn.Module`` in eval mode, its mode restored afterwards).
        num_classes: C, the number of logit channels.
        ignore_index: the label excluded from every count.
        device: where the images are sent (default: the module's parameters' device, else CPU).
        batch_size: images per segmenter call.

    Returns:
        A :class:`MetricResult` named ``"fcn_score"`` whose ``value`` is the mean IoU of the set's
        accumulated confusion matrix (higher is better); ``per_sample`` are per-image mean IoUs.
        ``ci`` is ``None``: the set value is not the mean of the per-image values. ``extra``:
        ``pixel_accuracy``, ``class_accuracy``, ``per_class_iou`` (``None`` for undefined classes),
        ``per_image`` (``pixel_accuracy`` and ``class_accuracy`` lists), ``confusion_matrix``,
        ``num_classes``.

    Raises:
        I2IInputError: differing counts, bad label maps (ids outside [0, C) other than
            ``ignore_index``), a segmenter output of the wrong shape or non-finite, an image with
            no labelled pixel.

    Example:
        >>> import pytest_i2i
        >>> r = pytest_i2i.fcn_score("fakes/", "labels/", segmenter=model, num_classes=19)   # doctest: +SKIP
    """
    c = int(num_classes)
    if c < 1:
        raise I2IInputError(f"num_classes must be >= 1; got {num_classes}")
    if not callable(segmenter):
        raise I2IInputError(f"segmenter must be callable; got {type(segmenter).__name__}")
    is_module = isinstance(segmenter, torch.nn.Module)
    if device is None and is_module:
        device = next((p.device for p in segmenter.parameters()), torch.device("cpu"))
    was_training = is_module and segmenter.training
    with timed() as t:
        images, maps, _ = _paired_inputs(outputs, label_maps)

        def shard(indices: range) -> list[torch.Tensor]:
            cms: list[torch.Tensor] = []
            for local, batch in images.subset(indices).iter_batches(batch_size):
                idx = [indices.start + i for i in local]
                with torch.inference_mode():
                    logits = segmenter(batch.to(device or "cpu"))
                if (not isinstance(logits, torch.Tensor) or logits.ndim != 4 or logits.shape[0] != len(idx)
                        or logits.shape[1] != c):
                    raise I2IInputError(f"segmenter must return logits of shape ({len(idx)}, {c}, H', W') for "
                                        f"{images.names[idx[0]]}...; got {getattr(logits, 'shape', type(logits))}")
                if not torch.isfinite(logits).all():
                    raise I2IInputError(f"segmenter returned non-finite logits for {images.names[idx[0]]}...")
                pred = logits.argmax(1).cpu()
                for j, i in enumerate(idx):
                    y = maps[i]
                    p = TF.interpolate(pred[j][None, None].to(torch.float64), size=tuple(y.shape),
                                       mode="nearest-exact")[0].to(torch.int64)
                    try:
                        cm = F.confusion_matrix(p, y[None], c, ignore_index=ignore_index)
                    except I2IInputError as e:
                        raise I2IInputError(f"label map of {images.names[i]}: {e}") from None
                    if cm.sum() == 0:
                        raise I2IInputError(f"label map of {images.names[i]} has no labelled pixel "
                                            f"(all are ignore_index={ignore_index})")
                    cms.append(cm[0])
            return cms

        try:
            if is_module:
                segmenter.eval()
            cms = map_shards(len(images), batch_size, shard)
        finally:
            if was_training:
                segmenter.train()
        per_image = F.segmentation_scores(torch.stack(cms))
        total = torch.stack(cms).sum(0)
        overall = F.segmentation_scores(total)
    iou = overall["iou"].tolist()
    return MetricResult(
        name="fcn_score", value=float(overall["mean_iou"]), higher_is_better=True, n=len(cms),
        per_sample=per_image["mean_iou"].tolist(), sample_names=list(images.names), backbone=None,
        calibrated=True, wall_time_s=t.seconds,
        extra={
            "pixel_accuracy": float(overall["pixel_accuracy"]), "class_accuracy": float(overall["class_accuracy"]),
            "per_class_iou": [None if v != v else v for v in iou],
            "per_image": {"pixel_accuracy": per_image["pixel_accuracy"].tolist(),
                          "class_accuracy": per_image["class_accuracy"].tolist()},
            "confusion_matrix": total.tolist(), "num_classes": c,
        },
    )
