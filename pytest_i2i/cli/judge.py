"""``i2i judge``: collect your own human judgments (make tasks, serve the judging page, show the status)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from pytest_i2i.cli.options import WEIGHTS_OPTIONS, add_options, apply_weights_options


def register(sub: argparse._SubParsersAction) -> None:
    j = sub.add_parser("judge", help="collect human judgments: make tasks, serve a local judging page, status",
                       description="Make a study (task manifest + images), serve it to raters on this machine, and "
                                   "follow it. Judgments are written as they arrive into a judgment set that "
                                   "i2i validate reads.")
    jsub = j.add_subparsers(dest="judge_command", required=True)

    m = jsub.add_parser("make", help="write a task folder (tasks.json + images)")
    msub = m.add_subparsers(dest="make_kind", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("out", metavar="OUT", help="task folder to create (must not hold a study yet)")
    common.add_argument("--name", default=None, help="the study's name (in the page and the judgment set)")
    common.add_argument("--question", default=None, help="the question raters see")
    add_options(common, "seed", seed={"help": "draws sides, repeated items and rater orders (default 0)"})
    common.add_argument("--repeats", type=int, default=None, metavar="N",
                        help="items shown twice to every rater, sides swapped (default: 10%% of the items)")
    gold = argparse.ArgumentParser(add_help=False)
    gold.add_argument("--gold", type=int, default=0, metavar="N",
                      help="add N gold items with a known answer made with pytest_i2i.perturb (default 0)")
    gold.add_argument("--gold-ops", default=None, help="comma-separated perturbation operations of gold items")
    gold.add_argument("--gold-area", type=float, default=None, help="edited area fraction of gold items (0.1)")

    p = msub.add_parser("pairwise", parents=[common, gold], help="A/B: two models' outputs on one dataset")
    p.add_argument("--a", required=True, metavar="DIR", help="outputs of model A (<uid>.png, as i2i generate writes)")
    p.add_argument("--b", required=True, metavar="DIR", help="outputs of model B")
    p.add_argument("--data", default=None, help="the dataset (folder or manifest; default: the built-in sample set)")
    p.add_argument("--a-name", default=None, help="model A's name (default: the folder name; not shown to raters)")
    p.add_argument("--b-name", default=None, help="model B's name")

    t = msub.add_parser("2afc", parents=[common, gold], help="a reference and two candidates (BAPPS style)")
    t.add_argument("--reference", required=True, metavar="DIR", help="reference images (matched by file stem)")
    t.add_argument("--p0", required=True, metavar="DIR", help="first candidates (matched by file stem)")
    t.add_argument("--p1", required=True, metavar="DIR", help="second candidates")

    r = msub.add_parser("rating", parents=[common], help="single outputs rated on a declared scale")
    r.add_argument("--images", required=True, action="append", metavar="DIR",
                   help="a folder of images to rate (repeat for several models)")
    r.add_argument("--models", default=None, help="comma-separated model names, one per --images (default: folder names)")
    r.add_argument("--reference", default=None, metavar="DIR", help="shown next to each image (matched by stem)")
    r.add_argument("--data", default=None, help="a dataset whose input and instruction are shown (uid = stem)")
    r.add_argument("--scale", required=True, metavar="MIN:MAX[:STEP]", help="e.g. 1:5 or 0:10:0.5")
    r.add_argument("--criterion", default="quality", help="what is rated (default: quality)")
    r.add_argument("--labels", default="", help="labels of scale values, e.g. '1=bad,5=excellent'")
    r.add_argument("--lower-is-better", action="store_true", help="the scale's low end is the good one")

    g = msub.add_parser("perturb", parents=[common],
                        help="2AFC with known answers from controlled local edits (gold / attention items)")
    g.add_argument("--images", default=None, metavar="DIR", help="images (default: the bundled photos)")
    g.add_argument("--n-images", type=int, default=8, metavar="N", help="number of images (default 8)")
    g.add_argument("--size", type=int, default=128, help="side of the bundled photos in pixels (default 128)")
    g.add_argument("--ops", default=None, help="comma-separated operations of pytest_i2i.perturb.OPS")
    g.add_argument("--area", type=float, default=None, help="edited area fraction (default 0.1)")
    g.add_argument("--region", default="ellipse", choices=("ellipse", "box", "blob"),
                   help="shape of the edited region (default ellipse)")
    m.set_defaults(run=_make)

    s = jsub.add_parser("serve", help="serve the judging page (127.0.0.1 by default)",
                        description="Serve TASKS to raters. Judgments are appended, fsync'd, to --out as they arrive "
                                    "(judgments.toml + judgments.jsonl: a judgment set i2i validate reads). Ctrl-C "
                                    "stops; serving the same folders again resumes.")
    s.add_argument("tasks", metavar="TASKS", help="task folder or tasks.json")
    s.add_argument("--out", required=True, metavar="DIR", help="output folder (created; reused to resume)")
    s.add_argument("--port", type=int, default=8765, help="default 8765; 0 picks a free port")
    s.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only); any other needs a token")
    s.add_argument("--token", default=None, help="a shared secret raters' links carry; 'auto' draws one")
    s.add_argument("--token-file", default=None, metavar="FILE", help="read the token from FILE")
    s.add_argument("--raters", default=None, help="comma-separated rater names allowed (default: any name)")
    s.add_argument("--synthetic", action="store_true",
                   help="label the judgments synthetic (scripted raters, tests, demos), never for people's answers")
    s.add_argument("--metrics", default=None,
                   help="comma-separated metrics of the live ranking, computed on the images (default: the "
                        "registry's weight-free paired metrics)")
    s.add_argument("--resamples", type=int, default=1000, help="bootstrap draws of the ranking's CIs")
    s.add_argument("--verbose", action="store_true", help="log every request to stderr")
    add_options(s, *WEIGHTS_OPTIONS)
    s.set_defaults(run=_serve)

    st = jsub.add_parser("status", help="per-rater counts, gold agreement, self-consistency, alpha, ranking")
    st.add_argument("out", metavar="DIR", help="the output folder of i2i judge serve")
    st.add_argument("--ranking", action="store_true", help="also compute the metric ranking (needs the images)")
    st.add_argument("--metrics", default=None, help="as for serve")
    st.add_argument("--resamples", type=int, default=1000, help="bootstrap draws of the ranking's CIs (default 1000)")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    add_options(st, *WEIGHTS_OPTIONS)
    st.set_defaults(run=_status)


def _split(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _make(args: argparse.Namespace) -> int:
    from pytest_i2i.judge import make as M
    from pytest_i2i.judge.tasks import Scale

    created_by = "i2i " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if len(sys.argv) > 1 else None
    common: dict[str, Any] = {"seed": args.seed, "name": args.name, "question": args.question,
                              "repeats": args.repeats, "created_by": created_by}
    if args.make_kind in ("pairwise", "2afc"):
        common.update(gold=args.gold, gold_ops=_split(args.gold_ops) or M.DEFAULT_GOLD_OPS,
                      gold_area=M.DEFAULT_GOLD_AREA if args.gold_area is None else args.gold_area)
    if args.make_kind == "pairwise":
        path = M.make_pairwise(args.out, a=args.a, b=args.b, data=args.data, a_name=args.a_name, b_name=args.b_name,
                               **common)
    elif args.make_kind == "2afc":
        path = M.make_2afc(args.out, reference=args.reference, p0=args.p0, p1=args.p1, **common)
    elif args.make_kind == "rating":
        scale = Scale.parse(args.scale, criterion=args.criterion, labels=args.labels,
                            higher_is_better=not args.lower_is_better)
        path = M.make_rating(args.out, images=args.images, models=_split(args.models) or None,
                             reference=args.reference, data=args.data, scale=scale, **common)
    else:
        path = M.make_perturbation_2afc(args.out, images=args.images, n_images=args.n_images, size=args.size,
                                        ops=_split(args.ops) or M.DEFAULT_GOLD_OPS,
                                        area=M.DEFAULT_GOLD_AREA if args.area is None else args.area,
                                        region=args.region, **common)
    from pytest_i2i.judge.tasks import load_tasks

    tasks = load_tasks(path)
    n_gold = sum(1 for it in tasks.items.values() if it.get("gold"))
    print(f"wrote {path}: {tasks.kind}, {len(tasks.items)} items ({n_gold} gold, {len(tasks.repeats)} repeated), "
          f"{len(tasks.images)} images")
    print(f"serve it with: i2i judge serve {shlex.quote(str(Path(args.out)))} --out JUDGMENTS_DIR")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import secrets

    from pytest_i2i.errors import I2IInputError
    from pytest_i2i.judge.server import JudgeServer

    apply_weights_options(args)
    token = args.token
    if args.token_file:
        if token:
            raise I2IInputError("give --token or --token-file, not both")
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise I2IInputError(f"--token-file {args.token_file}: cannot read ({e.strerror or e})") from None
    if token == "auto":
        token = secrets.token_urlsafe(18)
    if not 0 <= args.port <= 65535:
        raise I2IInputError(f"--port {args.port}: must be in 0..65535")
    if args.resamples < 100:
        raise I2IInputError(f"--resamples {args.resamples}: use at least 100 draws")
    try:
        srv = JudgeServer(args.tasks, args.out, host=args.host, port=args.port, token=token,
                          raters=_split(args.raters) or None, synthetic=args.synthetic,
                          metrics=_split(args.metrics) or None, n_resamples=args.resamples, verbose=args.verbose)
    except OSError as e:
        raise I2IInputError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e}); try another --port") from None
    for w in srv.store.warnings:
        print(f"warning: {w}", file=sys.stderr)
    n = len(srv.store.judgments())
    print(f"study {srv.tasks.name!r} ({srv.tasks.kind}, {srv.tasks.n_slots()} items per rater); "
          f"{n} judgment(s) already in {srv.store.out}")
    print(f"judging page: {srv.url}")
    print(f"live status:  {srv.url.split('?')[0]}status")
    print("Ctrl-C stops the server; every answer is already saved.", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped.")
    return 0


def _status(args: argparse.Namespace) -> int:
    from pytest_i2i.judge.status import MetricRanking, read_study, study_status

    apply_weights_options(args)
    tasks, judgments, warnings = read_study(args.out)
    ranking = None
    if args.ranking:
        ranking = MetricRanking(args.out, tasks, _split(args.metrics) or None, n_resamples=args.resamples).compute()
    status = study_status(tasks, judgments, ranking=ranking)
    status["warnings"] = warnings
    if args.json:
        print(json.dumps(status, indent=2, allow_nan=False))
        return 0
    print(_status_text(status))
    return 0


def _f(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _status_text(s: dict[str, Any]) -> str:
    lines = [f"study {s['name']!r} ({s['kind']}): {s['n_slots_per_rater']} items per rater ({s['n_tasks']} tasks, "
             f"{s['n_repeats']} repeated, {s['n_gold']} gold); {s['n_judgments']} judgment(s)", ""]
    head = f"{'rater':<20} {'judgments':>10} {'gold agreement':>16} {'self-consistency':>17} {'left':>6}"
    lines += [head, "-" * len(head)]
    for name, r in s["raters"].items():
        g, c = r["gold"], r["self_consistency"]
        gold = f"{_f(g['agreement'])} ({g['n']})" if g["agreement"] is not None else "n/a"
        cons = f"{_f(c['agreement'])} ({c['n_pairs']})" if c["agreement"] is not None else "n/a"
        left = _f(r.get("left_rate"), 2) if "left_rate" in r else ""
        lines.append(f"{name:<20} {str(r['n']) + '/' + str(r['total']):>10} {gold:>16} {cons:>17} {left:>6}")
    a = s["agreement"]
    alpha = ", ".join(f"{k} {_f(v)}" for k, v in a["krippendorff_alpha"].items() if not k.endswith("reason"))
    lines += ["", f"Krippendorff's alpha ({a['n_raters']} rater(s), {a['n_tasks']} task(s)): {alpha}"
              + (f" ({a['krippendorff_alpha']['reason']})" if a["krippendorff_alpha"].get("reason") else "")]
    if "rater_agreement" in a:
        ra = a["rater_agreement"]
        lines.append(f"agreement between two raters on an item: {_f(ra['value'])} over {ra['n_tasks']} item(s)"
                     + (f" ({ra['reason']})" if ra.get("reason") else ""))
    rk = s.get("ranking")
    if rk is not None:
        lines += ["", "metric ranking (95% CI):"]
        for k, row in enumerate(rk["rows"], 1):
            ci = f"[{_f(row['ci'][0])}, {_f(row['ci'][1])}]" if row["ci"] else ""
            lines.append(f"  {k}. {row['metric']:<12} {row['level']:<6} {_f(row['value'])} {ci} n={row['n']}")
        if not rk["rows"]:
            lines.append(f"  none: {rk.get('reason', 'no metric has a value yet')}")
        for u in rk.get("undefined", []):
            lines.append(f"  {u['metric']}: {u['reason']}")
        for k in rk.get("skipped", []):
            lines.append(f"  {k['metric']} skipped: {k['reason']}")
    for w in s.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)
