"""The HTML page of a session report (``--i2i-report=DIR`` → ``DIR/index.html``).

Rendered once, from the merged JSON report and the sample images the session exported to
``DIR/images/<uid>__{input,output,target,baseline}.png``. Top to bottom:

1. the summary: verdict, counts (passed / failed / skipped / errors), model and baseline with their
   sha256, data, device, whether the backbone weights were calibrated, and what did not run and why
   (missing weights with the file to install, no baseline, ...);
2. the failures, each with its message;
3. a table of every metric test, failures first, saying what each gate compared (the mean, or a
   one-sided confidence bound of it) with value, CI and n (used/asked when samples were lost);
4. per metric, one section: the gate, a distribution plot with the threshold, the samples lost (with
   why), the worst samples for that metric and the best for contrast (input / output / target), heat
   maps where the metric returns maps (``extra["maps"]``: ``feature_map_distance``,
   ``vit_patch_distance``, ``lpips(spatial=True)``, ``patchgan_realism``);
5. a per-sample table across metrics that sorts and filters (inline JavaScript, no build step);
6. with ``--i2i-baseline``: paired differences with CIs per metric and, side by side, candidate vs
   baseline outputs for the samples that regressed most.

The folder is self-contained (no server, no external file): ``index.html``, ``images/``, ``plots/``
and ``i2i-report.json``.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from pytest_i2i.backbones.weights import human_size
from pytest_i2i.report import samples_used

ROLES = ("input", "output", "target")
#: worst samples shown per metric, and best samples shown for contrast
WORST_SHOWN, BEST_SHOWN = 3, 2


def rank_k(n: int) -> int:
    """How many of ``n`` samples the per-sample table marks worst (and best) per metric: a quarter,
    1 to 3."""
    return max(1, min(3, n // 4))


_esc = html.escape


def image_path(images_dir: Path, uid: str, role: str) -> Path:
    """``images_dir/<uid>__<role>.png``; a uid with characters other than letters, digits, ``-_.``
    has them replaced by ``_`` (and a uid longer than 160 characters is cut there) and gets
    ``-<first 10 hex of sha256(uid)>`` appended, so two uids never share a file (``a/b`` and ``a:b``
    would both sanitise to ``a_b``)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in uid)
    if safe != uid or not uid.strip(".") or len(safe) > 160:  # (a file name has at most 255 bytes)
        import hashlib

        safe = safe[:160] + "-" + hashlib.sha256(uid.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return images_dir / f"{safe}__{role}.png"


def export_images(images_dir: Path, uid: str, tensors: dict[str, Any]) -> None:
    """Save one sample's images (CHW float tensors in [0, 1]) as PNG thumbnails (longest side 256)."""
    import numpy as np
    from PIL import Image

    images_dir.mkdir(parents=True, exist_ok=True)
    for role, t in tensors.items():
        if t is None:
            continue
        arr = (t.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        img = Image.fromarray(arr)
        img.thumbnail((256, 256), Image.Resampling.LANCZOS)
        img.save(image_path(images_dir, uid, role))


# -- plots -----------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "legend.fontsize": 10,
                         "xtick.labelsize": 11, "ytick.labelsize": 11, "svg.hashsalt": "i2i"})
    return plt


def _heatmap(out: Path, background: Path | None, dist_map: list[list[float]], vmax: float) -> None:
    """The patch distances of one sample over its output image (inferno colour map, 0 to ``vmax``:
    one scale for every sample of a metric), as a plain PNG the size of the thumbnail."""
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image

    m = np.nan_to_num(np.asarray(dist_map, dtype=float), nan=0.0)
    rgba = colormaps["inferno"](np.clip(m / vmax, 0.0, 1.0) if vmax > 0 else np.zeros_like(m))
    heat = Image.fromarray((rgba[..., :3] * 255 + 0.5).astype(np.uint8))
    if background is not None and background.is_file():
        base = Image.open(background).convert("RGB")
        heat = Image.blend(base, heat.resize(base.size, Image.Resampling.NEAREST), 0.6)
    else:
        heat = heat.resize((256, 256), Image.Resampling.NEAREST)
    heat.save(out)


