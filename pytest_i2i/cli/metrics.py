"""``i2i metrics``: list the registered metrics: kind, direction, what they compare, what each needs and
whether it is ready on this machine."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_i2i.cli.options import WEIGHTS_OPTIONS, add_options, apply_weights_options


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("metrics", help="list the registered metrics, what each needs and whether it is ready",
                       description="List the registered metrics: kind, direction, what a fixture called without "
                                   "arguments compares, what each needs (backbone weights, image size, arguments) "
                                   "and whether it is ready on this machine. Nothing is downloaded.")
    m.add_argument("pattern", nargs="?", default=None, help="shell-style filter on the names, e.g. 'clip*'")
    m.add_argument("--kind", default=None, help="only metrics of this kind (paired, set, single-set, text-image, "
                                                "edit-direction, label-map)")
    m.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_options(m, *WEIGHTS_OPTIONS)
    m.set_defaults(run=_metrics)


def needs_and_state(spec: Any, backbones: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """What metric ``spec`` needs beyond its data, and whether it is ready here (``backbones`` memoises
    :func:`pytest_i2i.cli.backbones.readiness` per backbone)."""
    from pytest_i2i.cli.backbones import readiness

    needs = []
    state = "ready"
    if spec.backbone and spec.needs_weights:
        if spec.backbone not in backbones:
            backbones[spec.backbone] = readiness(spec.backbone)
        needs.append(f"{spec.backbone} weights")
        state = backbones[spec.backbone]["state"]
    if spec.min_size:
        needs.append(f"images >= {spec.min_size} px")
    if spec.required:
        needs.append(", ".join(f"{k}=" for k in spec.required))
        state = "Python/pytest only (pass " + ", ".join(f"{k}=" for k in spec.required) + ")"
    return ("; ".join(needs) or "nothing"), state


def _metrics(args: argparse.Namespace) -> int:
    import json

    from pytest_i2i.metrics.registry import list_metrics, metric_spec

    apply_weights_options(args)
    backbones: dict[str, dict[str, Any]] = {}
    rows = []
    for name in list_metrics(args.pattern, kind=args.kind):
        spec = metric_spec(name)
        compares = ", ".join(spec.args) if spec.args else "(arguments: " + ", ".join(spec.required or ("data",)) + ")"
        needs, state = needs_and_state(spec, backbones)
        rows.append({"metric": name, "kind": spec.kind, "better": "higher" if spec.higher_is_better else "lower",
                     "compares": compares, "backbone": spec.backbone, "needs": needs, "ready": state,
                     "description": spec.description})
    if args.json:
        print(json.dumps({"metrics": rows}, indent=2))
        return 0
    header = ("metric", "kind", "better", "compares", "needs", "ready", "description")
    table = [header] + [tuple(str(r[k]) for k in ("metric", "kind", "better", "compares", "needs", "ready",
                                                  "description")) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for k, row in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
        if k == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 11)
    not_ready = sorted({b for b, r in backbones.items() if not r["ready"]})
    if not_ready:
        print(f"\nnot ready: weights of {', '.join(not_ready)} (`i2i backbones` shows the files and where they "
              "are looked for; `i2i backbones --download NAME` fetches them now)")
    return 0
