"""CLIP metrics: CLIPScore (image–text), CLIP-I (image–image), CLIP directional similarity, CMMD.

Images go through the backbone's feature pipeline (centre crop when the open_clip config says
``resize_mode="shortest"``, resize to the input size with ``resize``, open_clip normalisation),
so metrics on the same images and backbone share one forward pass per image. Texts are
embedded once per distinct string per backbone. Maths: :mod:`pytest_i2i.metrics.functional.clip`.

Per-pair metrics return the mean with a percentile-bootstrap CI, the per-sample values and the
sample names. Every result records the backbone, its weights' sha256, whether they are the
published ones, and the preprocessing (``resize`` and ``extra["preprocess"]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.backbones.clip import ClipBackbone
from pytest_i2i.distributed import map_shards
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.imageset import ImageSet, as_pairs, load_images
from pytest_i2i.metrics.base import (
    backbone_fields, frontend, iter_pair_features, paired_feature_metric, per_sample_result, resolve_backbone,
    resolve_resize, timed,
)
from pytest_i2i.metrics.functional import clip as F
from pytest_i2i.metrics.functional.similarity import cosine_similarity
from pytest_i2i.metrics.registry import DEFAULT_BATCH_SIZE, DEFAULT_CONFIDENCE, DEFAULT_N_RESAMPLES, DEFAULT_SEED
from pytest_i2i.result import MetricResult
from pytest_i2i.texts import check_texts

DEFAULT_BACKBONE = "clip-vit-b-32"
CMMD_BACKBONE = "clip-vit-l-14-336"
FEATURE = "image_embeds"
TEMPLATE_SLOT = "{}"


def clip_image_kernel(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CLIP-I of a chunk of pairs from their features: ``{"value": cos(image_embeds_a, image_embeds_b)}``."""
    return {"value": cosine_similarity(fa[FEATURE], fb[FEATURE], names=("image embeddings a", "image embeddings b"))}


def _backbone(backbone: str | Backbone | None, default: str, weights: Any, device: Any, *, text: bool) -> Backbone:
    bb = resolve_backbone(backbone, default, weights, device)
    if text and not isinstance(bb, ClipBackbone):
        raise I2IInputError(f"backbone {bb.name!r} has no text encoder; use a CLIP backbone "
                            "('clip-vit-b-32' or 'clip:<open_clip model>/<tag>')")
    if FEATURE not in bb.spec.outputs:
        raise I2IInputError(f"backbone {bb.name!r} has no {FEATURE!r} output; it has {list(bb.spec.outputs)}")
    return bb


def _preprocess(bb: Backbone, mode: str) -> dict[str, Any]:
    info = dict(bb.spec.preprocess) if isinstance(bb, ClipBackbone) else {
        "center_crop": bb.spec.center_crop, "input_size": list(bb.input_size)}
    info["resize"] = mode
    return info


def _embeds(bb: Backbone, images: ImageSet, mode: str, batch_size: int) -> torch.Tensor:
    return map_shards(len(images), batch_size,
                      lambda indices: bb.features(images.subset(indices), resize=mode, batch_size=batch_size)[FEATURE])