def _distribution_plot(out: Path, result: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    """Histogram of the per-sample values (integer count ticks) with the mean, its CI, the thresholds
    and the gates' confidence bounds."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    values = np.array([v for v in result.get("per_sample") or [] if isinstance(v, (int, float))], dtype=float)
    finite = values[np.isfinite(values)]
    fig, ax = plt.subplots(figsize=(6.0, 3.3), dpi=100)
    if finite.size:
        bins = int(min(20, max(5, math.ceil(math.sqrt(finite.size)) * 2)))
        ax.hist(finite, bins=bins, color="#8fb3de", edgecolor="#34608f", label="samples")
    ci = result.get("ci")
    if ci and all(isinstance(c, (int, float)) and math.isfinite(c) for c in ci):
        ax.axvspan(ci[0], ci[1], color="#34608f", alpha=0.15, label=f"{_pct(result.get('confidence'))} CI of the mean")
    if isinstance(result.get("value"), (int, float)) and math.isfinite(result["value"]):
        ax.axvline(result["value"], color="#1b2a3a", lw=2, label=f"mean {_num(result['value'])}")
    for c in checks:
        if c.get("gate", "").startswith("no regression"):
            continue  # a margin on differences, not on this axis
        color = "#1a7f37" if c["passed"] else "#cf222e"
        ax.axvline(c["threshold"], color=color, ls="--", lw=2, label=f"threshold {c['op']} {_num(c['threshold'])}")
        if isinstance(c.get("bound"), (int, float)):
            ax.axvline(c["bound"], color=color, ls=":", lw=2, label=f"gated bound {_num(c['bound'])}")
    arrow = "higher is better" if result.get("higher_is_better") else "lower is better"
    ax.set_xlabel(f"{result['name']} per sample ({arrow})")
    ax.set_ylabel("samples")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)


# -- page pieces -----------------------------------------------------------------------------------
def _num(x: Any, digits: int = 4) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return "-" if x is None else str(x)
    return f"{x:.{digits}g}"


def _pct(x: Any) -> str:
    return f"{x:.0%}" if isinstance(x, (int, float)) else "95%"


def _badge(outcome: str) -> str:
    label = {"passed": "passed", "failed": "FAILED", "error": "ERROR", "skipped": "skipped", "xfailed": "xfailed",
             "xpassed": "xpassed"}.get(outcome, outcome)
    return f"<span class='badge {_esc(outcome)}'>{_esc(label)}</span>"


def _short_test(nodeid: str) -> str:
    return nodeid.split("::")[-1]


def _anchor(i: int, name: str) -> str:
    return f"m{i}-" + "".join(c if c.isalnum() else "-" for c in name)


def _is_baseline(entry: dict[str, Any]) -> bool:
    return (entry["result"].get("extra") or {}).get("evaluated") == "baseline"


def _lost_samples(r: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """The samples a result was asked to score and did not, each with why (the generator's error,
    where the session recorded one): an ``<li>`` per sample, the first 10, under a headline item."""
    asked, lost = r.get("n_requested"), r.get("lost_samples") or []
    if not (isinstance(asked, int) and asked > r["n"]) and not lost:
        return []
    errors = report.get("generation_errors") or {}
    items = "".join(f"<li><b>{_esc(uid)}</b>: {_esc(errors.get(uid, 'no valid output'))}</li>" for uid in lost[:10])
    more = f"<li class='muted'>... and {len(lost) - 10} more</li>" if len(lost) > 10 else ""
    return [f"<li class='bad'><b>n = {r['n']} of {asked} asked for: {(asked or 0) - r['n']} samples lost</b>, "
            f"the value rests on the others<ul>{items}{more}</ul></li>"]


def _spread(r: dict[str, Any]) -> str:
    ci = r.get("ci")
    if ci:
        return f"[{_num(ci[0])}, {_num(ci[1])}]"
    return f"± {_num(r['std'])} (std)" if r.get("std") is not None else ""


def _figure(src: str, caption: str, *, size: int = 76) -> str:
    return (f"<figure><a href='{_esc(src)}' target='_blank'><img src='{_esc(src)}' width='{size}' height='{size}' "
            f"alt='{_esc(caption)}' loading='lazy'></a><figcaption>{_esc(caption)}</figcaption></figure>")


def _sample_images(images_dir: Path, uid: str, roles: tuple[str, ...] = ROLES) -> list[str]:
    return [_figure(f"images/{image_path(images_dir, uid, role).name}", role)
            for role in roles if image_path(images_dir, uid, role).is_file()]


def _summary(report: dict[str, Any], summary: dict[str, Any], nav: str) -> str:
    session = report.get("session") or {}
    options = session.get("options") or {}
    counts = summary["counts"]
    verdict = summary["verdict"]
    parts = [f"<header class='verdict {_esc(verdict.replace(' ', '-'))}'><div><h1>pytest-i2i report</h1>"
             f"<p class='sub'>{_esc(_model_line(session.get('model'), options.get('model')))}</p>"
             f"<p class='sub'>{_esc(_headline(report, summary))}</p></div>"
             f"<div class='big'>{_esc(verdict.upper())}</div></header>"]
    if summary["status"] != "complete":
        parts.append(f"<p class='warn'>A partial report (<b>run {_esc(summary['status'])}</b>): only the tests "
                     "that finished are listed.</p>")
    tiles = [("passed", counts["passed"]), ("failed", counts["failed"]), ("skipped", counts["skipped"]),
             ("errors", counts["error"])]
    tiles += [(k, counts[k]) for k in ("xfailed", "xpassed") if counts[k]]
    parts.append("<div class='tiles'>" + "".join(
        f"<div class='tile {k}'><b>{v}</b><span>{k}</span></div>" for k, v in tiles) + "</div>")
    parts.append(f"<nav>{nav}</nav>")
    facts = [("model", _model_line(session.get("model"), options.get("model"), sha=True)),
             ("baseline", _model_line(session.get("baseline"), options.get("baseline"), sha=True)
              if options.get("baseline") else "none (pass --i2i-baseline=CHECKPOINT to compare with one)")]
    ds = session.get("dataset") or {}
    if ds:
        facts.append(("data", f"{ds.get('description') or ds.get('source') or '?'}: {ds.get('n', '?')} samples"
                              + (f" ({ds['source']})" if ds.get("source") and ds.get("description") else "")))
    facts.append(("device", f"{options.get('device', '?')}, batch size {options.get('batch_size', '?')}, "
                            f"seed {options.get('seed', '?')}"))
    facts.append(("backbone weights", _calibration(report)))
    errors = report.get("generation_errors") or {}
    if errors:
        facts.append(("generation errors", f"{len(errors)} sample(s) produced no valid output: "
                                           + ", ".join(sorted(errors)[:8])))
    parts.append("<dl class='facts' id='summary'>" + "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts)
                 + "</dl>")
    parts.append(_not_run(report, summary))
    return "\n".join(parts)


def _headline(report: dict[str, Any], summary: dict[str, Any]) -> str:
    """One line: the gates' verdicts and how many metric tests did not run, by reason."""
    checks = [c for row in summary["rows"] if row["entry"] is not None for c in row["entry"]["checks"]]
    failed = sum(not c["passed"] for c in checks)
    text = f"gates: {len(checks) - failed} passed, {failed} failed"
    kinds: dict[str, int] = {}
    for t in summary["not_run"]:
        if t["metrics"]:
            label = {"weights": "weights missing", "size": "too small"}.get(t["kind"],
                                                                         _KIND_TITLES.get(t["kind"], t["kind"]))
            kinds[label] = kinds.get(label, 0) + 1
    if kinds:
        text += (f" · {sum(kinds.values())} metric test{'s' if sum(kinds.values()) != 1 else ''} did not run ("
                 + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])) + ")")
    return text


