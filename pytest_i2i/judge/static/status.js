// The live status page: polls /api/status every 5 s; the metric ranking is computed on request.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const fmt = (v, d = 3) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(d));
  const pct = (v) => (v === null || v === undefined ? "n/a" : Math.round(100 * v) + "%");

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function card(n, t) {
    const d = document.createElement("div");
    d.className = "stat";
    const a = document.createElement("div");
    a.className = "n";
    a.textContent = n;
    const b = document.createElement("div");
    b.className = "t";
    b.textContent = t;
    d.append(a, b);
    return d;
  }

  function render(s) {
    $("study-name").textContent = s.name;
    document.title = s.name + " · status";
    const cards = $("cards");
    cards.textContent = "";
    cards.append(
      card(s.n_judgments, "judgments"),
      card(Object.keys(s.raters).length, "raters"),
      card(s.n_slots_per_rater, "items per rater"),
      card(s.n_gold + " / " + s.n_repeats, "gold / repeated items"),
    );
    const body = $("raters").querySelector("tbody");
    body.textContent = "";
    for (const [name, r] of Object.entries(s.raters)) {
      const tr = document.createElement("tr");
      const g = r.gold;
      const c = r.self_consistency;
      tr.append(
        cell(name),
        cell(r.n + " / " + r.total),
        cell(g.agreement === null ? "n/a" : pct(g.agreement) + " of " + g.n, g.agreement !== null && g.agreement < 0.75 ? "warn" : ""),
        cell(c.agreement === null ? "n/a" : pct(c.agreement) + " of " + c.n_pairs, c.agreement !== null && c.agreement < 0.6 ? "warn" : ""),
        cell(r.left_rate === undefined || r.left_rate === null ? "n/a" : pct(r.left_rate)),
      );
      body.append(tr);
    }
    const a = s.agreement;
    const rows = $("agreement").querySelector("tbody");
    rows.textContent = "";
    const line = (name, value, note) => {
      const tr = document.createElement("tr");
      tr.append(cell(name), cell(value), cell(note || "", "note"));
      rows.append(tr);
    };
    const plural = (n, w) => n + " " + w + (n === 1 ? "" : "s");
    const ka = a.krippendorff_alpha;
    for (const [k, v] of Object.entries(ka)) {
      if (k.endsWith("reason")) continue;
      line("Krippendorff's α (" + k + ")", fmt(v),
        v === null ? ka[k + "_reason"] || ka.reason : plural(a.n_raters, "rater") + ", " + plural(a.n_tasks, "item"));
    }
    if (a.rater_agreement) {
      const ra = a.rater_agreement;
      line("two raters agree on an item", fmt(ra.value),
        ra.value === null ? ra.reason : "over " + plural(ra.n_tasks, "item") + "; the ceiling for a metric's 2AFC score");
    }
    $("warnings").textContent = (s.warnings || []).join(" ");
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  }

  function renderRanking(rk) {
    const t = $("ranking");
    const body = t.querySelector("tbody");
    body.textContent = "";
    if (!rk.rows.length) {
      t.hidden = true;
      $("ranking-extra").textContent = rk.reason || "no metric has a value yet";
      return;
    }
    rk.rows.forEach((r, i) => {
      const tr = document.createElement("tr");
      tr.append(
        cell(String(i + 1)),
        cell(r.metric + (r.calibrated ? "" : " (uncalibrated)")),
        cell(r.level + " · " + r.by),
        cell(fmt(r.value)),
        cell(r.ci ? "[" + fmt(r.ci[0]) + ", " + fmt(r.ci[1]) + "]" : "n/a"),
        cell(String(r.n)),
      );
      body.append(tr);
    });
    t.hidden = false;
    const notes = [];
    for (const u of rk.undefined || []) notes.push(u.metric + ": " + u.reason);
    for (const k of rk.skipped || []) notes.push(k.metric + " skipped: " + k.reason);
    $("ranking-extra").textContent = notes.join("; ");
  }

  async function refresh(ranking) {
    const res = await fetch("/api/status" + (ranking ? "?ranking=1" : ""), { cache: "no-store", credentials: "same-origin" });
    const data = await res.json();
    if (!res.ok) {
      $("updated").textContent = data.error;
      return;
    }
    render(data);
    if (data.ranking) renderRanking(data.ranking);
  }

  $("rank").addEventListener("click", async () => {
    $("rank").disabled = true;
    $("rank-note").textContent = "computing the metrics on the study's images…";
    try {
      await refresh(true);
      $("rank-note").textContent = "as of " + new Date().toLocaleTimeString();
    } finally {
      $("rank").disabled = false;
    }
  });
  refresh(false);
  setInterval(() => refresh(false).catch(() => { $("updated").textContent = "server unreachable"; }), 5000);
})();
