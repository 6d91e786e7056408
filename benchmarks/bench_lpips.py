"""Benchmark: LPIPS-alex pairs/s, ours against the ``lpips`` package and torchmetrics, same weights.

Ours:  ``pytest_i2i.lpips(a, b, backbone=bb, batch_size=B)`` with ``bb = pytest_i2i.backbone("lpips-alex",
       weights=<file>)``: the whole front-end (pairs read and batched, one trunk pass of 2B images per
       batch, the LPIPS head, the per-pixel map's max, per-pair values, the bootstrap CI with 2000
       resamples, the result record).
Peer 1: ``lpips.LPIPS(net="alex", pnet_rand=True)`` (lpips 0.1.4) with its trunk loaded from the same
       file, called as ``model(a_batch, b_batch, normalize=True)`` under ``torch.no_grad()`` (its fastest
       use: no autograd graph), B pairs per call.
Peer 2: torchmetrics' ``LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)`` with its
       trunk loaded from the same file (its download of torchvision's file is replaced by the same
       random trunk), ``update(a_batch, b_batch)`` per batch and ``compute()`` once per pass.

Weights: a seeded random AlexNet trunk (torchvision's own init, seed 0) saved once to a temp file and
loaded by all three; the learned linear layers are the published v0.1 file on every side (the
packages' own copy, identical bytes). No download.

Images: the bundled photos (``sample_images(--size)``, 8 photos), repeated to ``--n-pairs`` pairs
(photo i against photo i+1), float32 in [0, 1]; the same tensors for every side.

Allocator: ours tunes glibc's malloc on its first pass (:mod:`pytest_i2i.allocator`, process-wide)
and runs each trunk pass inside ``forward_pass_memory()``; the peers' calls run inside it too, so
every side has the same allocator.

Timing: the same batch size and ``torch.set_num_threads`` for all; one warm-up pass per variant,
then ``--repeats`` passes per variant, interleaved with a rotating order; pairs/s from the median
pass. The other processes' CPU load during the timed part is recorded (``machine.other_cpu_load_cores``)
with the load average before and after: the machine is shared, medians of interleaved passes keep
the ratio fair, absolute numbers move with the load.

Breakdown (what dominates the time): a fourth variant in the same rotation runs the same batches
piece by piece, timing reading and batching the pairs, the trunk forward (``bb(batch)``) and the
LPIPS head (maps, values, max); the rest of a pass of ours (bootstrap CI, result) is the median
pass minus those medians.

Agreement (recorded): max |ours − peer| over the pairs.

Target (issue 16): ours/peer pairs/s >= 1.2 against both peers.

Run: ``python benchmarks/bench_lpips.py`` (about 3 minutes on 2 shared cores).
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
    p.add_argument("--n-pairs", type=int, default=64, help="pairs per timed pass (default %(default)s)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default %(default)s)")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _common as C  # noqa: E402

    C.add_throughput_args(p, "lpips_throughput.json")
    p.set_defaults(repeats=5)
    return p.parse_args(argv)


def _trunk_state(ref_keys, features_state):
    """``features.<i>.*`` onto a reference trunk's ``slice<k>.<i>.*`` keys (they keep torchvision's index)."""
    return {k: features_state[".".join(["features", k.split(".")[1], *k.split(".")[2:]])] for k in ref_keys}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _common as C  # noqa: E402

    import torch

    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    quiet = C.wait_for_quiet(args.wait_quiet)

    import torchvision

    import pytest_i2i
    from pytest_i2i.allocator import forward_pass_memory
    from pytest_i2i.images import sample_images
    from pytest_i2i.images.imageset import as_pairs, iter_pair_batches
    from pytest_i2i.metrics.perceptual import lpips_head, lpips_lin_weights

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lpips as lpips_pkg
        from torchmetrics.functional.image import lpips as tm_lpips
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    tmp = tempfile.TemporaryDirectory(prefix="i2i-bench-")
    wfile = Path(tmp.name) / "alexnet-random-seed0.pth"
    torch.manual_seed(0)
    trunk = {f"features.{k}": v for k, v in torchvision.models.alexnet().features.state_dict().items()}
    torch.save(trunk, wfile)

    bb = pytest_i2i.backbone("lpips-alex", weights=str(wfile))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = lpips_pkg.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
        peer.net.load_state_dict(_trunk_state(list(peer.net.state_dict()), trunk))
        real_features = tm_lpips._get_tv_model_features
        tm_lpips._get_tv_model_features = lambda name, pretrained=False: getattr(torchvision.models, name)(
            weights=None).features
        try:
            tm = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)
        finally:
            tm_lpips._get_tv_model_features = real_features
        tm.net.net.load_state_dict(_trunk_state(list(tm.net.net.state_dict()), trunk))

    photos = sample_images(args.size)
    base = torch.stack([photos[i] for i in range(len(photos))])
    n, bs = args.n_pairs, args.batch_size
    pool = torch.cat([base] * (-(-(n + 1) // len(base))))
    a, b = pool[:n].contiguous(), pool[1:n + 1].contiguous()

    def ours():
        return pytest_i2i.lpips(a, b, backbone=bb, batch_size=bs)

    # the peers' forward passes get the allocator ours gets (pytest_i2i.allocator, process-wide once
    # ours has run; M_MMAP_MAX = 0 only around a pass), so the ratio compares the code, not malloc
    def peer_lpips():
        out = []
        with torch.no_grad():
            for i in range(0, n, bs):
                with forward_pass_memory():
                    out.append(peer(a[i:i + bs], b[i:i + bs], normalize=True).flatten())
        return torch.cat(out)

    def peer_tm():
        tm.reset()
        for i in range(0, n, bs):
            with forward_pass_memory():
                tm.update(a[i:i + bs], b[i:i + bs])
        return tm.compute()

    # agreement, recorded (not asserted: tests/test_perceptual.py asserts it)
    got = torch.tensor(ours().per_sample, dtype=torch.float64)
    ref = peer_lpips().double()
    with torch.no_grad():
        ref_tm = torch.cat([tm.net(a[i:i + bs], b[i:i + bs], normalize=True).flatten()
                            for i in range(0, n, bs)]).double()
    agreement = {"max_abs_diff_vs_lpips": float((got - ref).abs().max()),
                 "max_abs_diff_vs_torchmetrics": float((got - ref_tm).abs().max()),
                 "mean_lpips": float(got.mean())}

    # the breakdown of ours, timed piece by piece on the same batches (a 4th variant in the rotation)
    lin, _ = lpips_lin_weights("alex")
    head = lpips_head(lin, False)
    pieces: dict[str, list[float]] = {"read and batch pairs": [], "trunk forward (2B images)": [], "LPIPS head": []}

    def ours_pieces():
        acc = dict.fromkeys(pieces, 0.0)
        t = time.perf_counter()
        sa, sb = as_pairs(a, b)
        batches = list(iter_pair_batches(sa, sb, bs))
        acc["read and batch pairs"] += time.perf_counter() - t
        for _, xa, xb, _ in batches:
            t = time.perf_counter()
            x = torch.empty((2 * xa.shape[0], *xa.shape[1:]), memory_format=torch.channels_last)
            x[:xa.shape[0]], x[xa.shape[0]:] = xa, xb  # as the front-end does
            feats = bb(x)
            acc["trunk forward (2B images)"] += time.perf_counter() - t
            t = time.perf_counter()
            k = xa.shape[0]
            with torch.inference_mode():
                head({q: v[:k] for q, v in feats.items()}, {q: v[k:] for q, v in feats.items()}, tuple(xa.shape[2:]))
            acc["LPIPS head"] += time.perf_counter() - t
        for key, v in acc.items():
            pieces[key].append(v)

    K_OURS, K_LP, K_TM = "ours: pytest_i2i.lpips", "peer: lpips.LPIPS (no_grad)", "peer: torchmetrics LPIPS update"
    K_PIECES = "ours, timed piece by piece (breakdown)"
    variants = {K_OURS: ours, K_LP: peer_lpips, K_TM: peer_tm, K_PIECES: ours_pieces}
    for fn in variants.values():  # warm-up
        fn()
    for v in pieces.values():
        v.clear()
    times: dict[str, list[float]] = {k: [] for k in variants}
    load_before = os.getloadavg()
    with C.CpuMonitor() as mon:
        order = list(variants)
        for r in range(args.repeats):
            for k in order[r % len(order):] + order[:r % len(order)]:
                t = time.perf_counter()
                variants[k]()
                times[k].append(time.perf_counter() - t)
    load_after = os.getloadavg()
    breakdown = {k: C.median(v) for k, v in pieces.items()}
    breakdown["rest (bootstrap CI, result)"] = max(0.0, C.median(times[K_OURS]) - sum(breakdown.values()))
    pieces_seconds = times.pop(K_PIECES)

    med = {k: C.median(v) for k, v in times.items()}
    rate = {k: n / med[k] for k in med}
    machine = C.machine_info(threads)
    machine["other_cpu_load_cores"] = mon.other_cores
    machine["loadavg_before_timing"] = list(load_before)
    machine["loadavg_after_timing"] = list(load_after)
    machine["quiet_wait"] = quiet
    rows = []
    for peer_key in (K_LP, K_TM):
        ratio = rate[K_OURS] / rate[peer_key]
        rows.append({
            "benchmark": f"LPIPS-alex pairs/s, {args.size}px, batch {bs}, {threads} threads",
            "ours": f"{rate[K_OURS]:.1f} pairs/s", "peer": f"{peer_key.removeprefix('peer: ')} {rate[peer_key]:.1f} pairs/s",
            "ratio": round(ratio, 2), "target": f">= {TARGET_RATIO}", "met": ratio >= TARGET_RATIO,
            "notes": f"same random AlexNet trunk + published lin layers; max |diff| "
                     f"{agreement['max_abs_diff_vs_lpips' if peer_key == K_LP else 'max_abs_diff_vs_torchmetrics']:.1e}; "
                     f"ours includes the per-pixel max map and a 2000-resample bootstrap CI; other load "
                     f"{mon.other_cores:.1f} cores" if mon.other_cores is not None else "",
        })
    total = sum(breakdown.values())
    payload = {
        "benchmark": "lpips_throughput",
        "config": {"n_pairs": n, "size": args.size, "batch_size": bs, "threads": threads, "repeats": args.repeats,
                   "weights": "seeded random AlexNet trunk (torchvision init, seed 0), published LPIPS v0.1 lin layers"},
        "seconds": times, "median_seconds": med, "pairs_per_second": rate, "breakdown_pass_seconds": pieces_seconds,
        "breakdown_seconds_per_pass": breakdown,
        "breakdown_share": {k: v / total for k, v in breakdown.items()} if total > 0 else {},
        "agreement": agreement, "rows": rows, "machine": machine,
    }
    path = C.write_result("lpips_throughput", payload, args.out)
    C.print_table(["variant", "median s/pass", "pairs/s"], [[k, f"{med[k]:.3f}", f"{rate[k]:.1f}"] for k in med])
    print()
    C.print_table(["piece of ours (one pass)", "median s", "share"],
                  [[k, f"{v:.3f}", f"{v / total:.0%}" if total else "-"] for k, v in breakdown.items()])
    print()
    for r in rows:
        print(f"{r['peer']}: ratio {r['ratio']} (target {r['target']}, met: {r['met']})")
    print(f"agreement: {agreement}; other load {mon.other_cores} cores; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
