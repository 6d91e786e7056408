"""Warm-cache benchmark: the ``suites/model`` suite twice on one checkpoint, sharing one cache folder.

Issue 8's target: the second run (warm cache: no generator forward pass, no backbone built) is
at least 20x faster than the first. Both runs are ``python -m pytest suites/model`` subprocesses
with the README's main command (``demo/colorize_unet128.pth``, ``pix2pix-unet128-ngf8``) on a
synthetic colorization set of ``--samples`` images (each size measured separately) (random 128 px crops of the photos bundled
with scikit-image: inputs are their grayscale version; captions for CLIP are fixed strings), with
every backbone metric active: seeded random-weight files (uncalibrated, architecture-exact) are
written under the names the weights resolver looks for, and ``--i2i-require-weights`` makes a
missing file an error rather than a skip. The timed pair runs without ``--i2i-report`` (the HTML
report's plots and per-sample PNG export are not cached and cost seconds); then a warm run and a
cache-off run (``--i2i-cache-max-size=0``) with ``--i2i-report`` check that the JSON reports are
byte-identical with and without the cache, and show the report's cost.

    python benchmarks/bench_warm_cache.py [--samples 64 128] [--out FILE] [--wait-quiet SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CpuMonitor, machine_info, wait_for_quiet, write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CHECKPOINT = "demo/colorize_unet128.pth"
ARCH = "pix2pix-unet128-ngf8"
BACKBONES = ("inception-fid", "clip-vit-b-32", "dino-vits16")
TARGET = 20.0


def make_dataset(root: Path, n: int, size: int = 128, seed: int = 0) -> Path:
    """A folder dataset of ``n`` synthetic colorization samples (see the module docstring)."""
    import numpy as np
    from PIL import Image

    from pytest_i2i.images.samples import COLOR_PHOTOS, sample_photo

    rng = np.random.default_rng(seed)
    (root / "inputs").mkdir(parents=True)
    (root / "targets").mkdir()
    rows = []
    for k in range(n):
        photo = sample_photo(COLOR_PHOTOS[k % len(COLOR_PHOTOS)])
        h, w = photo.shape[:2]
        side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        color = Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size), Image.Resampling.BICUBIC)
        uid = f"s{k:03d}"
        color.save(root / "targets" / f"{uid}.png")
        color.convert("L").convert("RGB").save(root / "inputs" / f"{uid}.png")
        rows.append({"uid": uid, "instruction": "colorize this photo", "source_caption": "a black and white photo",
                     "target_caption": "a color photo"})
    (root / "texts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def save_random_weights(name: str, wdir: Path) -> Path:
    """A seeded random init of backbone ``name`` saved under its published file name in ``wdir``."""
    import torch
    from safetensors.torch import save_file

    import pytest_i2i
    from pytest_i2i.backbones.registry import get_spec

    spec = get_spec(name)
    model = pytest_i2i.backbone(name, weights="random", seed=1).model
    target = spec.weights_target(model) if spec.weights_target else model
    state = {k: v.detach().contiguous() for k, v in target.state_dict().items()}
    path = wdir / spec.pretrained.files[0].filename
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def make_random_weights(wdir: Path) -> dict[str, str]:
    """Seeded random weights of every backbone the suite uses, saved under their published names."""
    wdir.mkdir(parents=True, exist_ok=True)
    return {name: save_random_weights(name, wdir).name for name in BACKBONES}


def run_suite(data: Path, wdir: Path, cache: Path, samples: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "pytest", "suites/model", f"--i2i-model={CHECKPOINT}", f"--i2i-arch={ARCH}",
           f"--i2i-data={data}", f"--i2i-weights-dir={wdir}", f"--i2i-cache-dir={cache}", "--i2i-require-weights",
           f"--i2i-max-samples={samples}", "-q", "-p", "no:cacheprovider", *extra]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("I2I_CACHE_DIR", None)
    with CpuMonitor() as mon:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    print(f"{' '.join(extra) or 'cache on'}: {wall:.2f} s", flush=True)
    tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    if proc.returncode not in (0, 1):
        raise SystemExit(f"suite run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return {"wall_s": round(wall, 3), "exit_code": proc.returncode, "summary": tail[0] if tail else "",
            "other_cpu_load_cores": mon.other_cores, "command": " ".join(cmd)}


def measure(tmp: Path, weights_dir: Path, samples: int) -> dict:
    """Cold and warm runs without ``--i2i-report`` (the timed pair), then a warm and a cache-off run
    with it, whose JSON reports must be byte-identical."""
    data = make_dataset(tmp / f"data{samples}", samples)
    cache = tmp / f"cache{samples}"
    runs = {}
    for label, cache_dir, extra in (
        ("first", cache, []), ("second", cache, []),
        ("second_with_report", cache, [f"--i2i-report={tmp / f'report-{samples}-warm'}"]),
        ("no_cache_with_report", tmp / "unused", ["--i2i-cache-max-size=0",
                                                  f"--i2i-report={tmp / f'report-{samples}-off'}"]),
    ):
        runs[label] = run_suite(data, weights_dir, cache_dir, samples, extra)
    reports = [(tmp / f"report-{samples}-{label}" / "i2i-report.json").read_bytes() for label in ("warm", "off")]
    from pytest_i2i.cache import get_cache

    return {"samples": samples, "runs": runs, "reports_identical": reports[0] == reports[1],
            "metrics_in_report": sorted(m.get("result", {}).get("name", "?")
                                        for m in json.loads(reports[0])["metrics"]),
            "cache_info": {k: v for k, v in get_cache(cache).info().items() if k != "this_process"}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--out", default=None)
    ap.add_argument("--wait-quiet", type=float, default=0.0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = ap.parse_args(argv)

    quiet = wait_for_quiet(args.wait_quiet)
    tmp = Path(tempfile.mkdtemp(prefix="i2i-bench-cache-"))
    try:
        weights = make_random_weights(tmp / "weights")
        results = [measure(tmp, tmp / "weights", n) for n in args.samples]
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for r in results:
        first, second, warm_report, nocache = (r["runs"][k]["wall_s"] for k in (
            "first", "second", "second_with_report", "no_cache_with_report"))
        ratio = first / second
        rows.append({
            "benchmark": f"suites/model warm cache, {r['samples']} samples at 128 px (paired + FID + CLIP + DINO)",
            "ours": f"second run {second:.2f} s", "peer": f"first run {first:.2f} s",
            "ratio": round(ratio, 1), "target": f">= {TARGET:g}x", "met": ratio >= TARGET,
            "notes": (f"whole pytest processes incl. ~2 s torch import; with --i2i-report (HTML plots + "
                      f"per-sample PNGs, not cached): warm {warm_report:.2f} s, cache off {nocache:.2f} s; "
                      f"JSON reports warm vs cache off byte-identical: {r['reports_identical']}; "
                      "random-weight backbones"),
        })
        print(f"{r['samples']} samples: first {first:.2f} s, second {second:.2f} s: {ratio:.1f}x "
              f"(target {TARGET:g}x); with --i2i-report: warm {warm_report:.2f} s, cache off {nocache:.2f} s; "
              f"reports identical: {r['reports_identical']}")
    m = machine_info(torch_threads=None)
    m["wait_for_quiet"] = quiet
    m["other_cpu_load_cores"] = max((run["other_cpu_load_cores"] or 0.0) for r in results
                                    for run in r["runs"].values())
    payload = {
        "benchmark": "warm_cache",
        "description": "suites/model run twice on the same checkpoint with one cache folder (pytest subprocesses); "
                       "wall time of the whole process, interpreter and torch start-up included",
        "target": {"speedup_min": TARGET},
        "settings": {"samples": args.samples, "size": 128, "checkpoint": CHECKPOINT, "arch": ARCH,
                     "backbones": list(weights), "weights": "random (seeded, uncalibrated)"},
        "results": results, "rows": rows, "machine": m,
    }
    path = write_result("warm_cache", payload, args.out)
    print(f"wrote {path}")
    return 0 if all(r["reports_identical"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
