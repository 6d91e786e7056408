"""Benchmark: FID feature statistics at scale: peak memory vs N, time per image vs N, 2 processes vs 1.

Every measurement runs in a fresh child process (``python bench_scale.py --child ...``) that
builds the random-weight ``inception-fid`` backbone, warms it up with one batch, then times
``pytest_i2i.compute_stats(images, backbone=bb, batch_size=B)`` (what FID runs per side) and
reports its wall time and its peak resident memory (``ru_maxrss`` of the child itself; DataLoader
workers, if any, are reported separately as ``children_peak_rss_mib``).

Images are synthetic and lazy: an ``ImageSet`` whose loader i builds image i on access (one of the
8 bundled photos at 299x299, shifted and brightened by its index), so no set is ever held in
memory and N only changes how many images stream through.

Parts (``--parts``):

* ``memory``: peak RSS at N = 256 and N = 4096 (target: within 10% of each other).
* ``scaling``: seconds per image at N = 64, 256, 1024, 4096 (the 256 and 4096 runs are shared
  with ``memory``); linear means time/image roughly constant.
* ``processes``: ``torchrun --nproc-per-node 2`` (gloo, 1 thread per rank, torchrun's default) vs
  one process with 2 threads, on the same N, runs interleaved (1, 2, 1, 2) so that load from other
  processes hits both alike. The result of the 2-process run is checked against the 1-process one.
* ``workers``: ``compute_stats`` on a folder of 512x512 PNG files with 0, 1 and 2 DataLoader
  workers (decoding and resizing in workers), interleaved (``--rounds``).

The JSON is rewritten after each part (and each N), in the order processes, workers, then
memory / scaling.

Run: ``nice python benchmarks/bench_scale.py`` (about 15 minutes on 2 cores; ``--quick`` for a
smoke run with small N).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEMORY_TARGET = 0.10
MEMO_BYTES: int | None = None  # --memo-bytes, handed to every child
HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="memory,scaling,processes,workers")
    p.add_argument("--sizes", default="64,256,1024,4096", help="N for the scaling part (default %(default)s)")
    p.add_argument("--memory-sizes", default="256,4096", help="N compared for peak memory (default %(default)s)")
    p.add_argument("--process-n", type=int, default=256, help="N for 2 processes vs 1 (default %(default)s)")
    p.add_argument("--worker-n", type=int, default=96, help="PNG files for the workers part (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds for the workers part")
    p.add_argument("--quick", action="store_true", help="small N everywhere (smoke run)")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/scale.json)")
    # child mode
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--memo-bytes", type=int, default=None,
                   help="cap of the backbone's in-RAM feature memo in the children (default: the package's)")
    return p.parse_args(argv)


# --- child ----------------------------------------------------------------------------------

def synthetic_images(n: int, size: int = 299):
    """A lazy ImageSet of ``n`` distinct images (image i is built when accessed)."""
    import torch

    from pytest_i2i.images import sample_images
    from pytest_i2i.images.imageset import ImageSet

    photos = sample_images(size)
    base = [photos[i] for i in range(len(photos))]

    def make(i: int) -> torch.Tensor:
        img = torch.roll(base[i % len(base)], shifts=(i // len(base)) % size, dims=2)
        return (img * (0.75 + 0.25 * ((i * 7919) % 1000) / 1000)).clamp(0, 1)

    return ImageSet([f"synthetic[{i}]" for i in range(n)], [lambda i=i: make(i) for i in range(n)], "synthetic")


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import pytest_i2i
    from pytest_i2i import distributed
    from pytest_i2i.images import load_images
    from pytest_i2i.pipeline import configure_pipeline

    started = distributed.init_from_env()
    configure_pipeline(num_workers=args.workers, progress=False)
    images = load_images(args.folder, name="folder") if args.folder else synthetic_images(args.count)
    bb = pytest_i2i.backbone("inception-fid", weights="random")
    if args.memo_bytes is not None:
        bb.memo.max_bytes = args.memo_bytes
    bb(torch.rand(2, 3, 299, 299))  # warm-up
    rss_before = rss_mib()
    distributed.barrier()
    t = time.perf_counter()
    stats = pytest_i2i.compute_stats(images, backbone=bb, batch_size=args.batch_size)
    distributed.barrier()
    seconds = time.perf_counter() - t
    rank, size = distributed.world()
    if rank == 0:
        print("RESULT " + json.dumps({
            "n": stats.n, "seconds": seconds, "seconds_per_image": seconds / stats.n,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "rss_before_mib": rss_before, "rss_after_mib": rss_mib(),
            "memo_bytes": getattr(bb.memo, "_bytes", None),
            "processes": size, "torch_threads": torch.get_num_threads(), "workers": args.workers,
            "mean_head": stats.mean[:4].tolist(), "total_sum": float(stats.total.sum()),
            "outer_trace": float(stats.outer.trace()),
        }), flush=True)
    if started:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


# --- parent ---------------------------------------------------------------------------------

def run_child(C, n: int, batch_size: int, *, processes: int = 1, threads: int = 0, workers: int = 0,
              folder: str | None = None) -> dict:
    script = [str(Path(__file__).resolve()), "--child", "--count", str(n), "--batch-size", str(batch_size),
              "--workers", str(workers), "--threads", str(threads)] + (["--folder", folder] if folder else [])
    if MEMO_BYTES is not None:
        script += ["--memo-bytes", str(MEMO_BYTES)]
    env = {**os.environ, "I2I_PROGRESS": "0"}
    env.pop("I2I_CACHE_DIR", None)  # measure computation, never a warm feature cache
    if processes > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)]
        env["OMP_NUM_THREADS"] = str(threads or 1)
    else:
        cmd = [sys.executable]
    busy0, t0, own0 = C._system_busy_jiffies(), time.perf_counter(), sum(os.times()[:4])
    proc = subprocess.run(cmd + script, capture_output=True, text=True, env=env)
    wall, own = time.perf_counter() - t0, sum(os.times()[:4]) - own0  # includes the waited-for children
    busy1 = C._system_busy_jiffies()
    other = None if busy0 is None or busy1 is None else max(0.0, ((busy1 - busy0) / C._clk_tck() - own) / wall)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({' '.join(cmd + script)}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    res = json.loads(line.removeprefix("RESULT "))
    res["child_wall_s"] = wall
    res["child_cpu_s"] = own
    res["other_cpu_load_cores"] = other
    label = f"N={n} procs={processes} threads={res['torch_threads']} workers={workers}" + (" (files)" if folder else "")
    print(f"  {label:50s} {res['seconds']:8.1f} s  {1000 * res['seconds_per_image']:7.1f} ms/img  "
          f"peak RSS {res['peak_rss_mib']:7.1f} MiB  other load {other or 0:.2f} cores", flush=True)
    return res


def write_pngs(folder: Path, n: int, size: int = 512) -> None:
    import numpy as np
    from PIL import Image

    from pytest_i2i.images import sample_images

    photos = sample_images(size)
    for i in range(n):
        arr = (photos[i % len(photos)].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(np.roll(arr, i // len(photos), axis=1)).save(folder / f"{i:05d}.png")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    global MEMO_BYTES
    MEMO_BYTES = args.memo_bytes
    sys.path.insert(0, str(HERE))
    import _common as C  # noqa: E402

    parts = set(args.parts.split(","))
    sizes = [int(x) for x in args.sizes.split(",")]
    mem_sizes = [int(x) for x in args.memory_sizes.split(",")]
    proc_n, worker_n, bs = args.process_n, args.worker_n, args.batch_size
    if args.quick:
        sizes, mem_sizes, proc_n, worker_n, bs = [16, 32], [16, 32], 16, 16, 8
    threads = len(os.sched_getaffinity(0))
    t_all = time.perf_counter()
    machine = C.machine_info()
    runs: dict[str, list[dict]] = {}
    rows = []

    def save() -> Path:
        machine["loadavg_at_end"] = list(os.getloadavg())
        payload = {
            "benchmark": "scale",
            "description": "pytest_i2i.compute_stats (FID statistics) with random-weight inception-fid in fresh "
                           "child processes: peak memory vs N, time per image vs N, 2 processes vs 1, DataLoader workers",
            "settings": {"batch_size": bs, "sizes": sizes, "memory_sizes": mem_sizes, "process_n": proc_n,
                         "memo_bytes": "package default" if MEMO_BYTES is None else MEMO_BYTES,
                         "worker_n": worker_n, "threads": threads, "quick": args.quick,
                         "images": "lazy synthetic 299x299 (bundled photos shifted/brightened by index)"},
            "machine": machine,
            "runs": runs,
            "total_runtime_s": time.perf_counter() - t_all,
            "rows": rows,
        }
        return C.write_result("scale", payload, args.out)

    if "processes" in parts:
        print(f"2 processes (torchrun, gloo, 1 thread each) vs 1 process ({threads} threads), N={proc_n}:", flush=True)
        one, two = [], []
        for _ in range(2):
            one.append(run_child(C, proc_n, bs, threads=threads))
            two.append(run_child(C, proc_n, bs, processes=2, threads=1))
        runs["one_process"], runs["two_processes"] = one, two
        t1 = C.median([r["seconds"] for r in one])
        t2 = C.median([r["seconds"] for r in two])
        rel = abs(two[0]["outer_trace"] - one[0]["outer_trace"]) / abs(one[0]["outer_trace"])
        rows.append({
            "benchmark": f"FID statistics, 2 processes vs 1 on this machine (N={proc_n})",
            "ours": f"2 procs x 1 thread: {t2:.1f} s", "peer": f"1 proc x {threads} threads: {t1:.1f} s",
            "ratio": f"{t1 / t2:.2f}x speed-up", "target": "report honestly", "met": None,
            "notes": (f"torchrun --standalone --nproc-per-node 2 (gloo), runs interleaved 1,2,1,2, medians; sums "
                      f"agree to {rel:.1e} relative (threads differ, so not bit-identical); {threads} cores shared")})
        save()

    if "workers" in parts:
        print(f"DataLoader workers, {worker_n} PNG files 512x512:", flush=True)
        with tempfile.TemporaryDirectory(prefix="i2i-bench-png-") as tmp:
            write_pngs(Path(tmp), worker_n)
            res: dict[int, list[dict]] = {0: [], 1: [], 2: []}
            for _ in range(args.rounds):
                for w in (0, 1, 2):
                    res[w].append(run_child(C, worker_n, bs, threads=threads, workers=w, folder=tmp))
        runs["workers"] = [r for v in res.values() for r in v]
        med = {w: C.median([r["seconds"] for r in v]) for w, v in res.items()}
        rows.append({
            "benchmark": f"FID statistics from {worker_n} PNG files (512x512): DataLoader workers 1 / 2 vs 0",
            "ours": f"1 worker {med[1]:.1f} s, 2 workers {med[2]:.1f} s", "peer": f"0 workers {med[0]:.1f} s",
            "ratio": f"{med[0] / med[1]:.2f}x / {med[0] / med[2]:.2f}x", "target": "measure", "met": None,
            "notes": f"decode + clean resize in workers, forward in the main process ({threads} threads); "
                     f"interleaved, medians of {args.rounds}; {threads} cores",
        })
        save()

    if parts & {"memory", "scaling"}:
        print("scaling / memory (1 process, all cores):", flush=True)
        todo = sorted(set(sizes if "scaling" in parts else []) | set(mem_sizes if "memory" in parts else []))
        runs["by_n"] = []
        for n in todo:
            runs["by_n"].append(run_child(C, n, bs, threads=threads))
            save()  # partial results survive an interrupted run
        by_n = {r["n"]: r for r in runs["by_n"]}
        if "memory" in parts:
            lo, hi = by_n[min(mem_sizes)], by_n[max(mem_sizes)]
            growth = hi["peak_rss_mib"] / lo["peak_rss_mib"] - 1
            rows.append({
                "benchmark": f"FID statistics peak RSS, N={lo['n']} vs N={hi['n']}"
                             + ("" if MEMO_BYTES is None else f" (feature memo cap {MEMO_BYTES} bytes)"),
                "ours": f"{lo['peak_rss_mib']:.0f} MiB vs {hi['peak_rss_mib']:.0f} MiB",
                "peer": "n/a", "ratio": f"{1 + growth:.3f}x", "target": f"within {MEMORY_TARGET:.0%}",
                "met": abs(growth) <= MEMORY_TARGET,
                "notes": (f"fresh child per N, ru_maxrss; random-weight inception-fid, batch {bs}, lazy synthetic "
                          f"299x299 images; in-RAM feature memo held {hi['memo_bytes'] or 0:,} bytes at N={hi['n']}"),
            })
        if "scaling" in parts:
            ns = [n for n in sizes if n in by_n]
            per = [by_n[n]["seconds_per_image"] for n in ns]
            spread = max(per) / min(per)
            rows.append({
                "benchmark": f"FID statistics time per image, N={ns[0]} to N={ns[-1]}",
                "ours": ", ".join(f"N={n}: {1000 * by_n[n]['seconds_per_image']:.0f} ms" for n in ns),
                "peer": "n/a", "ratio": f"max/min {spread:.2f}x", "target": "linear (time/image ~ constant)",
                "met": None,
                "notes": f"1 process, {threads} torch threads, batch {bs}; other-process load per run "
                         + ", ".join(f"{(by_n[n]['other_cpu_load_cores'] or 0):.1f}" for n in ns) + " cores",
            })

    path = save()
    print()
    C.print_table(["benchmark", "ours", "peer", "ratio", "target", "met"],
                  [[r["benchmark"], r["ours"], r["peer"], r["ratio"], r["target"], str(r["met"])] for r in rows])
    print(f"total runtime {time.perf_counter() - t_all:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
