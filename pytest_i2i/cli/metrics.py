"""``i2i metrics``: list the registered metrics: kind, direction, what they compare, their backbone."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("metrics", help="list the registered metrics (kind, direction, data, backbone)")
    m.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'clip*'")
    m.add_argument("--kind", default=None, help="only metrics of this kind (paired, set, single-set, text-image, "
                                                "edit-direction, label-map)")
    m.set_defaults(run=_metrics)


def _metrics(args: argparse.Namespace) -> int:
    from pytest_i2i.metrics.registry import list_metrics, metric_spec

    rows = [("metric", "kind", "better", "compares", "backbone", "description")]
    for name in list_metrics(args.pattern, kind=args.kind):
        spec = metric_spec(name)
        compares = ", ".join(spec.args) if spec.args else "(arguments: " + ", ".join(spec.required or ("data",)) + ")"
        rows.append((name, spec.kind, "higher" if spec.higher_is_better else "lower", compares,
                     spec.backbone or "-", spec.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for k, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
        if k == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 11)
    return 0
