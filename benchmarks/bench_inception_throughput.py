"""Benchmark: images/s of FID Inception-v3 feature extraction, ours vs torchmetrics and torch-fidelity.

Ours:  ``pytest_i2i.backbone("inception-fid", weights=<file>)``, then
       (a) ``bb(norm(batch))`` on float batches already at 299x299 (``norm``: the backbone's
           input normalisation, ``bb.preprocess().normalize``, which the pipeline applies),
       (b) the same plus ``FeatureStats.update(pool3)`` (the bookkeeping the peer's ``update`` also does),
       (c) the full path ``bb.features(load_images(<uint8 NHWC array>), resize="legacy-pytorch")``.
Peer:  ``torchmetrics.image.fid.FrechetInceptionDistance(feature=2048,
       feature_extractor_weights_path=<same file>, normalize=True).update(batch, real=True)``
       (torchmetrics hands the path to torch-fidelity's ``FeatureExtractorInceptionV3``, whose
       state_dict keys are the same as ours);
       ``torch_fidelity.feature_extractor_inceptionv3.FeatureExtractorInceptionV3("inception-v3-compat",
       ["2048"], feature_extractor_weights_path=<same file>)`` called on the uint8 batches under
       ``torch.no_grad()``, as torch-fidelity's own ``calculate_metrics`` loop does.

Both sides load the SAME weights file: a seeded random init of the exact architecture
(``backbone("inception-fid", weights="random").model.state_dict()``) saved to a temp file, so no
download is needed. Same images (the bundled sample photos at 299x299, repeated), same batch
size, same ``torch.set_num_threads``; one warm-up batch per variant, then the median of
``--repeats`` full passes, the variants interleaved (rotating order) so that load from other
processes hits them alike.

Feature agreement (recorded, not asserted):
- ``identical preprocessing``: ours on ``u/256`` vs torch-fidelity's network on the uint8 ``u``:
  both then feed exactly ``(u - 128) / 128`` to the first convolution, so differences are float
  round-off only (plus torchmetrics' antialiased 299->299 resize, an identity);
- ``as used``: ours on ``u/255`` (our convention ``2x - 1``) vs the peer's path for
  ``normalize=True`` (``(x * 255).byte()`` then ``(u - 128) / 128``): differs by design.

Target (issue 8): ours/peer images/s >= 1.2 against both peers.

Run: ``python benchmarks/bench_inception_throughput.py`` (about 2-3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

TARGET_RATIO = 1.2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-images", type=int, default=64, help="images per timed pass (default %(default)s)")
    p.add_argument("--check-images", type=int, default=8, help="images used for the feature agreement check")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _common as C  # noqa: E402

    C.add_throughput_args(p, "inception_throughput.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _common as C  # noqa: E402

    import numpy as np
    import torch

    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)

    import pytest_i2i
    from pytest_i2i.images import load_images, sample_images
    from pytest_i2i.metrics.functional.frechet import FeatureStats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch_fidelity
        import torchmetrics
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        from torchmetrics.image.fid import FrechetInceptionDistance

    t_all = time.perf_counter()
    tmpdir = tempfile.TemporaryDirectory(prefix="i2i-bench-")
    wfile = Path(tmpdir.name) / "inception-fid-random-seed0.pth"
    torch.save(pytest_i2i.backbone("inception-fid", weights="random").model.state_dict(), wfile)

    t = time.perf_counter()
    bb = pytest_i2i.backbone("inception-fid", weights=str(wfile))
    bb.memo.max_bytes = 0  # measure extraction itself: no feature memo hits across repeats
    t_build_ours = time.perf_counter() - t
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as peer_build_warnings:
        warnings.simplefilter("always")
        fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(wfile), normalize=True)
    t_build_peer = time.perf_counter() - t
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tfid = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(wfile))
    t_build_tfid = time.perf_counter() - t
    peer_antialias = getattr(fid.inception, "use_antialias", None)

    # images: the bundled photos at 299x299 as uint8 NHWC, repeated to n_images
    photos = sample_images(299)
    base = np.stack([(photos[i] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy() for i in range(len(photos))])
    reps = -(-args.n_images // len(base))
    arr = np.ascontiguousarray(np.concatenate([base] * reps)[: args.n_images])  # (N, 299, 299, 3) uint8
    u8 = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()  # (N, 3, 299, 299) uint8
    x = u8.float().div(255)
    bs = args.batch_size
    batches = [x[i:i + bs] for i in range(0, len(x), bs)]
    norm = bb.preprocess("legacy-pytorch").normalize  # (x - 0.5) / 0.5, i.e. 2x - 1

    def ours_model():
        for b in batches:
            bb(norm(b))

    def ours_model_stats():
        st = FeatureStats(2048)
        for b in batches:
            st.update(bb(norm(b))["pool3"])

    def ours_full():
        bb.features(load_images(arr), resize="legacy-pytorch", batch_size=bs)

    u8_batches = [u8[i:i + bs] for i in range(0, len(u8), bs)]

    def peer_update():
        for b in batches:
            fid.update(b, real=True)

    def peer_fidelity():
        with torch.no_grad():
            for b in u8_batches:
                tfid(b)

    variants = {
        "ours: bb(batch)": ours_model,
        "ours: bb(batch) + FeatureStats.update": ours_model_stats,
        "ours: bb.features(load_images(uint8), resize='legacy-pytorch')": ours_full,
        "peer: torchmetrics FID.update(batch, real=True)": peer_update,
        "peer: torch-fidelity FeatureExtractorInceptionV3(uint8 batch)": peer_fidelity,
    }
    peer_keys = list(variants)[-2:]

    # feature agreement
    n_chk = min(args.check_images, len(u8))
    uc = u8[:n_chk]
    with torch.inference_mode():
        f_peer_u8 = fid.inception(uc).double()
        f_tfid_u8 = tfid(uc)[0].double()
        f_peer_norm = fid.inception((x[:n_chk] * 255).byte()).double()
    f_ours_256 = bb(norm(uc.float() / 256))["pool3"].double()
    f_ours_255 = bb(norm(x[:n_chk]))["pool3"].double()
    scale = float(f_peer_u8.abs().max())
    same_pre = float((f_ours_256 - f_peer_u8).abs().max())
    as_used = float((f_ours_255 - f_peer_norm).abs().max())
    features_check = {
        "n_images": n_chk,
        "feature_max_abs": scale,
        "identical_preprocessing_max_abs_diff": same_pre,
        "identical_preprocessing_max_rel_diff": same_pre / scale,
        "as_used_max_abs_diff": as_used,
        "as_used_max_rel_diff": as_used / scale,
        "torch_fidelity_vs_ours_identical_preprocessing_max_abs_diff": float((f_ours_256 - f_tfid_u8).abs().max()),
        "note": "identical preprocessing: ours on u/256 vs torch-fidelity on uint8 u (both (u-128)/128); "
                "as used: ours on u/255 (2x-1) vs peer normalize=True path ((x*255).byte(), (u-128)/128)",
    }
    print(f"pool3 agreement on {n_chk} images: identical preprocessing max |diff| {same_pre:.2e} "
          f"(rel {same_pre / scale:.1e}); as used max |diff| {as_used:.2e} (rel {as_used / scale:.1e})", flush=True)

    quiet = C.wait_for_quiet(args.wait_quiet)
    # warm-up: one batch per variant
    bb(norm(batches[0]))
    fid.update(batches[0], real=True)
    peer_fidelity_warm = u8_batches[0]
    with torch.no_grad():
        tfid(peer_fidelity_warm)
    bb.features(load_images(arr[:bs]), resize="legacy-pytorch", batch_size=bs)

    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    with C.CpuMonitor() as mon:
        for r in range(args.repeats):
            order = names[r % len(names):] + names[: r % len(names)]
            for k in order:
                t = time.perf_counter()
                variants[k]()
                times[k].append(time.perf_counter() - t)
                print(f"  repeat {r + 1}: {k:65s} {times[k][-1]:7.2f} s", flush=True)

    ips = {k: args.n_images / C.median(v) for k, v in times.items()}
    machine = C.machine_info(threads)
    machine["other_cpu_load_cores"] = mon.other_cores
    machine["own_cpu_cores"] = mon.own_cores
    machine["loadavg_at_end"] = list(os.getloadavg())
    machine["wait_for_quiet"] = quiet

    rows = []
    results = []
    peer_label = {peer_keys[0]: "torchmetrics FID.update", peer_keys[1]: "torch-fidelity extractor"}
    for k in names:
        if k in peer_keys:
            results.append({"variant": k, "images_per_s": ips[k], "times_s": times[k]})
            continue
        ratios = {peer_label[p]: ips[k] / ips[p] for p in peer_keys}
        results.append({"variant": k, "images_per_s": ips[k], "times_s": times[k], "ratio_ours_over_peer": ratios,
                        "met": all(r >= TARGET_RATIO for r in ratios.values())})
        for p in peer_keys:
            ratio = ips[k] / ips[p]
            rows.append({
                "benchmark": f"Inception pool3 images/s, {k.removeprefix('ours: ')} vs {peer_label[p]}",
                "ours": f"{ips[k]:.2f} img/s", "peer": f"{ips[p]:.2f} img/s", "ratio": f"{ratio:.2f}x",
                "target": f">= {TARGET_RATIO:.1f}x", "met": ratio >= TARGET_RATIO,
                "notes": (f"batch {bs}, {args.n_images} images 299x299, {threads} torch threads; pool3 max |diff| "
                          f"vs torchmetrics {same_pre:.1e} (identical preprocessing), {as_used:.1e} (as used)"),
            })

    payload = {
        "benchmark": "inception_throughput",
        "description": "images/s of FID Inception-v3 pool3 extraction: pytest_i2i backbone vs torchmetrics "
                       "FrechetInceptionDistance.update and torch-fidelity's FeatureExtractorInceptionV3 "
                       "(inception-v3-compat); same weights file, images, batch size and torch threads; median of "
                       "full passes, variants interleaved",
        "target": {"ratio_min": TARGET_RATIO},
        "settings": {"n_images": args.n_images, "batch_size": bs, "torch_threads": threads, "repeats": args.repeats,
                     "images": "pytest_i2i sample_images(299) (8 photos) repeated, uint8 -> float /255",
                     "weights": "seeded random init (seed 0) of inception-fid, saved with torch.save, loaded by both",
                     "weights_sha256": bb.weights_sha256, "weights_calibrated": bb.calibrated,
                     "backbone_warnings": bb.warnings,
                     "peer_antialias": peer_antialias,
                     "peer_build_warnings": sorted({str(w.message).splitlines()[0][:200] for w in peer_build_warnings}),
                     "torchmetrics_version": torchmetrics.__version__,
                     "torch_fidelity_version": torch_fidelity.__version__},
        "build_time_s": {"ours": t_build_ours, "peer": t_build_peer, "torch_fidelity": t_build_tfid},
        "machine": machine,
        "features_check": features_check,
        "results": results,
        "total_runtime_s": time.perf_counter() - t_all,
        "rows": rows,
    }
    path = C.write_result("inception_throughput", payload, args.out)
    tmpdir.cleanup()

    print()
    C.print_table(["variant", "images/s", "median s/pass", "vs torchmetrics", "vs torch-fidelity"],
                  [[k, f"{ips[k]:.2f}", f"{C.median(times[k]):.2f}"]
                   + ["-" if k in peer_keys else f"{ips[k] / ips[p]:.2f}x" for p in peer_keys] for k in names])
    if mon.other_cores is not None:
        print(f"\nother processes kept {mon.other_cores:.2f} cores busy during the timed passes")
    print(f"total runtime {payload['total_runtime_s']:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