def _model_line(info: dict[str, Any] | None, given: Any, *, sha: bool = False) -> str:
    if not info and not given:
        return "no model (pass --i2i-model=CHECKPOINT)"
    info = info or {}
    text = str(info.get("source") or given)
    details = [info[k] for k in ("arch", "kind") if info.get(k) and info.get(k) != "None"]
    if sha and info.get("sha256"):
        details.append(f"sha256 {info['sha256'][:16]}")
    return text + (f" ({', '.join(details)})" if details else "")


def _calibration(report: dict[str, Any]) -> str:
    with_backbone = [e["result"] for e in report.get("metrics") or [] if e["result"].get("backbone")]
    if not with_backbone:
        return "no backbone metric ran (weight-free metrics only)"
    unc = sorted({r["name"] for r in with_backbone if not r.get("calibrated", True)})
    if unc:
        return f"UNCALIBRATED for {', '.join(unc)}: smoke-test numbers only, never for model decisions"
    return "calibrated: published weights, verified by sha256 (" + ", ".join(
        sorted({r["backbone"] for r in with_backbone})) + ")"


_KIND_TITLES = {"baseline": "no baseline", "model": "no model", "threshold": "no threshold",
                "size": "images too small", "data": "data missing", "other": "skipped"}


def _not_run(report: dict[str, Any], summary: dict[str, Any]) -> str:
    """What did not run and why: missing weights per backbone (file to install, full message), then
    the other skips grouped by reason; and what was computed but not gated."""
    items = []
    missing = report.get("missing_weights") or {}
    for backbone, m in missing.items():
        metrics = sorted({n for t in summary["not_run"] if t["backbone"] == backbone for n in t["metrics"]})
        size = f", {human_size(m['size'])}" if m.get("size") else ""
        file = (f"install <code>{_esc(m['file'])}</code>{_esc(size)}" if m.get("file") else "install its weights")
        source = f" from <code>{_esc(m['source'])}</code>" if m.get("source") else ""
        items.append(
            f"<li class='weights'><b>{_esc(', '.join(metrics) or backbone)}</b>: no weights for backbone "
            f"<code>{_esc(backbone)}</code> ({len(m['tests'])} test{'s' if len(m['tests']) != 1 else ''}); "
            f"{file}{source}.<details><summary>where it was looked for and how to install it</summary>"
            f"<pre>{_esc(m['message'])}</pre></details></li>")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in summary["not_run"]:
        if t["kind"] == "weights":
            continue
        reason = t["reason"]
        for metric in t["metrics"]:
            reason = reason.removeprefix(f"{metric}: ")
        groups.setdefault((t["kind"], reason), []).append(t)
    for (kind, reason), tests in groups.items():
        names = sorted({m for t in tests for m in t["metrics"]}) or sorted(_short_test(t["test"]) for t in tests)
        items.append(f"<li><b>{_esc(', '.join(names))}</b> ({len(tests)} test{'s' if len(tests) != 1 else ''}, "
                     f"{_esc(_KIND_TITLES.get(kind, kind))}): {_esc(reason)}</li>")
    ungated = [row for row in summary["rows"] if row["entry"] is not None and row["outcome"] == "skipped"
               and not _is_baseline(row["entry"])]
    if ungated:
        items.append("<li><b>computed, not gated</b> (skipped after computing; no threshold in "
                     "[tool.i2i.thresholds] unless said): " + ", ".join(
                         f"{_esc(row['metric'])} = {_esc(_num(row['entry']['result']['value']))}"
                         + ("" if "no threshold" in row["detail"] else f" ({_esc(row['detail'])})") for row in ungated)
                     + "</li>")
    if not items:
        return "<h2 id='not-run'>What did not run</h2><p>Everything ran.</p>"
    return f"<h2 id='not-run'>What did not run, and why</h2><ul class='notrun'>{''.join(items)}</ul>"


