"""Print a Markdown table of every benchmark result in benchmarks/results/*.json.

Usage: ``python benchmarks/render_table.py [RESULTS_DIR]``, or
``python benchmarks/render_table.py --readme README.md`` to rewrite the compact table between the
``<!-- bench:start -->`` and ``<!-- bench:end -->`` markers of the README (machine listed once per file).

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


def render_compact(results_dir: Path) -> str:
    headers = ["benchmark", "ours", "peer", "ratio", "target", "met?"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    machines = []
    for f in sorted(results_dir.glob("*.json")):
        data = json.loads(f.read_text())
        m = data.get("machine", {})
        machines.append(f"- `{f.name}` ({m.get('date_utc', '?')}): {machine_short(m) if m else '?'}")
        for r in data.get("rows", []):
            lines.append("| " + " | ".join(_cell(c) for c in (
                r.get("benchmark"), r.get("ours"), r.get("peer"), r.get("ratio"), r.get("target"),
                _met(r.get("met")))) + " |")
    return "\n".join(lines) + "\n\nMachine per result file:\n\n" + "\n".join(machines)


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(readme: Path, results_dir: Path) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render_compact(results_dir)}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--readme"]:
        update_readme(Path(argv[1]), RESULTS_DIR)
        return 0
    d = Path(argv[0]) if argv else RESULTS_DIR
    if not d.is_dir():
        print(f"no results directory {d}", file=sys.stderr)
        return 1
    print(render(d))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
