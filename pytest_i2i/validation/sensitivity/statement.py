"""The statement of a sensitivity run: lines computed from its numbers, never assumed."""

from __future__ import annotations

import math

from pytest_i2i.validation.sensitivity.result import AUROC_TARGET, UNCALIBRATED, SensitivityResult


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
    for ref, other in (("fid", "fd_vit"), ("dino_image", "clip_image"), ("ssim", "vit_patch_distance"),
                       ("feature_distance", "feature_map_distance"), ("feature_distance", "feature_map_distance_max")):
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