def _message(text: str) -> str:
    for prefix in ("pytest_i2i.gates.MetricGateError: ", "AssertionError: "):
        text = text.removeprefix(prefix)
    return text


def _failures(report: dict[str, Any], anchors: dict[str, str]) -> str:
    failed = [(k, t) for k, t in (report.get("tests") or {}).items() if t.get("outcome") in ("failed", "error")]
    if not failed:
        return ""
    rows = "".join(
        f"<div class='failure'><h3>{_badge(t['outcome'])} {_esc(nodeid)}"
        f"{' <a href=#' + anchors[nodeid] + '>details</a>' if nodeid in anchors else ''}</h3>"
        f"<pre>{_esc(_message(t.get('message', '')))}</pre></div>" for nodeid, t in failed)
    return f"<h2 id='failures'>Failures ({len(failed)})</h2>{rows}"


_ORDER = {"failed": 0, "error": 0, "passed": 1, "xpassed": 1, "skipped": 2, "xfailed": 2}


def _overview(summary: dict[str, Any], anchors: dict[int, str]) -> str:
    from pytest_i2i.report import gate_text

    rows = []
    ordered = sorted(summary["rows"], key=lambda r: (_ORDER.get(r["outcome"], 3), r["entry"] is None, r["metric"],
                                                     r["test"]))
    for row in ordered:
        e = row["entry"]
        test = f"<div class='test'>{_esc(_short_test(row['test']))}</div>"
        if e is None:
            rows.append(f"<tr class='{_esc(row['outcome'])} nocalc'><td>{_badge(row['outcome'])}</td>"
                        f"<td>{_esc(row['metric'])}{test}</td><td class='num muted'>–</td><td></td><td></td>"
                        f"<td class='muted'>not computed</td><td>{_esc(row['detail'])}</td></tr>")
            continue
        r = e["result"]
        name = r["name"] + (" (baseline)" if _is_baseline(e) else "")
        link = anchors.get(id(e))
        name_html = f"<a href='#{link}'>{_esc(name)}</a>" if link else _esc(name)
        gates = "<br>".join(_esc(gate_text(c, r, long=True)) for c in e["checks"]) or \
            "<span class='muted'>not gated</span>"
        note = row["detail"]
        if r.get("backbone"):
            note = "; ".join(x for x in (note, r["backbone"] + ("" if r.get("calibrated", True) else " UNCALIBRATED"))
                             if x)
        rows.append(f"<tr class='{_esc(row['outcome'])}'><td>{_badge(row['outcome'])}</td><td>{name_html}{test}</td>"
                    f"<td class='num'>{_esc(_num(r['value']))}</td><td class='num'>{_esc(_spread(r))}</td>"
                    f"<td class='num'>{_esc(samples_used(r))}</td><td>{gates}</td><td>{_esc(note)}</td></tr>")
    return ("<h2 id='metrics'>Metric tests</h2><table class='overview'><thead><tr><th>result</th>"
            "<th>metric and test</th><th>value</th><th>95% CI / std</th>"
            "<th title='samples the value rests on; used/asked when samples were lost'>n</th>"
            "<th>gate: what was compared</th>"
            f"<th>note</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _metric_section(e: dict[str, Any], anchor: str, plot: str | None, images_dir: Path, plots_dir: Path,
                    report: dict[str, Any]) -> str:
    from pytest_i2i.explain import worst_samples
    from pytest_i2i.report import gate_text
    from pytest_i2i.result import MetricResult

    r = e["result"]
    test = (report.get("tests") or {}).get(e["test"], {})
    lines = []
    for c in e["checks"]:
        verdict = "passed" if c["passed"] else "FAILED"
        lines.append(f"<li><b>gate</b> ({_esc(c.get('gate', ''))}): {_esc(gate_text(c, r, long=True))} "
                     f"→ <span class='{'ok' if c['passed'] else 'bad'}'>{verdict}</span></li>")
    if not e["checks"]:
        why = test.get("reason") if e["outcome"] == "skipped" else "the test computed it without a gate"
        lines.append(f"<li><b>not gated</b>: {_esc(why or 'no gate')}</li>")
    spread = _spread(r)
    lines.append(f"<li><b>value</b> {_esc(_num(r['value'], 6))} ({'higher' if r['higher_is_better'] else 'lower'} "
                 f"is better){'; ' + _esc(_pct(r.get('confidence'))) + ' CI of the mean ' + _esc(spread) if r.get('ci') else (', ' + _esc(spread) if spread else '')}"
                 f"; n = {_esc(samples_used(r))}</li>")
    lines += _lost_samples(r, report)
    if r.get("backbone"):
        calib = "calibrated" if r.get("calibrated", True) else "UNCALIBRATED (smoke test only)"
        lines.append(f"<li><b>backbone</b> {_esc(r['backbone'])}, {calib}, weights sha256 "
                     f"<code>{_esc(str(r.get('weights_sha256'))[:16])}</code></li>")
    if r.get("resize"):
        lines.append(f"<li><b>resize</b> {_esc(r['resize'])}</li>")
    lines += [f"<li class='muted'>warning: {_esc(w)}</li>" for w in r.get("warnings") or []
              if not w.startswith("uncalibrated")]
    body = [f"<ul class='facts-list'>{''.join(lines)}</ul>"]
    if plot:
        body.append(f"<img class='plot' src='plots/{_esc(plot)}' width='600' height='330' "
                    f"alt='distribution of {_esc(r['name'])} per sample'>")
    columns = []
    maps: dict[str, Any] = {}
    vmax = 0.0
    if r.get("per_sample"):
        result = MetricResult.from_dict(r)
        ranked = worst_samples(result, len(result.per_sample))
        worst = ranked[:WORST_SHOWN]
        best = [p for p in reversed(ranked) if p not in worst][:BEST_SHOWN]
        maps = dict(zip(r.get("sample_names") or [], (r.get("extra") or {}).get("maps", [])))
        vmax = max((max(max(row) for row in m) for m in maps.values() if m and m[0]), default=0.0)
        for label, group in (("worst", worst), ("best", best)):
            cards = []
            for rank, (uid, value) in enumerate(group, 1):
                imgs = _sample_images(images_dir, uid)
                if uid in maps:
                    heat = plots_dir / f"{anchor}-{image_path(images_dir, uid, 'heat').name}"
                    _heatmap(heat, image_path(images_dir, uid, "output"), maps[uid], vmax)
                    imgs.append(_figure(f"plots/{heat.name}", f"{r['name']} map"))
                cards.append(f"<div class='card {label}'><div class='cap'><b>{_esc(uid)}</b> "
                             f"{_esc(_num(value, 5))}</div>{''.join(imgs) or '<span class=muted>no images</span>'}"
                             "</div>")
            if cards:
                head = f"worst {len(cards)}" if label == "worst" else f"best {len(cards)}, for contrast"
                columns.append(f"<div class='col'><h4>{head}</h4>{''.join(cards)}</div>")
    if maps:
        body.append(f"<p class='muted'>{_esc(r['name'])} map: the metric's distance at each position over the "
                    f"output, dark 0 to bright "
                    f"{_esc(_num(vmax))} (one scale for every sample of this metric)</p>")
    title = r["name"] + (" (baseline)" if _is_baseline(e) else "")
    samples = f"<div class='samples-col'>{''.join(columns)}</div>" if columns else ""
    return (f"<section class='metric {_esc(e['outcome'])}' id='{anchor}'><h3>{_badge(e['outcome'])} {_esc(title)} "
            f"<small>{_esc(e['test'])}</small></h3><div class='metric-grid'><div>{''.join(body)}</div>{samples}"
            "</div></section>")


