"""The sensitivity run: edit and perturb images, score every copy, test every metric.

See :mod:`pytest_i2i.validation.sensitivity` for what is measured and how.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from pytest_i2i.errors import I2IInputError, UnknownNameError, WeightsError
from pytest_i2i.validation.sensitivity.metrics import EngineMetric, engine_metrics
from pytest_i2i.validation.sensitivity.result import (
    AUROC_TARGET, CALIBRATED, UNCALIBRATED, WEIGHT_FREE, SensitivityResult,
)
from pytest_i2i.validation.sensitivity.statement import build_statement

AREAS_PERCENT: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0)


def _load_images(images: Any, size: int, n_images: int) -> tuple[list[str], list[torch.Tensor]]:
    from pytest_i2i.images import load_images, sample_images
    from pytest_i2i.images.prepare import center_crop_to_aspect
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
        metrics: names from :func:`available_metrics` (default all: derived from the metric registry).
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

    from pytest_i2i.backbones.factory import backbone as load_backbone
    from pytest_i2i.perturb import NUISANCES, OPS, REGION_KINDS, apply_nuisance, local_edit
    from pytest_i2i.validation.functional.detection import detection_auroc, permutation_test

    table = engine_metrics()
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
    chosen: list[EngineMetric] = []
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
        statistic = d.spec.resolve("statistic")
        x = np.stack(store["orig"])
        nuis_stats = {}
        for n_name in nuisance_names:
            res = permutation_test(statistic, x, np.stack(store[("nuisance", n_name)]), paired=True,
                                   n_permutations=n_permutations, seed=seed)
            nuis_stats[n_name] = res.observed
            nuisance_sets.append({**common, "nuisance": n_name, "statistic": res.observed, "p_value": res.p_value,
                                  "n_permutations": res.n_permutations, "exact": res.exact})
        for op in op_names:
            for area in areas:
                res = permutation_test(statistic, x, np.stack(store[("edit", op, area)]), paired=True,
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
    img: torch.Tensor, copies: list[torch.Tensor], chosen: list[EngineMetric], backbones: dict[str, Any],
    batch_size: int, set_keys: set[tuple[str, str]],
) -> dict[Any, Any]:
    """Paired scores of ``img`` against every copy, and the set-level feature rows, per metric.

    Kernels run on image batches (weight-free metrics) or on the backbone features, computed once
    per image for every metric sharing the backbone; a metric without a kernel is called as a
    function on the original and its copies.
    """
    from pytest_i2i.images import load_images

    out: dict[Any, Any] = {}
    n = len(copies)
    for d in chosen:
        if d.kind != "paired" or d.backbone is not None:
            continue
        kernel = d.spec.resolve("kernel")
        parts = []
        for start in range(0, n, batch_size):
            b = torch.stack(copies[start:start + batch_size])
            a = img[None].expand_as(b)
            parts.append(_pick(kernel(a, b), d) if kernel is not None else _call(d, a, b, None, batch_size))
        out[d.name] = torch.cat(parts)
    called: dict[str, Any] = {}  # one call per metric without a kernel, shared by its poolings
    for bb_name in sorted({d.backbone for d in chosen if d.backbone is not None}):
        bb = backbones[bb_name]
        here = [d for d in chosen if d.backbone == bb_name and d.kind == "paired"]
        # Metrics without a kernel (LPIPS, DISTS: feature maps at full resolution) are called as
        # functions; the backbone features are computed only when a kernel or a set metric reads them.
        if any(d.spec.kernel is not None for d in here) or any(sk[0] == bb_name for sk in set_keys):
            f_orig = bb.features(load_images([img], name="original"), batch_size=batch_size)
            f_copies = bb.features(load_images(copies, name="copies"), batch_size=batch_size)
            fa = {k: v.expand(n, *v.shape[1:]) for k, v in f_orig.items()}
        for d in here:
            kernel = d.spec.resolve("kernel")
            if kernel is not None:
                out[d.name] = _pick(kernel(fa, f_copies), d)
            else:
                if d.spec.name not in called:
                    called[d.spec.name] = _call_result(d, img[None].expand(n, *img.shape), torch.stack(copies), bb,
                                                       batch_size)
                out[d.name] = _values_of(called[d.spec.name], d)
        for sk in set_keys:
            if sk[0] == bb_name:
                out[sk] = (f_copies[sk[1]].double().numpy(), f_orig[sk[1]][0].double().numpy())
    return out


def _pick(values: Any, d: EngineMetric) -> torch.Tensor:
    """The per-copy values of ``d`` from a kernel's output (a tensor, or a dict of poolings)."""
    if isinstance(values, dict):
        values = values[d.pool]
    return torch.as_tensor(values, dtype=torch.float64).flatten()


def _call(d: EngineMetric, a: torch.Tensor, b: torch.Tensor, bb: Any, batch_size: int) -> torch.Tensor:
    """A metric without a kernel, called on (original, copy) pairs: its per-sample values or a pooling."""
    return _values_of(_call_result(d, a, b, bb, batch_size), d)


def _call_result(d: EngineMetric, a: torch.Tensor, b: torch.Tensor, bb: Any, batch_size: int) -> Any:
    """The result of a metric without a kernel on (original, copy) pairs (with the loaded backbone)."""
    kwargs: dict[str, Any] = {"batch_size": batch_size} if "batch_size" in d.spec.accepts else {}
    if bb is not None:
        kwargs["backbone"] = bb
    return d.spec.function(a, b, **kwargs)


def _values_of(result: Any, d: EngineMetric) -> torch.Tensor:
    """``d``'s per-pair values from a metric result: its per-sample values or a pooling in ``extra``."""
    values = result.per_sample if d.pool == "value" else result.extra[d.pool]
    if values is None:
        raise I2IInputError(f"{d.spec.name} returned no per-sample values; the sensitivity engine needs one per pair")
    return torch.as_tensor(values, dtype=torch.float64)