def _pair_embeds(
    bb: Backbone, sa: ImageSet, sb: ImageSet, mode: str, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Embeddings of two position-paired image sets, and a note for each pair of different sizes."""

    def shard(indices: range) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        parts_a, parts_b, notes = [], [], []
        for fa, fb, chunk_notes in iter_pair_features(sa.subset(indices), sb.subset(indices), bb, mode, batch_size,
                                                      start=indices.start):
            parts_a.append(fa[FEATURE])
            parts_b.append(fb[FEATURE])
            notes += chunk_notes
        return torch.cat(parts_a), torch.cat(parts_b), notes

    return map_shards(len(sa), batch_size, shard)


def _texts_for(texts: str | Sequence[str], n: int, name: str, images_name: str) -> list[str]:
    """``texts`` checked and aligned with ``n`` images; one string applies to every image."""
    items = check_texts(texts, name)
    if isinstance(texts, str):
        return items * n
    if len(items) != n:
        raise I2IInputError(f"{images_name} has {n} images but {name} has {len(items)} texts; "
                            "pass one text per image, or a single string for all")
    return items


def _check_templates(templates: Sequence[str] | None) -> list[str]:
    if templates is None:
        return [TEMPLATE_SLOT]
    items = check_texts(templates, "templates")
    for i, tpl in enumerate(items):
        if tpl.count(TEMPLATE_SLOT) != 1:
            raise I2IInputError(f"templates[{i}] {tpl!r} must contain exactly one '{{}}' where the text goes")
        try:
            tpl.format("x")
        except (IndexError, KeyError, ValueError) as e:
            raise I2IInputError(f"templates[{i}] {tpl!r} is not a valid format string ({e}); "
                                "write literal braces as '{{' and '}}'") from None
    return items


def _text_embeds(
    bb: ClipBackbone, texts: list[str], name: str, templates: list[str]
) -> tuple[torch.Tensor, list[str]]:
    """Unit text embeddings (N, D), each text ensembled over ``templates``, and truncation warnings."""
    distinct = list(dict.fromkeys(texts))
    prompts = [tpl.format(t) for t in distinct for tpl in templates]
    emb, truncated = bb.encode_text(prompts, name=name, return_truncated=True)
    k = len(templates)
    per_text = F.ensemble_text_embeddings(emb.reshape(len(distinct), k, -1))
    row = {t: j for j, t in enumerate(distinct)}
    cut = {distinct[j // k] for j in truncated}
    warnings = []
    if cut:
        idx = [i for i, t in enumerate(texts) if t in cut]
        shown = ", ".join(f"{name}[{i}]" for i in idx[:20]) + (f" and {len(idx) - 20} more" if len(idx) > 20 else "")
        with_template = " (placed in a template)" if templates != [TEMPLATE_SLOT] else ""
        warnings.append(f"{shown}{with_template} longer than the {bb.context_length}-token context length of "
                        f"{bb.name}: truncated to it, as CLIP does")
    return per_text[[row[t] for t in texts]], warnings


def _per_sample_result(
    name: str, values: torch.Tensor, sample_names: list[str], bb: Backbone, mode: str, seconds: float,
    warnings: list[str], extra: dict[str, Any], confidence: float, n_resamples: int, seed: int,
) -> MetricResult:
    fields = backbone_fields(bb)
    fields["warnings"] += warnings
    return per_sample_result(
        name, values, sample_names, higher_is_better=True, confidence=confidence, n_resamples=n_resamples,
        seed=seed, resize=mode, wall_time_s=seconds, extra={"preprocess": _preprocess(bb, mode), **extra}, **fields,
    )


@frontend
def clip_text(
    images: Any,
    texts: str | Sequence[str],
    *,
    backbone: str | Backbone | None = None,
    w: float = 2.5,
    torchmetrics_scale: bool = False,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """CLIPScore (Hessel et al. 2021): how well each image matches its caption (higher is better).

    Per sample w · max(cos(E_I, E_T), 0) with w = 2.5 (the paper's convention, range [0, 2.5]).
    ``torchmetrics_scale=True`` gives torchmetrics' ``CLIPScore`` convention instead: per-sample
    values 100 · cos, and the value max(mean(100 · cos), 0): torchmetrics clamps the mean, not
    each sample, so beyond the factor 40 the two conventions differ when some cosines are negative.

    Args:
        images: image input (see :func:`pytest_i2i.load_images`).
        texts: one caption per image, or one string for every image.
        backbone: CLIP backbone name or loaded backbone (default ``"clip-vit-b-32"``).
        w: the CLIPScore weight (2.5); not used with ``torchmetrics_scale``.
        torchmetrics_scale: report torchmetrics' convention (see above).
        weights: ``None`` (published file), a path, or ``"random"`` (uncalibrated tests).
        device: torch device.
        resize: resize mode for the backbone input (default ``"clean"``).
        batch_size: images per forward pass.
        confidence, n_resamples, seed: the bootstrap CI of the mean.

    Returns:
        A :class:`MetricResult` with per-sample values and ``extra["cosine"]`` (raw cosines).
        Texts longer than the context length are truncated and a warning names them.

    Raises:
        I2IInputError: numbers of images and texts differ, an empty text, a non-CLIP backbone.

    Example:
        >>> r = pytest_i2i.clip_text("outputs/", ["a red car", "a dog"])   # doctest: +SKIP
    """
    if torchmetrics_scale and w != 2.5:
        raise I2IInputError("w does not apply with torchmetrics_scale=True (torchmetrics uses 100 · cos)")
    with timed() as t:
        imgs = load_images(images, name="images")
        items = _texts_for(texts, len(imgs), "texts", "images")
        bb = _backbone(backbone, DEFAULT_BACKBONE, weights, device, text=True)
        mode = resolve_resize(resize, bb)
        txt, warnings = _text_embeds(bb, items, "texts", [TEMPLATE_SLOT])
        img = _embeds(bb, imgs, mode, batch_size)
        cos = cosine_similarity(img, txt, names=("image embeddings", "text embeddings"))
        values = 100.0 * cos if torchmetrics_scale else F.clip_score(img, txt, w=w)
    result = _per_sample_result(
        "clip_text", values, list(imgs.names), bb, mode, t.seconds, warnings,
        {"cosine": cos.tolist(), "convention": "torchmetrics" if torchmetrics_scale else "hessel",
         "w": None if torchmetrics_scale else w}, confidence, n_resamples, seed,
    )
    if torchmetrics_scale:  # torchmetrics clamps the mean at 0; the CI bounds follow it
        result.value = max(result.value, 0.0)
        result.ci = (max(result.ci[0], 0.0), max(result.ci[1], 0.0))
    return result


@frontend
def clip_image(
    inputs: Any,
    outputs: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """CLIP-I: cosine similarity of the CLIP image embeddings of each input and its output.

    cos(Ê_I(input), Ê_I(output)) per pair, in [-1, 1]; 1 for identical images (higher means the
    output kept more of the input's content).

    Args:
        inputs, outputs: image inputs paired by position.
        backbone, weights, device, resize, batch_size, confidence, n_resamples, seed: as for
            :func:`clip_text`; any backbone with an ``"image_embeds"`` output works.

    Returns:
        A :class:`MetricResult`; pairs of different sizes are noted in ``warnings`` (each image is
        cropped and resized to the backbone input independently).

    Raises:
        I2IInputError: the numbers of inputs and outputs differ.
    """
    bb = _backbone(backbone, DEFAULT_BACKBONE, weights, device, text=False)
    mode = resolve_resize(resize, bb)
    return paired_feature_metric(
        "clip_image", True, clip_image_kernel, inputs, outputs, default_backbone=DEFAULT_BACKBONE, backbone=bb,
        weights=None, device=device, batch_size=batch_size, resize=mode, confidence=confidence,
        n_resamples=n_resamples, seed=seed, extra={"preprocess": _preprocess(bb, mode)}, names=("inputs", "outputs"),
    )


@frontend
def clip_direction(
    inputs: Any,
    outputs: Any,
    source_texts: str | Sequence[str],
    target_texts: str | Sequence[str],
    *,
    backbone: str | Backbone | None = None,
    templates: Sequence[str] | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """CLIP directional similarity (InstructPix2Pix): does the image change follow the caption change?

    cos(Ê_I(output) − Ê_I(input), Ê_T(target) − Ê_T(source)) per pair, on L2-normalised
    embeddings. With ``templates`` (e.g. ``["a photo of {}.", "a rendering of {}."]``) each text
    embedding is the renormalised mean of the normalised embeddings of the text in every
    template (StyleGAN-NADA's prompt ensembling) before the difference is taken.

    A pair whose image direction or text direction is zero (output identical to input in
    embedding space, or identical source and target text) gets 0 and a warning.

    Args:
        inputs, outputs: image inputs paired by position.
        source_texts, target_texts: a caption per pair, or one string for every pair.
        backbone: CLIP backbone (default ``"clip-vit-b-32"``).
        templates: prompt templates, each with one ``{}``; ``None`` uses the texts as they are.
        weights, device, resize, batch_size, confidence, n_resamples, seed: as for :func:`clip_text`.

    Returns:
        A :class:`MetricResult` with per-pair values in [-1, 1] (higher is better).

    Raises:
        I2IInputError: mismatched counts, empty texts, bad templates, a non-CLIP backbone.
    """
    tpls = _check_templates(templates)
    with timed() as t:
        s_in, s_out = as_pairs(inputs, outputs, names=("inputs", "outputs"))
        n = len(s_in)
        src_items = _texts_for(source_texts, n, "source_texts", "inputs")
        tgt_items = _texts_for(target_texts, n, "target_texts", "inputs")
        bb = _backbone(backbone, DEFAULT_BACKBONE, weights, device, text=True)
        mode = resolve_resize(resize, bb)
        e_in, e_out, notes = _pair_embeds(bb, s_in, s_out, mode, batch_size)
        src, w_src = _text_embeds(bb, src_items, "source_texts", tpls)
        tgt, w_tgt = _text_embeds(bb, tgt_items, "target_texts", tpls)
        values = F.directional_similarity(e_in, e_out, src, tgt)
        d_img = F.direction(e_in, e_out).norm(dim=1)
        d_txt = (tgt - src).norm(dim=1)
    degenerate = [i for i in range(n) if d_img[i] < 1e-12 or d_txt[i] < 1e-12]
    if degenerate:
        notes.append(f"pairs {degenerate[:20]} have no image or no text direction (unchanged image embedding or "
                     "identical source and target text); their directional similarity is set to 0")
    return _per_sample_result(
        "clip_direction", values, list(s_in.names), bb, mode, t.seconds, notes + w_src + w_tgt,
        {"templates": tpls if templates is not None else None}, confidence, n_resamples, seed,
    )


@frontend
def cmmd(
    real: Any,
    fake: Any,
    *,
    backbone: str | Backbone | None = None,
    sigma: float = 10.0,
    scale: float = 1000.0,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> MetricResult:
    """CMMD (Jayasumana et al. 2024): MMD² between CLIP embedding distributions (lower is better).

    The biased (minimum-variance) MMD² estimator of the CMMD reference code with the Gaussian
    RBF kernel exp(−‖x − y‖² / (2σ²)), σ = 10, on L2-normalised CLIP image embeddings, times
    1000 (see :func:`pytest_i2i.metrics.functional.clip.mmd2_rbf`). 0 for identical sets.
    The default backbone is CLIP ViT-L/14 at 336 px, as in the paper; images are centre-cropped
    and resized with bicubic antialiasing, as the reference code does.

    Args:
        real, fake: image inputs (any sizes; the sets may differ in size).
        backbone: backbone name or loaded backbone (default ``"clip-vit-l-14-336"``).
        sigma: RBF bandwidth (10).
        scale: multiplier of MMD² (1000).
        weights, device, resize, batch_size: as for :func:`clip_text`.

    Returns:
        A :class:`MetricResult`; ``extra`` holds ``n_real``, ``n_fake``, ``sigma``, ``scale``, the
        estimator and the preprocessing.

    Raises:
        I2IInputError: bad images or parameters.
    """
    with timed() as t:
        sets = [load_images(x, name=n) for x, n in ((real, "real"), (fake, "fake"))]
        bb = _backbone(backbone, CMMD_BACKBONE, weights, device, text=False)
        mode = resolve_resize(resize, bb)
        x, y = (F.normalize_embeddings(_embeds(bb, s, mode, batch_size), name=f"{s.label} embeddings") for s in sets)
        value = F.mmd2_rbf(x, y, sigma=sigma, scale=scale)
    return MetricResult(
        name="cmmd", value=float(value), higher_is_better=False, n=min(len(x), len(y)), resize=mode,
        wall_time_s=t.seconds,
        extra={"n_real": len(x), "n_fake": len(y), "sigma": sigma, "scale": scale,
               "estimator": "biased (V-statistic) MMD², as the CMMD reference code",
               "preprocess": _preprocess(bb, mode)},
        **backbone_fields(bb),
    )
