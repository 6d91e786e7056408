"""Print a Markdown table of every benchmark result in benchmarks/results/*.json.

Usage: ``python benchmarks/render_table.py [RESULTS_DIR]``

Columns: benchmark, ours, peer, ratio, target, met?, machine, notes. Each JSON file written by a
``bench_*.py`` script holds a ``rows`` list (one entry per comparison) and a ``machine`` record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, machine_short  # noqa: E402


def _cell(x: object) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _met(v: object) -> str:
    if v is None:
        return "n/a"
    return "yes" if v else "**no**"


def render(results_dir: Path) -> str:
    files = sorted(results_dir.glob("*.json"))
    headers = ["benchmark", "ours", "peer", "ratio", "target", "met?", "machine", "notes"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    dates = []
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"skipping {f.name}: {e}", file=sys.stderr)
            continue
        m = data.get("machine", {})
        machine = machine_short(m) if m else "?"
        dates.append(f"{f.name}: {m.get('date_utc', '?')}")
        for r in data.get("rows", []):
            lines.append("| " + " | ".join(_cell(c) for c in (
                r.get("benchmark"), r.get("ours"), r.get("peer"), r.get("ratio"), r.get("target"),
                _met(r.get("met")), machine, r.get("notes", ""))) + " |")
    out = "\n".join(lines)
    if dates:
        out += "\n\nRun dates (UTC): " + "; ".join(dates)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    d = Path(argv[0]) if argv else RESULTS_DIR
    if not d.is_dir():
        print(f"no results directory {d}", file=sys.stderr)
        return 1
    print(render(d))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
