"""Shared helpers for the benchmark scripts: machine description, CPU-contention monitor, JSON output.

Not a test module and not part of the ``pytest_i2i`` package. The benchmarks are plain scripts
run as ``python benchmarks/<name>.py``; they import this file from their own directory.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Both scripts make the repository root importable so they run from a plain checkout too.
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_details() -> dict[str, Any]:
    """What tells two CPUs with the same model name apart (cloud hosts all say "AMD EPYC"): the
    family/model/stepping numbers and the widest vector instructions the CPU offers."""
    fields: dict[str, Any] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("cpu family", "model", "stepping") and key not in fields:
                    fields[key.replace(" ", "_")] = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                    fields["vector_isa"] = ("avx512" if "avx512f" in flags else "avx2" if "avx2" in flags
                                            else "avx" if "avx" in flags else "sse")
                    break
    except OSError:
        pass
    return fields


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info(torch_threads: int | None = None) -> dict[str, Any]:
    """Everything needed to compare runs: CPU, cores, library versions, thread settings, date."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu": cpu_details(),
        "logical_cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "env_threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "versions": {d: _version(d) for d in ("numpy", "scipy", "torch", "torchmetrics", "torch-fidelity",
                                               "pytorch-fid", "pytest-i2i")},
    }
    try:
        import numpy as np

        cfg = np.show_config(mode="dicts")  # numpy >= 1.25
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}".strip()
    except Exception:  # noqa: BLE001 - informational only
        info["numpy_blas"] = None
    if "torch" in sys.modules or torch_threads is not None:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
    return info


def machine_short(m: dict[str, Any]) -> str:
    """One line for the Markdown table."""
    cpu = m.get("cpu_model", "?").replace("(R)", "").replace("(TM)", "").replace("  ", " ")
    details = m.get("cpu") or {}
    if details.get("vector_isa"):  # absent in result files written before it was recorded
        cpu += (f" (family {details.get('cpu_family', '?')} model {details.get('model', '?')}, "
                f"{details['vector_isa'].upper()})")
    parts = [f"{cpu}, {m.get('cores_available')} cores"]
    if m.get("torch_threads") is not None:
        parts.append(f"torch {m['versions'].get('torch')} x{m['torch_threads']} threads")
    parts.append(f"numpy {m['versions'].get('numpy')} / scipy {m['versions'].get('scipy')}")
    blas_threads = (m.get("env_threads") or {}).get("OPENBLAS_NUM_THREADS")
    parts.append(f"OpenBLAS threads {blas_threads or 'default'}")
    other = m.get("other_cpu_load_cores")
    if other is not None:
        parts.append(f"other load {other:.1f} cores")
    return "; ".join(parts)


# --- CPU contention -------------------------------------------------------------------------

def _system_busy_jiffies() -> int | None:
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    steal = v[7] if len(v) > 7 else 0
    return sum(v[:8]) - idle - steal


def _clk_tck() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


class CpuMonitor:
    """Measures how many CPU cores *other* processes kept busy while a block ran.

    ``other_cores = (system busy CPU time - this process's CPU time) / wall time``. On a shared
    machine a value well above 0 means the timings are inflated by contention.
    """

    def __enter__(self) -> CpuMonitor:
        self.t0 = time.perf_counter()
        self.sys0 = _system_busy_jiffies()
        self.own0 = sum(os.times()[:2])
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.t0
        sys1 = _system_busy_jiffies()
        own = sum(os.times()[:2]) - self.own0
        if self.sys0 is None or sys1 is None or self.wall <= 0:
            self.other_cores = None
            self.own_cores = own / self.wall if self.wall > 0 else None
            return
        busy = (sys1 - self.sys0) / _clk_tck()
        self.own_cores = own / self.wall
        self.other_cores = max(0.0, (busy - own) / self.wall)


def cpu_busy_fraction(seconds: float = 1.0) -> float | None:
    """Fraction of all cores busy over ``seconds`` (this process is idle meanwhile)."""
    a = _system_busy_jiffies()
    time.sleep(seconds)
    b = _system_busy_jiffies()
    if a is None or b is None:
        return None
    return (b - a) / _clk_tck() / seconds / (os.cpu_count() or 1)


def wait_for_quiet(max_wait_s: float, threshold: float = 0.25) -> dict[str, Any]:
    """Wait (at most ``max_wait_s``) until other processes use < ``threshold`` of the CPUs.

    Returns what happened, for the JSON record. ``max_wait_s <= 0`` only measures once.
    """
    start = time.perf_counter()
    busy = cpu_busy_fraction(1.0)
    while busy is not None and busy >= threshold and time.perf_counter() - start < max_wait_s:
        busy = cpu_busy_fraction(2.0)
    return {"waited_s": round(time.perf_counter() - start, 1), "busy_fraction_before_start": busy,
            "threshold": threshold, "quiet": busy is not None and busy < threshold}


# --- timing and output ----------------------------------------------------------------------

def add_throughput_args(p: Any, result_name: str) -> None:
    """The options every side-by-side throughput benchmark shares (batch, threads, repeats, quiet wait, output)."""
    p.add_argument("--batch-size", type=int, default=16, help="(default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per variant (default %(default)s)")
    p.add_argument("--wait-quiet", type=float, default=0.0,
                   help="wait up to this many seconds for other processes to go idle before timing")
    p.add_argument("--out", default=None, help=f"JSON path (default benchmarks/results/{result_name})")


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def write_result(name: str, payload: dict[str, Any], out: str | os.PathLike | None = None) -> Path:
    path = Path(out) if out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_jsonable) + "\n")
    return path


def _jsonable(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    return str(o)


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
