"""The sensitivity engine: which metrics notice small local edits, and which ignore nuisances?

For every image, every operation of :data:`pytest_i2i.perturb.OPS` (at its clearly visible
default magnitude) is applied inside a seeded region (default an ellipse) of each area in
:data:`AREAS_PERCENT`, ``repeats`` times with different regions; every nuisance of
:data:`pytest_i2i.perturb.NUISANCES` is applied once. Then:

* **Paired metrics** (l1, psnr, ssim, ms_ssim, ciede2000, dino_image, vit_patch_distance,
  vit_patch_distance_max, clip_image) score each image against each of its copies. The
  detection AUROC of an (operation, area) cell is
  :func:`~pytest_i2i.validation.functional.detection.detection_auroc` of the edited copies'
  scores (``n_images x repeats``) against all nuisance copies' scores (``n_images x 4``),
  sign-aware (a similarity's negation is the score), ties counted 1/2.
* **Set-level metrics** (fid, kid, inception_score, fd_vit, cmmd) compare the set of originals
  with the set of edited copies (repeat 0) and with each nuisance set. Significance: the
  paired permutation test of
  :func:`~pytest_i2i.validation.functional.detection.permutation_test`: for each image, its
  original and its edited copy swap sets with probability 1/2 (all ``2**n`` swaps enumerated
  when ``2**n <= n_permutations``), the statistic recomputed, one-sided p-value. Statistics:
  FID / FD-ViT = Fréchet distance of the features (computed in its exact low-rank form,
  :func:`frechet_distance_features`), KID = unbiased polynomial-kernel MMD² on the whole sets
  (one "subset" of all images), IS = ``|IS(edited) - IS(originals)|`` (one split), CMMD = RBF
  MMD² x 1000 of normalised CLIP embeddings.

Each backbone is loaded once; all copies of an image go through it in batches, once. With
``weights="random"`` every backbone metric is labelled ``uncalibrated`` (tables, figures and the
statement). Nothing here assumes which metric is better: the statement is computed from the
numbers (the smallest area at which a paired metric reaches AUROC >= 0.9, or at which a set
metric's permutation test rejects at ``alpha``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pytest_i2i.errors import I2IInputError, UnknownNameError, WeightsError
from pytest_i2i.metrics.functional.frechet import frechet_distance_features

AREAS_PERCENT: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0)
AUROC_TARGET = 0.9
WEIGHT_FREE = "weight-free"
UNCALIBRATED = "uncalibrated"
CALIBRATED = "calibrated"


# --------------------------------------------------------------------------------------------
# metric table
# --------------------------------------------------------------------------------------------


def _kid_statistic(x: np.ndarray, y: np.ndarray) -> float:
    from pytest_i2i.metrics.functional.kernel import mmd2_unbiased

    return mmd2_unbiased(x, y)


def _is_statistic(x: np.ndarray, y: np.ndarray) -> float:
    from pytest_i2i.metrics.functional.inception_score import inception_score_from_logits

    def score(logits: np.ndarray) -> float:
        return inception_score_from_logits(logits, splits=1, shuffle=False)[0]

    return abs(score(y) - score(x))


def _cmmd_statistic(x: np.ndarray, y: np.ndarray) -> float:
    from pytest_i2i.metrics.functional.clip import mmd2_rbf, normalize_embeddings

    return float(mmd2_rbf(normalize_embeddings(x), normalize_embeddings(y)))


def _cosine(key: str) -> Callable[[dict, dict], torch.Tensor]:
    def fn(fa: dict, fb: dict) -> torch.Tensor:
        from pytest_i2i.metrics.functional.vit import cosine_similarity

        return cosine_similarity(fa[key].flatten(1), fb[key].flatten(1))

    return fn


def _patch(pool: str) -> Callable[[dict, dict], torch.Tensor]:
    def fn(fa: dict, fb: dict) -> torch.Tensor:
        from pytest_i2i.metrics.functional.vit import patch_distance_map, pool_distance_map

        return pool_distance_map(patch_distance_map(fa["patch_tokens"], fb["patch_tokens"]), 10.0)[pool]

    return fn


def _weight_free(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from pytest_i2i.metrics.functional import paired

        return getattr(paired, f"{name}_per_sample")(a, b)

    return fn


@dataclass(frozen=True)
class MetricDef:
    """How the engine computes one metric.

    ``kind`` is ``"paired"`` (``fn(a, b) -> (N,)`` on image batches when ``backbone`` is None,
    else on feature dicts) or ``"set"`` (``fn(x, y) -> float`` on feature rows ``feature``,
    large = the sets differ). ``similarity``: a paired metric that is larger for closer images.
    """

    name: str
    kind: str
    fn: Callable[..., Any]
    similarity: bool = False
    backbone: str | None = None
    feature: str | None = None
    min_size: int = 0
    note: str = ""


def _metric_table() -> dict[str, MetricDef]:
    from pytest_i2i.metrics.clip import CMMD_BACKBONE, DEFAULT_BACKBONE as CLIP_BACKBONE
    from pytest_i2i.metrics.inception import DEFAULT_BACKBONE as INCEPTION_BACKBONE
    from pytest_i2i.metrics.vit import DEFAULT_BACKBONE as VIT_BACKBONE

    defs = [
        MetricDef("l1", "paired", _weight_free("l1")),
        MetricDef("psnr", "paired", _weight_free("psnr"), similarity=True),
        MetricDef("ssim", "paired", _weight_free("ssim"), similarity=True, min_size=11),
        MetricDef("ms_ssim", "paired", _weight_free("ms_ssim"), similarity=True, min_size=176),
        MetricDef("ciede2000", "paired", _weight_free("ciede2000")),
        MetricDef("dino_image", "paired", _cosine("cls"), similarity=True, backbone=VIT_BACKBONE),
        MetricDef("vit_patch_distance", "paired", _patch("mean"), backbone=VIT_BACKBONE,
                  note="mean of the patch-distance map (the metric's value)"),
        MetricDef("vit_patch_distance_max", "paired", _patch("max"), backbone=VIT_BACKBONE,
                  note="max of the patch-distance map (vit_patch_distance's extra['max'])"),
        MetricDef("clip_image", "paired", _cosine("image_embeds"), similarity=True, backbone=CLIP_BACKBONE),
        MetricDef("fid", "set", frechet_distance_features, backbone=INCEPTION_BACKBONE, feature="pool3"),
        MetricDef("kid", "set", _kid_statistic, backbone=INCEPTION_BACKBONE, feature="pool3",
                  note="unbiased MMD² on the whole sets (one subset)"),
        MetricDef("inception_score", "set", _is_statistic, backbone=INCEPTION_BACKBONE, feature="logits_unbiased",
                  note="|IS(edited) - IS(originals)|, one split"),
        MetricDef("fd_vit", "set", frechet_distance_features, backbone=VIT_BACKBONE, feature="cls"),
        MetricDef("cmmd", "set", _cmmd_statistic, backbone=CMMD_BACKBONE, feature="image_embeds"),
    ]
    return {d.name: d for d in defs}


def available_metrics() -> list[str]:
    """Names of every metric the engine measures, paired first."""
    return list(_metric_table())


WEIGHT_FREE_METRICS = ("l1", "psnr", "ssim", "ms_ssim", "ciede2000")


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------


@dataclass
class SensitivityResult:
    """Everything a sensitivity run measured.

    Attributes:
        table: tidy :class:`pandas.DataFrame`, one row per (metric, op, area): ``metric``,
            ``kind``, ``op``, ``area_percent``, ``against`` (paired: ``all`` nuisances pooled or one
            nuisance's name; set-level: ``originals``), ``auroc`` (paired), ``n_edit``, ``n_nuisance``,
            ``statistic``, ``p_value``, ``nuisance_max_statistic``, ``exceeds_nuisances`` (set-level),
            ``detected`` (AUROC >= 0.9, or p < alpha), ``calibration``
            (``weight-free`` / ``calibrated`` / ``uncalibrated``), ``backbone``.
        scores: tidy per-copy paired scores: ``metric``, ``image``, ``kind`` (edit / nuisance),
            ``op``, ``area_percent``, ``repeat``, ``nuisance``, ``value``.
        nuisance_sets: set-level statistics and p-values of each nuisance set.
        config: the run's parameters; ``skipped``: metric -> reason; ``statement``: the lines of
        the computed statement; ``calibrated``: False when any backbone had random weights.
    """

    table: Any
    scores: Any
    nuisance_sets: list[dict[str, Any]]
    config: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    calibration: dict[str, str] = field(default_factory=dict)
    statement: list[str] = field(default_factory=list)

    @property
    def calibrated(self) -> bool:
        return UNCALIBRATED not in self.calibration.values()

    def smallest_detected_area(self, metric: str, op: str, against: str = "all",
                               column: str = "detected") -> float | None:
        """Smallest area (percent) at which ``metric`` detects ``op``.

        Paired metrics: the smallest tested area with AUROC >= 0.9 (``against``: ``"all"``
        nuisance copies pooled, the default, or one nuisance's name). Set metrics: the smallest
        area from which ``column`` holds at every larger tested area too (``"detected"``:
        permutation p < alpha; ``"exceeds_nuisances"``: the statistic exceeds every nuisance
        set's), so one chance rejection among the many cells is not read as a detection.
        """
        t = self.table
        rows = t[(t.metric == metric) & (t.op == op) & t.against.isin([against, "originals"])]
        rows = rows.sort_values("area_percent")
        if rows.empty:
            return None
        flags = rows[column].astype(bool).to_numpy()
        areas = rows.area_percent.to_numpy()
        if rows.kind.iloc[0] == "paired":
            return float(areas[flags][0]) if flags.any() else None
        sustained = None
        for area, flag in zip(areas[::-1], flags[::-1]):
            if not flag:
                break
            sustained = float(area)
        return sustained

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "pytest-i2i-sensitivity/1",
            "calibrated": self.calibrated,
            "label": "" if self.calibrated else UNCALIBRATED,
            "config": self.config,
            "calibration": self.calibration,
            "skipped": self.skipped,
            "statement": self.statement,
            "table": _records(self.table),
            "nuisance_sets": self.nuisance_sets,
            "scores": _records(self.scores),
        }


def _records(df: Any) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({k: _json_value(v) for k, v in rec.items()})
    return out


def _json_value(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        f = float(v)
        if math.isnan(f):
            return None
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def _load_images(images: Any, size: int, n_images: int) -> tuple[list[str], list[torch.Tensor]]:
    from pytest_i2i.images import load_images, sample_images
    from pytest_i2i.images.imageset import center_crop_to_aspect
    from pytest_i2i.images.resize import resize_batch

    if images is None:
        s = sample_images(size)
    else:
        s = load_images(images, name="sensitivity images")
    k = min(n_images, len(s))
    if k < 2:
        raise I2IInputError(f"sensitivity images: need at least 2 images, got {len(s)} ({s.label})")
    out = []
    for i in range(k):
        img = s[i]
        if tuple(img.shape[1:]) != (size, size):
            img = resize_batch(center_crop_to_aspect(img, (size, size))[None], (size, size), "clean")[0]
        out.append(img.contiguous())
    return list(s.names[:k]), out


def _parse_list(values: Sequence[str] | str | None, known: Sequence[str], what: str) -> list[str]:
    if values is None:
        return list(known)
    items = [v.strip() for v in (values.split(",") if isinstance(values, str) else values) if str(v).strip()]
    unknown = [v for v in items if v not in known]
    if unknown or not items:
        raise UnknownNameError(what, ", ".join(unknown) or "(none)", known)
    return items


def edit_seed(seed: int, image_index: int, repeat: int, area_index: int) -> int:
    """The seed of the edited copies of image ``image_index`` (every op shares the region of a
    (repeat, area), so operations are compared on the same pixels)."""
    return seed * 1_000_000 + image_index * 10_000 + repeat * 100 + area_index


def run_sensitivity(
    images: Any = None,
    *,
    metrics: Sequence[str] | str | None = None,
    ops: Sequence[str] | str | None = None,
    areas_percent: Sequence[float] = AREAS_PERCENT,
    weights: str | os.PathLike | None = None,
    require_weights: bool = False,
    size: int = 256,
    n_images: int = 8,
    repeats: int = 2,
    region: str = "ellipse",
    seed: int = 0,
    n_permutations: int = 999,
    alpha: float = 0.05,
    device: Any = None,
    batch_size: int = 16,
    progress: Callable[[str], None] | None = None,
) -> SensitivityResult:
    """Measure every requested metric's detection of local edits against nuisances.

    Args:
        images: ``None`` (scikit-image's bundled colour photos) or any image input of
            :func:`pytest_i2i.load_images` (a folder, ...). Images are centre-cropped to squares
            and resized to ``size`` (clean bicubic); the first ``n_images`` are used.
        metrics: names from :func:`available_metrics` (default all).
        ops: operation names from :data:`pytest_i2i.perturb.OPS` (default all), each at its
            default magnitude.
        areas_percent: region areas in percent of the image (0.1 to 50).
        weights: backbone weights: ``None`` (published files), a path, or ``"random"``.
        require_weights: raise instead of skipping metrics whose weights are missing.
        size, n_images: image side and count (>= 2 images).
        repeats: edited copies per (image, op, area), each with its own region seed.
        region: region kind (``"ellipse"``, ``"box"``, ``"blob"``).
        seed: base seed of regions and operations (copy seeds are derived from it).
        n_permutations, alpha: of the set-level permutation test.
        device, batch_size: of the backbone forward passes.
        progress: called with a short line per image (e.g. ``print``).

    Returns:
        A :class:`SensitivityResult`.

    Raises:
        I2IInputError / UnknownNameError: bad arguments. WeightsError: missing weights under
        ``require_weights``.
    """
    import pandas as pd

    from pytest_i2i.backbones.registry import backbone as load_backbone
    from pytest_i2i.perturb import NUISANCES, OPS, REGION_KINDS, apply_nuisance, local_edit
    from pytest_i2i.validation.functional.detection import detection_auroc, permutation_test

    table = _metric_table()
    metric_names = _parse_list(metrics, list(table), "metric")
    op_names = _parse_list(ops, list(OPS), "operation")
    if region not in REGION_KINDS:
        raise UnknownNameError("region kind", region, REGION_KINDS)
    areas = sorted(float(a) for a in areas_percent)
    if not areas or any(not 0.1 <= a <= 50.0 for a in areas):
        raise I2IInputError(f"--areas must be percentages in [0.1, 50]; got {list(areas_percent)}")
    for name, value, low in (("size", size, 16), ("n_images", n_images, 2), ("repeats", repeats, 1),
                             ("batch_size", batch_size, 1), ("n_permutations", n_permutations, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise I2IInputError(f"`{name}` must be an int >= {low}; got {value!r}")
    if not 0.0 < alpha < 1.0:
        raise I2IInputError(f"`alpha` must be in (0, 1); got {alpha}")

    skipped: dict[str, str] = {}
    chosen: list[MetricDef] = []
    for name in metric_names:
        d = table[name]
        if size < d.min_size:
            skipped[name] = f"needs images of at least {d.min_size} px (--size {size})"
        else:
            chosen.append(d)
    backbones: dict[str, Any] = {}
    calibration: dict[str, str] = {}
    for d in chosen:
        if d.backbone is None:
            calibration[d.name] = WEIGHT_FREE
            continue
        if d.backbone not in backbones:
            try:
                backbones[d.backbone] = load_backbone(d.backbone, weights=weights, device=device)
            except WeightsError as e:
                if require_weights:
                    raise
                backbones[d.backbone] = e
        bb = backbones[d.backbone]
        if isinstance(bb, Exception):
            skipped[d.name] = f"backbone {d.backbone!r} weights missing: {bb}"
        else:
            calibration[d.name] = CALIBRATED if bb.calibrated else UNCALIBRATED
    chosen = [d for d in chosen if d.name not in skipped]
    if not chosen:
        raise I2IInputError(f"no metric can be computed: {skipped}")

    names, originals = _load_images(images, size, n_images)
    nuisance_names = list(NUISANCES)
    score_rows: list[dict[str, Any]] = []
    set_features: dict[tuple[str, str], dict[str, Any]] = {}  # (backbone, feature) -> {"orig": [...], key: [...]}
    set_keys = {(d.backbone, d.feature) for d in chosen if d.kind == "set"}

    for i, (img_name, img) in enumerate(zip(names, originals)):
        keys: list[dict[str, Any]] = []
        copies: list[torch.Tensor] = []
        for a_idx, area in enumerate(areas):
            for r in range(repeats):
                copy_seed = edit_seed(seed, i, r, a_idx)
                for op in op_names:
                    p = local_edit(img, op, area=area / 100.0, region=region, seed=copy_seed)
                    keys.append({"image": img_name, "kind": "edit", "op": op, "area_percent": area, "repeat": r,
                                 "nuisance": None})
                    copies.append(p.image)
        for n_name in nuisance_names:
            keys.append({"image": img_name, "kind": "nuisance", "op": None, "area_percent": None, "repeat": 0,
                         "nuisance": n_name})
            copies.append(apply_nuisance(img, n_name, seed=seed + i).image)
        values = _score_image(img, copies, chosen, backbones, batch_size, set_keys)
        for d in chosen:
            if d.kind == "paired":
                for k, v in zip(keys, values[d.name].tolist()):
                    score_rows.append({"metric": d.name, **k, "value": float(v)})
        for sk in set_keys:
            feats, orig_row = values[sk]
            store = set_features.setdefault(sk, {"orig": []})
            store["orig"].append(orig_row)
            for k, row in zip(keys, feats):
                if k["repeat"] == 0:
                    tag = ("edit", k["op"], k["area_percent"]) if k["kind"] == "edit" else ("nuisance", k["nuisance"])
                    store.setdefault(tag, []).append(row)
        if progress is not None:
            progress(f"sensitivity: image {i + 1}/{len(names)} ({img_name}): {len(copies)} copies scored")

    scores = pd.DataFrame(score_rows, columns=["metric", "image", "kind", "op", "area_percent", "repeat", "nuisance",
                                               "value"])
    rows: list[dict[str, Any]] = []
    nuisance_sets: list[dict[str, Any]] = []
    for d in chosen:
        common = {"metric": d.name, "kind": d.kind, "calibration": calibration[d.name],
                  "backbone": d.backbone or ""}
        if d.kind == "paired":
            s = scores[scores.metric == d.name]
            nuis = s[s.kind == "nuisance"]
            negatives = {"all": nuis.value.to_numpy(),
                         **{n: nuis[nuis.nuisance == n].value.to_numpy() for n in nuisance_names}}
            for op in op_names:
                for area in areas:
                    pos = s[(s.kind == "edit") & (s.op == op) & (s.area_percent == area)].value.to_numpy()
                    for against, neg in negatives.items():
                        auc = detection_auroc(pos, neg, higher_is_more_similar=d.similarity)
                        rows.append({**common, "op": op, "area_percent": area, "against": against, "auroc": auc,
                                     "n_edit": len(pos), "n_nuisance": len(neg), "statistic": float("nan"),
                                     "p_value": float("nan"), "nuisance_max_statistic": float("nan"),
                                     "detected": auc >= AUROC_TARGET})
            continue
        store = set_features[(d.backbone, d.feature)]
        x = np.stack(store["orig"])
        nuis_stats = {}
        for n_name in nuisance_names:
            res = permutation_test(d.fn, x, np.stack(store[("nuisance", n_name)]), paired=True,
                                   n_permutations=n_permutations, seed=seed)
            nuis_stats[n_name] = res.observed
            nuisance_sets.append({**common, "nuisance": n_name, "statistic": res.observed, "p_value": res.p_value,
                                  "n_permutations": res.n_permutations, "exact": res.exact})
        for op in op_names:
            for area in areas:
                res = permutation_test(d.fn, x, np.stack(store[("edit", op, area)]), paired=True,
                                       n_permutations=n_permutations, seed=seed)
                rows.append({**common, "op": op, "area_percent": area, "against": "originals", "auroc": float("nan"),
                             "n_edit": len(x),
                             "n_nuisance": len(x), "statistic": res.observed, "p_value": res.p_value,
                             "nuisance_max_statistic": max(nuis_stats.values()),
                             "detected": res.p_value < alpha,
                             "exceeds_nuisances": res.observed > max(nuis_stats.values())})
    result_table = pd.DataFrame(rows)
    config = {
        "images": "bundled scikit-image photos" if images is None else str(images), "image_names": names,
        "metrics": [d.name for d in chosen], "ops": op_names,
        "magnitudes": {op: {OPS[op].magnitude: OPS[op].default, "unit": OPS[op].unit} for op in op_names},
        "areas_percent": areas, "weights": None if weights is None else str(weights), "size": size,
        "n_images": len(names), "repeats": repeats, "region": region, "seed": seed,
        "n_permutations": n_permutations, "alpha": alpha, "auroc_target": AUROC_TARGET,
        "nuisances": nuisance_names,
        "backbones": {name: {"weights_sha256": bb.weights_sha256, "calibrated": bb.calibrated}
                      for name, bb in backbones.items() if not isinstance(bb, Exception)},
        "set_level_permutation": "paired: each image's original and edited copy swap sets with probability 1/2; "
                                 "one-sided p-value of the statistic (exact enumeration when 2**n <= n_permutations)",
        "notes": {d.name: d.note for d in chosen if d.note},
    }
    result = SensitivityResult(result_table, scores, nuisance_sets, config, skipped, calibration)
    result.statement = build_statement(result)
    return result


def _score_image(
    img: torch.Tensor, copies: list[torch.Tensor], chosen: list[MetricDef], backbones: dict[str, Any],
    batch_size: int, set_keys: set[tuple[str, str]],
) -> dict[Any, Any]:
    """Paired scores of ``img`` against every copy, and the set-level feature rows, per metric."""
    from pytest_i2i.images import load_images

    out: dict[Any, Any] = {}
    for d in chosen:
        if d.kind == "paired" and d.backbone is None:
            parts = []
            for start in range(0, len(copies), batch_size):
                b = torch.stack(copies[start:start + batch_size])
                parts.append(d.fn(img[None].expand_as(b), b))
            out[d.name] = torch.cat(parts)
    for bb_name in sorted({d.backbone for d in chosen if d.backbone is not None}):
        bb = backbones[bb_name]
        f_orig = bb.features(load_images([img], name="original"), batch_size=batch_size)
        f_copies = bb.features(load_images(copies, name="copies"), batch_size=batch_size)
        for d in chosen:
            if d.backbone != bb_name:
                continue
            if d.kind == "paired":
                n = len(copies)
                fa = {k: v.expand(n, *v.shape[1:]) for k, v in f_orig.items()}
                out[d.name] = d.fn(fa, f_copies)
        for sk in set_keys:
            if sk[0] == bb_name:
                out[sk] = (f_copies[sk[1]].double().numpy(), f_orig[sk[1]][0].double().numpy())
    return out


# --------------------------------------------------------------------------------------------
# statement, files, figures
# --------------------------------------------------------------------------------------------


def _fmt_area(a: float | None) -> str:
    return "never in the tested range" if a is None else f"{a:g}%"


def build_statement(result: SensitivityResult) -> list[str]:
    """Lines computed from the numbers: per metric and operation, the smallest detected area."""
    cfg = result.config
    areas = cfg["areas_percent"]
    lines = []
    if not result.calibrated:
        lines.append("UNCALIBRATED: backbone metrics used random weights; their numbers say nothing about the "
                     "published models.")
    lines.append(f"Detection of local edits against nuisances on {cfg['n_images']} images at {cfg['size']} px, "
                 f"areas {', '.join(f'{a:g}' for a in areas)}% ({cfg['region']} regions, {cfg['repeats']} per image).")
    lines.append(f"Paired metrics: smallest area with AUROC >= {AUROC_TARGET}; set metrics: smallest area from which "
                 f"the paired permutation test gives p < {cfg['alpha']} at every larger tested area too.")
    for metric in cfg["metrics"]:
        label = result.calibration.get(metric, "")
        tag = f" [{label}]" if label == UNCALIBRATED else ""
        parts = [f"{op} {_fmt_area(result.smallest_detected_area(metric, op))}" for op in cfg["ops"]]
        detected = [result.smallest_detected_area(metric, op) for op in cfg["ops"]]
        n_hit = sum(a is not None for a in detected)
        lines.append(f"{metric}{tag}: detects {n_hit}/{len(cfg['ops'])} ops; " + "; ".join(parts))
        if metric in set(result.table[result.table.kind == "set"].metric):
            above = [result.smallest_detected_area(metric, op, column="exceeds_nuisances") for op in cfg["ops"]]
            lines.append(f"  {metric}: exceeds its value on every nuisance set for "
                         f"{sum(a is not None for a in above)}/{len(cfg['ops'])} ops; "
                         + "; ".join(f"{op} {_fmt_area(a)}" for op, a in zip(cfg["ops"], above)))
        if metric in set(result.table[result.table.kind == "paired"].metric):
            per = [f"{n} {sum(result.smallest_detected_area(metric, op, n) is not None for op in cfg['ops'])}"
                   for n in cfg["nuisances"]]
            lines.append(f"  {metric}: ops detected against each nuisance alone: " + ", ".join(per))
    for ref, other in (("fid", "fd_vit"), ("dino_image", "clip_image"), ("ssim", "vit_patch_distance")):
        if ref in cfg["metrics"] and other in cfg["metrics"]:
            lines.append(_compare(result, other, ref))
    set_rows = [r for r in result.nuisance_sets if r["p_value"] < cfg["alpha"]]
    for r in set_rows:
        lines.append(f"note: {r['metric']} also separates the {r['nuisance']} nuisance set from the originals "
                     f"(p = {r['p_value']:.3g}).")
    for metric, reason in result.skipped.items():
        lines.append(f"{metric}: skipped ({reason.splitlines()[0]})")
    return lines


def _compare(result: SensitivityResult, a: str, b: str) -> str:
    smaller = larger = same = 0
    for op in result.config["ops"]:
        x, y = result.smallest_detected_area(a, op), result.smallest_detected_area(b, op)
        x = math.inf if x is None else x
        y = math.inf if y is None else y
        if x < y:
            smaller += 1
        elif x > y:
            larger += 1
        else:
            same += 1
    labels = {result.calibration.get(a), result.calibration.get(b)}
    tag = " [uncalibrated]" if UNCALIBRATED in labels else ""
    return (f"{a} vs {b}{tag}: {a} detects at a smaller area for {smaller} ops, a larger area for {larger}, "
            f"the same for {same}.")


def write_outputs(result: SensitivityResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``sensitivity.csv`` (the table), ``scores.csv``, ``sensitivity.json`` (every number),
    ``statement.txt`` and the figures ``sensitivity_paired.png`` / ``sensitivity_set.png``.

    Uncalibrated runs carry the label in the CSV (``calibration`` column), the JSON
    (``calibrated: false``), the statement's first line, the figure titles and the file
    ``UNCALIBRATED.txt``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "sensitivity.csv", "scores": out / "scores.csv", "json": out / "sensitivity.json",
             "statement": out / "statement.txt"}
    result.table.to_csv(paths["table"], index=False)
    result.scores.to_csv(paths["scores"], index=False)
    tmp = paths["json"].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1, allow_nan=False))
    tmp.replace(paths["json"])
    paths["statement"].write_text("\n".join(result.statement) + "\n")
    if not result.calibrated:
        (out / "UNCALIBRATED.txt").write_text(
            "Backbone metrics in this run used random weights (weights='random'): every backbone number is "
            "uncalibrated.\n")
    paths.update(plot(result, out))
    return paths


def plot(result: SensitivityResult, out_dir: Path) -> dict[str, Path]:
    """AUROC vs area (paired) and p-value vs area (set-level): one panel per op, one line per metric."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}
    ops = result.config["ops"]
    label = "" if result.calibrated else " - UNCALIBRATED (random backbone weights)"
    for kind, column, ylabel, fname in (("paired", "auroc", "detection AUROC", "sensitivity_paired.png"),
                                        ("set", "p_value", "permutation p-value", "sensitivity_set.png")):
        t = result.table[(result.table.kind == kind) & result.table.against.isin(["all", "originals"])]
        if t.empty:
            continue
        cols = min(4, len(ops))
        rows = math.ceil(len(ops) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False, sharey=True)
        for ax, op in zip(axes.flat, ops):
            for metric, g in t[t.op == op].groupby("metric", sort=False):
                g = g.sort_values("area_percent")
                uncal = result.calibration.get(metric) == UNCALIBRATED
                ax.plot(g.area_percent, g[column], marker="o", ms=3, linestyle="--" if uncal else "-",
                        label=metric + (" (uncal.)" if uncal else ""))
            ax.set_xscale("log")
            ax.set_title(op, fontsize=9)
            ax.set_xlabel("area (% of image)", fontsize=8)
            if kind == "paired":
                ax.axhline(AUROC_TARGET, color="grey", lw=0.8, ls=":")
                ax.set_ylim(0.0, 1.02)
            else:
                ax.set_yscale("log")
                ax.axhline(result.config["alpha"], color="grey", lw=0.8, ls=":")
        for ax in axes.flat[len(ops):]:
            ax.axis("off")
        for ax in axes[:, 0]:
            ax.set_ylabel(ylabel, fontsize=8)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=7)
        fig.suptitle(f"Sensitivity to local edits ({kind} metrics){label}", fontsize=10)
        fig.tight_layout(rect=(0, 0.07, 1, 0.96))
        path = out_dir / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths[kind + "_plot"] = path
    return paths
