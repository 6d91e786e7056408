"""Benchmark: Fréchet distance, ours (symmetric eigh route) vs pytorch-fid (scipy.linalg.sqrtm route).

Ours:  ``pytest_i2i.metrics.functional.frechet.frechet_distance``
Peer:  ``pytorch_fid.fid_score.calculate_frechet_distance`` (called directly), i.e.
       ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` with its eps-on-the-diagonal fallback.

Both get the very same float64 (mu, sigma) arrays. Covariances are realistic: features are drawn
as ``mu + (z * sqrt(lambda)) @ Q.T`` with power-law spectra ``lambda`` and random rotations ``Q``
(seeded), and the covariances are computed with ``FeatureStats`` (the project's streaming path).
Cases, per dimension d:

- ``full-rank/different``: 4096 vs 4096 samples from two distributions with different spectra;
- ``full-rank/same``: 4096 vs 4096 samples of one distribution (small FD, heavy cancellation);
- ``rank-deficient``: 256 vs 256 samples (covariances of rank 255 < d).

An independent reference is computed from the samples themselves: with ``A_i`` the centred
samples divided by sqrt(n_i - 1), ``tr sqrt(S1^1/2 S2 S1^1/2)`` is the nuclear norm (sum of
singular values) of the small matrix ``A_2 A_1^T``, which needs no square root of a singular
matrix. Values are compared against the peer (the issue's criterion) and against that reference.

Target (from the issue): ours >= 20x faster than the peer, values equal within 1e-6 relative.

Run: ``python benchmarks/bench_frechet.py`` (see ``--help``; ``--dims 2048`` for the main size only).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import warnings

TARGET_SPEEDUP = 20.0
TARGET_REL = 1e-6


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dims", default="512,1024,2048", help="comma-separated feature dimensions (default %(default)s)")
    p.add_argument("--n-full", type=int, default=4096, help="samples per side, full-rank cases (default %(default)s)")
    p.add_argument("--n-deficient", type=int, default=256, help="samples per side, rank-deficient case (default %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of ours (default %(default)s)")
    p.add_argument("--peer-repeats", type=int, default=3, help="timed repeats of the peer (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--blas-threads", type=int, default=None,
                   help="set OPENBLAS/OMP/MKL_NUM_THREADS before numpy loads (default: leave the environment as is)")
    p.add_argument("--no-reference", action="store_true", help="skip the independent nuclear-norm reference")
    p.add_argument("--no-candidate", action="store_true",
                   help="skip the diagnostic pivoted-Cholesky variant (not package code)")
    p.add_argument("--wait-quiet", type=float, default=0.0,
                   help="wait up to this many seconds for other processes to go idle before timing")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/frechet.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.blas_threads is not None:
        for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[k] = str(args.blas_threads)

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _common as C  # noqa: E402  (after the thread environment is set)

    import numpy as np
    import scipy.linalg as sl

    from pytest_i2i.metrics.functional.frechet import FeatureStats, frechet_distance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision/torch import chatter
        from pytorch_fid.fid_score import calculate_frechet_distance
    try:
        import torch  # imported by pytorch_fid anyway; only recorded

        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_threads = None

    dims = [int(d) for d in args.dims.split(",") if d.strip()]
    quiet = C.wait_for_quiet(args.wait_quiet)
    machine = C.machine_info(torch_threads)

    def draw(rng, n, mu, lam, q):
        z = rng.standard_normal((n, lam.shape[0]))
        return mu + (z * np.sqrt(lam)) @ q.T

    def reference(xa, xb, s1, s2, dmu):
        """tr sqrt(S1^1/2 S2 S1^1/2) without the eigh/sqrtm routes under test.

        Fewer samples than dimensions: nuclear norm of A2 A1^T from the centred samples.
        Otherwise: S_i = L_i L_i^T (Cholesky) and the nuclear norm of L2^T L1.
        """
        if min(xa.shape[0], xb.shape[0]) <= xa.shape[1]:
            a1 = (xa - xa.mean(0)) / np.sqrt(xa.shape[0] - 1)
            a2 = (xb - xb.mean(0)) / np.sqrt(xb.shape[0] - 1)
            nuc, how = float(sl.svdvals(a2 @ a1.T).sum()), "nuclear norm of A2 A1^T from samples"
        else:
            l1, l2 = np.linalg.cholesky(s1), np.linalg.cholesky(s2)
            nuc, how = float(sl.svdvals(l2.T @ l1).sum()), "nuclear norm of L2^T L1 (Cholesky factors)"
        return float(dmu @ dmu + np.trace(s1) + np.trace(s2) - 2.0 * nuc), how

    def candidate(m1, s1, m2, s2):
        """Diagnostic only (NOT the package code): pivoted Cholesky S1 = P L L^T P^T, then the
        eigenvalues of L^T P^T S2 P L (similar to S1 S2 on its range); no eigenvectors needed."""
        c, piv, rank, info = sl.lapack.dpstrf(s1, lower=1)
        ll = np.tril(c)[:, :rank]
        p = piv - 1
        b = ll.T @ s2[np.ix_(p, p)] @ ll
        ev = sl.eigh((b + b.T) / 2, eigvals_only=True, driver="evr")
        dmu = m1 - m2
        return float(dmu @ dmu + np.trace(s1) + np.trace(s2) - 2.0 * np.sqrt(np.clip(ev, 0, None)).sum())

    def peer_call(m1, s1, m2, s2):
        buf = io.StringIO()
        with warnings.catch_warnings(record=True) as w, contextlib.redirect_stdout(buf):
            warnings.simplefilter("always")
            t = time.perf_counter()
            try:
                val, err = float(np.real(calculate_frechet_distance(m1, s1, m2, s2))), None
            except Exception as e:  # noqa: BLE001 - a failure of the peer is a result
                val, err = None, f"{type(e).__name__}: {e}"
            dt = time.perf_counter() - t
        msgs = sorted({str(x.message).splitlines()[0][:160] for x in w})
        return val, dt, err, buf.getvalue().strip(), msgs

    # warm-up (thread pools, first-call costs) on a small problem
    rng0 = np.random.default_rng(12345)
    s_small = np.cov(rng0.standard_normal((300, 64)), rowvar=False)
    frechet_distance(np.zeros(64), s_small, np.zeros(64), s_small)
    peer_call(np.zeros(64), s_small, np.zeros(64), s_small)

    cases_out = []
    rows = []
    t_start = time.perf_counter()
    with C.CpuMonitor() as mon:
        for d in dims:
            rng = np.random.default_rng(args.seed * 1000 + d)
            idx = np.arange(1, d + 1, dtype=np.float64)
            lam_a = 0.5 * idx ** -1.0
            lam_b = 0.6 * idx ** -1.3
            q_a = np.linalg.qr(rng.standard_normal((d, d)))[0]
            q_b = np.linalg.qr(rng.standard_normal((d, d)))[0]
            mu_a = 0.4 + 0.05 * rng.standard_normal(d)
            mu_b = mu_a + 0.02 * rng.standard_normal(d)
            data = {
                "full-rank/different": (draw(rng, args.n_full, mu_a, lam_a, q_a), draw(rng, args.n_full, mu_b, lam_b, q_b)),
                "full-rank/same": (draw(rng, args.n_full, mu_a, lam_a, q_a), draw(rng, args.n_full, mu_a, lam_a, q_a)),
                "rank-deficient": (draw(rng, args.n_deficient, mu_a, lam_a, q_a),
                                   draw(rng, args.n_deficient, mu_b, lam_b, q_b)),
            }
            for case, (xa, xb) in data.items():
                sa, sb = FeatureStats.from_features(xa), FeatureStats.from_features(xb)
                m1, s1, m2, s2 = sa.mean, sa.cov, sb.mean, sb.cov
                rank1 = int(np.linalg.matrix_rank(s1, hermitian=True)) if case == "rank-deficient" else None
                ref, ref_how = (None, None) if args.no_reference else reference(xa, xb, s1, s2, m1 - m2)

                t_ours, t_peer, t_cand = [], [], []
                v_ours = v_peer = v_cand = None
                peer_err = peer_stdout = None
                peer_warn: list[str] = []
                for r in range(max(args.repeats, args.peer_repeats)):
                    if r < args.repeats:
                        t = time.perf_counter()
                        v_ours = frechet_distance(m1, s1, m2, s2)
                        t_ours.append(time.perf_counter() - t)
                        if not args.no_candidate:
                            t = time.perf_counter()
                            v_cand = candidate(m1, s1, m2, s2)
                            t_cand.append(time.perf_counter() - t)
                    if r < args.peer_repeats:
                        v, dt, err, out, msgs = peer_call(m1, s1, m2, s2)
                        t_peer.append(dt)
                        if r == 0:
                            v_peer, peer_err, peer_stdout, peer_warn = v, err, out, msgs
                med_o, med_p = C.median(t_ours), C.median(t_peer)
                ratio = med_p / med_o
                rel_peer = abs(v_ours - v_peer) / abs(v_peer) if v_peer is not None else None
                rel_ref_o = abs(v_ours - ref) / abs(ref) if ref is not None else None
                rel_ref_p = abs(v_peer - ref) / abs(ref) if (ref is not None and v_peer is not None) else None
                met_speed = ratio >= TARGET_SPEEDUP
                met_value = rel_peer is not None and rel_peer <= TARGET_REL
                rec = {
                    "dim": d, "case": case, "n_samples": [xa.shape[0], xb.shape[0]], "rank_sigma1": rank1,
                    "ours_s": t_ours, "peer_s": t_peer, "ours_median_s": med_o, "peer_median_s": med_p,
                    "speedup_peer_over_ours": ratio,
                    "value_ours": v_ours, "value_peer": v_peer, "value_reference": ref,
                    "rel_diff_ours_vs_peer": rel_peer, "rel_err_ours_vs_reference": rel_ref_o,
                    "rel_err_peer_vs_reference": rel_ref_p,
                    "reference_method": ref_how,
                    "candidate_pivoted_cholesky": None if args.no_candidate else {
                        "note": "diagnostic, not package code: pivoted Cholesky + eigvalsh (see candidate())",
                        "times_s": t_cand, "median_s": C.median(t_cand), "value": v_cand,
                        "speedup_peer_over_candidate": med_p / C.median(t_cand),
                        "rel_diff_vs_peer": abs(v_cand - v_peer) / abs(v_peer) if v_peer is not None else None,
                        "rel_err_vs_reference": abs(v_cand - ref) / abs(ref) if ref is not None else None},
                    "peer_error": peer_err, "peer_stdout": peer_stdout or None, "peer_warnings": peer_warn,
                    "met_speed": met_speed, "met_value": met_value, "met": bool(met_speed and met_value),
                }
                cases_out.append(rec)
                notes = f"rel diff vs peer {_fmt(rel_peer)}"
                if ref is not None:
                    notes += f"; vs exact ref: ours {_fmt(rel_ref_o)}, peer {_fmt(rel_ref_p)}"
                if peer_err:
                    notes += f"; peer failed: {peer_err[:60]}"
                elif peer_stdout:
                    notes += "; peer used its eps fallback"
                rows.append({
                    "benchmark": f"Fréchet distance d={d}, {case}",
                    "ours": f"{med_o:.3f} s", "peer": f"{med_p:.3f} s", "ratio": f"{ratio:.1f}x",
                    "target": f">= {TARGET_SPEEDUP:g}x, rel diff <= {TARGET_REL:g}",
                    "met": rec["met"], "notes": notes,
                })
                cand = rec["candidate_pivoted_cholesky"]
                if cand is not None:
                    notes += (f"; diagnostic pivoted-Cholesky variant: {cand['median_s']:.3f} s "
                              f"(x{cand['speedup_peer_over_candidate']:.1f}), ref err {_fmt(cand['rel_err_vs_reference'])}")
                rows[-1]["notes"] = notes
                print(f"d={d:5d} {case:20s} ours {med_o:8.3f} s  peer {med_p:8.3f} s  x{ratio:6.1f}  "
                      f"rel diff {_fmt(rel_peer)}  (ref: ours {_fmt(rel_ref_o)}, peer {_fmt(rel_ref_p)})"
                      + ("" if cand is None else f"  [cholesky variant {cand['median_s']:.3f} s, "
                         f"ref err {_fmt(cand['rel_err_vs_reference'])}]"), flush=True)

    machine["other_cpu_load_cores"] = mon.other_cores
    machine["own_cpu_cores"] = mon.own_cores
    machine["loadavg_at_end"] = list(os.getloadavg())
    machine["wait_for_quiet"] = quiet
    payload = {
        "benchmark": "frechet",
        "description": "Fréchet distance: pytest_i2i frechet_distance (eigh) vs pytorch_fid calculate_frechet_distance "
                       "(scipy.linalg.sqrtm); same float64 inputs; median wall time",
        "peer": "pytorch_fid.fid_score.calculate_frechet_distance",
        "ours": "pytest_i2i.metrics.functional.frechet.frechet_distance",
        "target": {"speedup_min": TARGET_SPEEDUP, "rel_diff_max": TARGET_REL},
        "settings": {"dims": dims, "n_full": args.n_full, "n_deficient": args.n_deficient, "repeats": args.repeats,
                     "peer_repeats": args.peer_repeats, "seed": args.seed, "blas_threads": args.blas_threads},
        "machine": machine,
        "total_runtime_s": time.perf_counter() - t_start,
        "cases": cases_out,
        "rows": rows,
    }
    path = C.write_result("frechet", payload, args.out)

    print()
    C.print_table(["case", "ours (s)", "peer (s)", "peer/ours", "rel diff", "met"],
                  [[f"d={c['dim']} {c['case']}", f"{c['ours_median_s']:.3f}", f"{c['peer_median_s']:.3f}",
                    f"{c['speedup_peer_over_ours']:.1f}x", _fmt(c["rel_diff_ours_vs_peer"]),
                    "yes" if c["met"] else "NO"] for c in cases_out])
    other = mon.other_cores
    print(f"\nother processes kept {other:.2f} cores busy during the run" if other is not None else "")
    print(f"wrote {path}")
    return 0


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1e}"


if __name__ == "__main__":
    raise SystemExit(main())