def _per_sample_table(entries: list[dict[str, Any]], images_dir: Path) -> str:
    """Samples x per-sample metrics; a cell's class says its rank (worst k red, best green)."""
    from pytest_i2i.explain import worst_samples
    from pytest_i2i.result import MetricResult

    columns: list[tuple[str, dict[str, float], set[str], set[str], bool]] = []
    seen: set[str] = set()
    for e in entries:
        r = e["result"]
        if _is_baseline(e) or not r.get("per_sample") or not r.get("sample_names") or r["name"] in seen:
            continue
        seen.add(r["name"])
        result = MetricResult.from_dict(r)
        ranked = worst_samples(result, len(result.per_sample))
        k = rank_k(len(ranked))
        worst = {uid for uid, _ in ranked[:k]}
        best = {uid for uid, _ in ranked[::-1][:k]} - worst
        columns.append((r["name"], dict(zip(r["sample_names"], result.per_sample)), worst, best,
                        r["higher_is_better"]))
    if not columns:
        return ""
    uids = sorted({uid for _, values, *_ in columns for uid in values})
    head = "".join(f"<th data-type='num' title='{'higher' if hib else 'lower'} is better'>{_esc(name)} "
                   f"{'↑' if hib else '↓'}</th>" for name, _, _, _, hib in columns)
    rows = []
    for uid in uids:
        n_worst = sum(uid in worst for _, _, worst, _, _ in columns)
        cells = []
        for _, values, worst, best, _ in columns:
            v = values.get(uid)
            cls = "w" if uid in worst else ("b" if uid in best else "")
            cells.append(f"<td class='num {cls}' data-v='{_sort_value(v)}'>{_esc(_num(v, 4))}</td>")
        thumb = image_path(images_dir, uid, "output")
        img = (f"<img src='images/{_esc(thumb.name)}' width='56' height='56' alt='' loading='lazy'>"
               if thumb.is_file() else "")
        rows.append(f"<tr data-worst='{n_worst}'><td>{img}</td><td class='uid'>{_esc(uid)}</td>"
                    f"<td class='num' data-v='{n_worst}'>{n_worst}</td>{''.join(cells)}</tr>")
    return (
        "<h2 id='samples'>Per sample</h2><p class='muted'>Click a column to sort. Red: among the "
        f"{rank_k(len(uids))} worst samples of that metric; green: among the {rank_k(len(uids))} best. “worst in” "
        "counts the metrics on which a sample is among the worst.</p><div class='controls'><label>filter "
        "<input id='sample-filter' type='search' placeholder='sample name'></label> <label>worst in at least "
        f"<select id='worst-filter'>{''.join(f'<option>{k}</option>' for k in range(len(columns) + 1))}</select> "
        "metrics</label> <span id='sample-count' class='muted'></span></div>"
        "<table id='sample-table' class='samples'><thead><tr><th>output</th><th data-type='text'>sample</th>"
        f"<th data-type='num'>worst in</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _sort_value(v: Any) -> str:
    if not isinstance(v, (int, float)) or math.isnan(v):
        return ""
    return "1e308" if v == math.inf else ("-1e308" if v == -math.inf else repr(float(v)))


def _baseline_section(report: dict[str, Any], images_dir: Path) -> str:
    """Paired candidate − baseline differences with bootstrap CIs, and the samples that regressed most."""
    from pytest_i2i.metrics.functional.bootstrap import bootstrap_mean_ci

    options = (report.get("session") or {}).get("options") or {}
    if not options.get("baseline"):
        return ""
    by_test: dict[str, dict[str, dict[str, Any]]] = {}
    for e in report.get("metrics") or []:
        by_test.setdefault(e["test"], {}).setdefault("baseline" if _is_baseline(e) else "candidate", e)
    rows, blocks = [], []
    seed = int(options.get("seed") or 0)
    for test, pair in sorted(by_test.items()):
        if "baseline" not in pair or "candidate" not in pair:
            continue
        cand, base = pair["candidate"]["result"], pair["baseline"]["result"]
        better = 1.0 if cand["higher_is_better"] else -1.0
        diffs: dict[str, float] = {}
        if cand.get("per_sample") and base.get("per_sample"):
            cv = dict(zip(cand.get("sample_names") or [], _floats(cand["per_sample"])))
            bv = dict(zip(base.get("sample_names") or [], _floats(base["per_sample"])))
            diffs = {uid: better * (cv[uid] - bv[uid]) for uid in cv if uid in bv}
        finite = [d for d in diffs.values() if math.isfinite(d)]
        if finite:
            lo, hi = bootstrap_mean_ci(finite, confidence=0.95, seed=seed)
            diff = f"{_num(sum(finite) / len(finite))} [{_num(lo)}, {_num(hi)}]"
        else:
            diff = f"{_num(better * (_floats([cand['value']])[0] - _floats([base['value']])[0]))} (by value)"
        checks = pair["candidate"]["checks"]
        verdict = ("<br>".join(f"<span class='{'ok' if c['passed'] else 'bad'}'>{'no regression' if c['passed'] else 'REGRESSION'}"
                               f"</span> (margin {_esc(_num(-c['threshold']))})" for c in checks) or "-")
        rows.append(f"<tr><td>{_esc(cand['name'])} {'↑' if cand['higher_is_better'] else '↓'}</td>"
                    f"<td class='num'>{_esc(_num(base['value']))}</td><td class='num'>{_esc(_num(cand['value']))}</td>"
                    f"<td class='num'>{_esc(diff)}</td><td class='num'>{len(finite) or '-'}</td><td>{verdict}</td>"
                    f"<td class='test'>{_esc(_short_test(test))}</td></tr>")
        worst = sorted((d, uid) for uid, d in diffs.items() if math.isfinite(d) and d < 0)[:WORST_SHOWN]
        if worst:
            cards = []
            for d, uid in worst:
                cv = dict(zip(cand["sample_names"], _floats(cand["per_sample"])))[uid]
                bv = dict(zip(base["sample_names"], _floats(base["per_sample"])))[uid]
                imgs = _sample_images(images_dir, uid, ("input", "baseline", "output", "target"))
                cards.append(f"<div class='card worst'><div class='cap'><b>{_esc(uid)}</b>: baseline {_esc(_num(bv))}"
                             f" → candidate {_esc(_num(cv))} (worse by {_esc(_num(-d))})</div>"
                             f"{''.join(imgs).replace('>output<', '>candidate<')}</div>")
            blocks.append(f"<h3>{_esc(cand['name'])}: the samples that regressed most</h3>"
                          f"<div class='cards'>{''.join(cards)}</div>")
    if not rows:
        return ("<h2 id='baseline'>Candidate vs baseline</h2><p class='muted'>No metric was computed on both the "
                "candidate and the baseline.</p>")
    return ("<h2 id='baseline'>Candidate vs baseline</h2><p class='muted'>Δ: the mean paired improvement of the "
            "candidate over the baseline, per sample (positive: better), with its 95% bootstrap CI.</p>"
            "<table class='overview'><thead><tr><th>metric</th><th>baseline</th><th>candidate</th>"
            "<th>Δ [95% CI]</th><th>pairs</th><th>gate</th><th>test</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{''.join(blocks)}")


def _floats(values: list[Any]) -> list[float]:
    from pytest_i2i.jsonsafe import from_json_safe

    return [float(v) for v in from_json_safe(list(values))]


def _generation_errors(report: dict[str, Any]) -> str:
    errors = report.get("generation_errors") or {}
    if not errors:
        return ""
    items = "".join(f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>" for k, v in errors.items())
    return f"<h2 id='generation-errors'>Generation errors ({len(errors)})</h2><ul>{items}</ul>"


def render_html(report: dict[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` (and its plots) from a merged report; returns the page's path."""
    from pytest_i2i.files import write_text_atomic
    from pytest_i2i.report import summarize

    images_dir = out_dir / "images"
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(report)
    # baseline results are shown next to the candidate's in the baseline section
    summary["rows"] = [row for row in summary["rows"] if row["entry"] is None or not _is_baseline(row["entry"])]
    entries = [row["entry"] for row in sorted(summary["rows"], key=lambda r: (_ORDER.get(r["outcome"], 3),
                                                                           r["metric"], r["test"]))
               if row["entry"] is not None]
    anchors: dict[int, str] = {}
    test_anchors: dict[str, str] = {}
    sections = []
    for i, e in enumerate(entries):
        anchor = _anchor(i, e["result"]["name"])
        anchors[id(e)] = anchor
        test_anchors.setdefault(e["test"], anchor)
        plot = None
        if e["result"].get("per_sample"):
            plot = f"{anchor}.png"
            _distribution_plot(plots_dir / plot, e["result"], e["checks"])
        sections.append(_metric_section(e, anchor, plot, images_dir, plots_dir, report))
    nav = "".join(f"<a href='#{k}'>{v}</a>" for k, v in (
        ("summary", "summary"), ("not-run", "did not run"), ("failures", "failures"), ("metrics", "metric tests"), ("per-metric", "per metric"),
        ("samples", "per sample"), ("baseline", "baseline"), ("generation-errors", "generation errors"))
        if k not in ("failures", "baseline", "generation-errors") or
        (k == "failures" and summary["counts"]["failed"] + summary["counts"]["error"]) or
        (k == "baseline" and ((report.get("session") or {}).get("options") or {}).get("baseline")) or
        (k == "generation-errors" and report.get("generation_errors")))
    options = ((report.get("session") or {}).get("options") or {})
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pytest-i2i report: {_esc(summary['verdict'])}</title>
<style>{_CSS}</style></head><body>
{_summary(report, summary, nav)}
{_failures(report, test_anchors)}
{_overview(summary, anchors)}
<h2 id='per-metric'>Per metric</h2>
{''.join(sections) or "<p class='muted'>No metric was computed.</p>"}
{_per_sample_table(entries, images_dir)}
{_baseline_section(report, images_dir)}
{_generation_errors(report)}
<footer><details><summary>session options</summary><pre>{_esc(json.dumps(options, indent=2, sort_keys=True))}</pre>
</details><p>Data: <a href="i2i-report.json">i2i-report.json</a> ({_esc(report.get('schema', ''))}).</p></footer>
<script>{_JS}</script>
</body></html>
"""
    path = out_dir / "index.html"
    write_text_atomic(path, page)  # a reader never sees half a page; same file mode as i2i-report.json
    return path


_CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--skip:#6e7781;--line:#d0d7de;--bg:#f6f8fa;--ink:#1f2328}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--ink);
 margin:0 auto;max-width:1240px;padding:0 24px 48px}
header.verdict{display:flex;justify-content:space-between;align-items:center;margin:16px 0 12px;padding:14px 20px;
 border-radius:10px;color:#fff;background:var(--skip)}
header.verdict.passed{background:var(--ok)} header.verdict.failed{background:var(--bad)}
header h1{margin:0;font-size:24px} header .sub{margin:2px 0 0;opacity:.9;font-size:14px}
header .big{font-size:30px;font-weight:700;letter-spacing:.04em}
.tiles{display:flex;gap:12px;margin:8px 0 14px}
.tile{flex:1;border:1px solid var(--line);border-radius:8px;padding:8px 14px;background:var(--bg)}
.tile b{display:block;font-size:26px} .tile span{color:#57606a}
.tile.failed b,.tile.errors b{color:var(--bad)} .tile.passed b{color:var(--ok)} .tile.skipped b{color:var(--skip)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:14px 0 8px}
dl.facts dt{font-weight:600;color:#57606a} dl.facts dd{margin:0;overflow-wrap:anywhere}
h2{margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line);font-size:20px}
h3{font-size:16px;margin:0 0 8px} h3 small{font-weight:400;color:#57606a;margin-left:6px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:8px 0;z-index:2}
nav a{margin-right:16px;text-decoration:none;color:#0969da}
ul.notrun{padding-left:20px} ul.notrun li{margin:4px 0}
details summary{cursor:pointer;color:#0969da} pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;
 padding:8px 10px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:13px}
code{font-size:13px;background:var(--bg);padding:0 3px;border-radius:3px}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:6px 10px}
.failure{border-left:4px solid var(--bad);padding-left:10px;margin:10px 0}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);position:sticky;top:38px}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap} td.test{color:#57606a;font-size:13px}
tr.failed td,tr.error td{background:#ffebe9}
.muted{color:#6e7781} .ok{color:var(--ok);font-weight:600} .bad{color:var(--bad);font-weight:600}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;color:#fff;
 background:var(--skip);vertical-align:middle}
.badge.passed,.badge.xpassed{background:var(--ok)} .badge.failed,.badge.error{background:var(--bad)}
section.metric{border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:12px 0}
section.metric.failed{border-color:var(--bad);border-width:2px}
ul.facts-list{margin:0 0 8px;padding-left:18px}
img.plot{max-width:100%;height:auto;display:block;margin:4px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:6px;background:#fff;width:max-content}
.card.worst{border-top:3px solid var(--bad)} .card.best{border-top:3px solid var(--ok)}
.card .cap{font-size:13px;margin-bottom:4px;max-width:240px;overflow-wrap:anywhere}
figure{display:inline-block;margin:0 3px 0 0;text-align:center;vertical-align:top}
figure img{background:#e6e6e6;object-fit:contain;border-radius:3px;display:block}
figcaption{font-size:12px;color:#57606a}
.controls{margin:6px 0 8px} .controls input,.controls select{font:inherit;padding:2px 6px}
table.samples th{cursor:pointer;user-select:none} table.samples th.asc::after{content:" ▲"}
table.samples th.desc::after{content:" ▼"}
table.samples td.w{background:#ffd8d3} table.samples td.b{background:#d6f5dc}
table.samples td img{display:block;border-radius:3px}
footer{margin-top:32px;color:#57606a;font-size:13px}
.metric-grid{display:grid;grid-template-columns:600px 1fr;gap:18px;align-items:start}
.samples-col{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.samples-col .col{display:flex;flex-direction:column;gap:8px;flex:none}
h4{margin:0;font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:#57606a}
table.overview .test{color:#6e7781;font-size:12px}
table.overview tr.nocalc td{padding-top:3px;padding-bottom:3px;color:#57606a}
table.samples td{vertical-align:middle}
@media (max-width:1180px){.metric-grid{grid-template-columns:1fr}}
"""

_JS = """
(function () {
  var table = document.getElementById('sample-table');
  if (!table) { return; }
  var body = table.tBodies[0];
  var filter = document.getElementById('sample-filter');
  var worst = document.getElementById('worst-filter');
  var count = document.getElementById('sample-count');
  function apply() {
    var text = filter.value.trim().toLowerCase();
    var least = parseInt(worst.value, 10) || 0;
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var name = row.querySelector('.uid').textContent.toLowerCase();
      var ok = name.indexOf(text) !== -1 && parseInt(row.dataset.worst, 10) >= least;
      row.style.display = ok ? '' : 'none';
      if (ok) { shown += 1; }
    });
    count.textContent = shown + ' of ' + body.rows.length + ' samples';
  }
  function key(cell, type) {
    if (type === 'num') {
      var v = cell.dataset.v;
      return v === '' || v === undefined ? NaN : parseFloat(v);
    }
    return cell.textContent.toLowerCase();
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    var type = th.dataset.type;
    if (!type) { return; }
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('asc');
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) { o.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a.cells[col], type), y = key(b.cells[col], type);
        if (type === 'num') {
          if (isNaN(x)) { return 1; }
          if (isNaN(y)) { return -1; }
          return asc ? x - y : y - x;
        }
        return asc ? (x < y ? -1 : x > y ? 1 : 0) : (x < y ? 1 : x > y ? -1 : 0);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  filter.addEventListener('input', apply);
  worst.addEventListener('change', apply);
  apply();
})();
"""
