"""The HTML page of a session report (``--i2i-report=DIR`` → ``DIR/index.html``).

Rendered once, from the merged JSON report and the sample images the session exported to
``DIR/images/<uid>__{input,output,target}.png``: a metric table, for each per-sample metric a
grid of its worst samples (input / output / target), the heat maps of metrics that return maps
(``vit_patch_distance``, ``lpips(spatial=True)``) overlaid
on the outputs, and a plot of per-sample values against the thresholds (matplotlib).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from pytest_i2i.explain import WORST_K
from pytest_i2i.report import samples_used

ROLES = ("input", "output", "target")


def image_path(images_dir: Path, uid: str, role: str) -> Path:
    """``images_dir/<uid>__<role>.png``; a uid with characters other than letters, digits, ``-_.``
    has them replaced by ``_`` (and a uid longer than 160 characters is cut there) and gets
    ``-<first 10 hex of sha256(uid)>`` appended, so two uids never share a file (``a/b`` and ``a:b`` would both sanitise to ``a_b``)."""
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


def _heatmap(out: Path, background: Path | None, dist_map: list[list[float]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    m = np.asarray(dist_map, dtype=float)
    fig, ax = plt.subplots(figsize=(3, 3), dpi=80)
    if background is not None and background.is_file():
        img = np.asarray(Image.open(background).convert("RGB"))
        ax.imshow(img)
        ax.imshow(m, cmap="inferno", alpha=0.55, extent=(0, img.shape[1], img.shape[0], 0), interpolation="nearest")
    else:
        ax.imshow(m, cmap="inferno", interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def _value_plot(out: Path, result: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = result.get("per_sample") or []
    fig, ax = plt.subplots(figsize=(4, 2.2), dpi=80)
    ax.hist([v for v in values if isinstance(v, (int, float))], bins=min(20, max(5, len(values))), color="#4c72b0")
    ax.axvline(result["value"], color="black", lw=1, label="mean")
    for c in checks:
        ax.axvline(c["threshold"], color="red" if not c["passed"] else "green", ls="--", lw=1,
                   label=f"{c['op']} {c['threshold']:g}")
    ax.set_title(f"{result['name']}: per-sample values", fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def render_html(report: dict[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` (and its plots) from a merged report; returns the page's path."""
    from pytest_i2i.explain import worst_samples
    from pytest_i2i.result import MetricResult

    images_dir = out_dir / "images"
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    rows, sections = [], []
    for i, e in enumerate(report["metrics"]):
        r = e["result"]
        ci = r.get("ci")
        spread = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else (f"± {r['std']:.4g}" if r.get("std") is not None else "")
        checks = ", ".join(f"{c['op']} {c['threshold']:g}" for c in e["checks"])
        calib = "" if not r.get("backbone") else ("calibrated" if r.get("calibrated") else "<b>UNCALIBRATED</b>")
        rows.append(
            f"<tr class='{esc(e['outcome'])}'><td>{esc(e['test'])}</td><td>{esc(r['name'])}</td>"
            f"<td>{r['value']:.6g}</td><td>{esc(spread)}</td><td>{esc(samples_used(r))}</td><td>{esc(checks)}</td>"
            f"<td>{esc(e['outcome'])}</td><td>{esc(str(r.get('backbone') or '-'))} {calib}</td></tr>"
        )
        if not r.get("per_sample"):
            continue
        result = MetricResult.from_dict(r)
        plot = plots_dir / f"metric{i}.png"
        _value_plot(plot, r, e["checks"])
        cells = []
        maps = dict(zip(r.get("sample_names") or [], (r.get("extra") or {}).get("maps", [])))
        for uid, value in worst_samples(result, WORST_K):
            imgs = "".join(
                f"<figure><img src='images/{image_path(images_dir, uid, role).name}'><figcaption>{role}"
                f"</figcaption></figure>"
                for role in ROLES if image_path(images_dir, uid, role).is_file()
            )
            if uid in maps:
                heat = plots_dir / f"metric{i}_{image_path(images_dir, uid, 'heat').name}"
                _heatmap(heat, image_path(images_dir, uid, "output"), maps[uid], f"{r['name']} {uid}")
                imgs += f"<figure><img src='plots/{heat.name}'><figcaption>{esc(r['name'])} map</figcaption></figure>"
            cells.append(f"<div class='sample'><div>{esc(uid)}: {value:.4g}</div>{imgs}</div>")
        sections.append(
            f"<h2>{esc(r['name'])} <small>({esc(e['test'])})</small></h2>"
            f"<img src='plots/{plot.name}'><h3>worst {len(cells)} samples</h3>{''.join(cells)}"
        )
    status = report.get("status", "complete")
    status_html = ("" if status == "complete" else
                   f"<p><b>run {esc(status)}: only the tests that finished are listed</b></p>\n")
    errors = report.get("generation_errors") or {}
    err_html = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in errors.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>pytest-i2i report</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}} tr.failed{{background:#fdd}}
tr.skipped{{background:#eee}} figure{{display:inline-block;margin:2px}} figure img{{height:128px}}
.sample{{margin:6px 0}}</style></head><body>
<h1>pytest-i2i report</h1>
{status_html}<p>model: {esc(str(report['session'].get('options', {}).get('model')))};
dataset: {esc(str(report['session'].get('dataset', {}).get('description', '')))}</p>
<table><tr><th>test</th><th>metric</th><th>value</th><th>95% CI / std</th><th>n</th><th>threshold</th>
<th>outcome</th><th>backbone</th></tr>{''.join(rows)}</table>
{'<h2>generation errors</h2><ul>' + err_html + '</ul>' if err_html else ''}
{''.join(sections)}
</body></html>
"""
    path = out_dir / "index.html"
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a page
    return path
