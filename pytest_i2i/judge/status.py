"""The live status of a study: per rater, between raters, and which metric agrees with them so far.

- per rater: judgments made of those scheduled; agreement with gold items (2AFC credit: 1 for the
  known answer, ½ for "can't tell"/"tie"/"both bad", 0 otherwise); self-consistency (the fraction of
  repeated tasks answered the same both times, the sides having been swapped); for choices the
  fraction of left answers among left/right ones (position bias shows up here);
- between raters: Krippendorff's α so far (:func:`pytest_i2i.validation.functional.agreement.krippendorff_alpha`
  on the first showings; nominal and interval for choices, interval and ordinal for ratings) and, for
  choices, the pairwise rater agreement per task (2AFC credit x·y + (1−x)(1−y) averaged over pairs of
  raters): the human ceiling a metric's 2AFC score compares with;
- the current metric ranking with CIs: :func:`pytest_i2i.validation.correlate.correlate` on the folder
  as :func:`pytest_i2i.load_judgments` reads it, with metrics computed once per task on its images
  (:class:`MetricRanking`).

Nothing here returns NaN: an undefined number is ``None`` with a reason.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_i2i.errors import I2IError
from pytest_i2i.judge.records import Judgment, parse_item
from pytest_i2i.judge.tasks import ROLES, TaskSet

UNSURE = ("cant_tell", "tie", "both_bad")


def default_metrics() -> list[str]:
    """The live ranking's metrics: the registry's weight-free paired metrics that the correlation engine
    computes on images (no weights file needed, so the ranking works on any machine)."""
    from pytest_i2i.metrics.registry import list_metrics
    from pytest_i2i.validation.correlate import computable_metrics

    computable = computable_metrics()
    return [m for m in list_metrics(kind="paired", needs_weights=False) if m in computable]


def _credit(x: float, y: float) -> float:
    return x * y + (1 - x) * (1 - y)


def rater_summaries(tasks: TaskSet, judgments: Sequence[Judgment]) -> dict[str, dict[str, Any]]:
    """Per rater: ``n``, ``total``, ``gold``, ``self_consistency`` and (choices) ``left_rate``."""
    by_rater: dict[str, list[Judgment]] = {}
    for j in judgments:
        by_rater.setdefault(j.rater, []).append(j)
    total = tasks.n_slots()
    out: dict[str, dict[str, Any]] = {}
    for rater, js in sorted(by_rater.items()):
        entry: dict[str, Any] = {"n": len(js), "total": total}
        gold = [j for j in js if tasks.items[j.task].get("gold")]
        if gold:
            credit = [1.0 if j.outcome == tasks.items[j.task]["gold"] else 0.5 if j.outcome in UNSURE else 0.0
                      for j in gold]
            entry["gold"] = {"n": len(gold), "agreement": sum(credit) / len(credit),
                             "n_unsure": sum(j.outcome in UNSURE for j in gold)}
        else:
            entry["gold"] = {"n": 0, "agreement": None, "reason": "no gold item answered yet"}
        first = {j.task: j for j in js if j.occurrence == 1}
        pairs = [(first[j.task], j) for j in js if j.occurrence == 2 and j.task in first]
        if pairs:
            same = [a.outcome == b.outcome if tasks.kind in ROLES else a.value == b.value for a, b in pairs]
            entry["self_consistency"] = {"n_pairs": len(pairs), "agreement": sum(same) / len(same)}
            if tasks.kind == "rating":
                entry["self_consistency"]["mean_abs_difference"] = sum(abs(a.value - b.value)
                                                                       for a, b in pairs) / len(pairs)
        else:
            entry["self_consistency"] = {"n_pairs": 0, "agreement": None, "reason": "no repeated task answered twice yet"}
        if tasks.kind in ROLES:
            sides = [_side(tasks, j) for j in js if j.outcome in ROLES[tasks.kind]]
            entry["left_rate"] = sum(s == "left" for s in sides) / len(sides) if sides else None
        out[rater] = entry
    return out


def _side(tasks: TaskSet, j: Judgment) -> str:
    left = tasks.items[j.task]["left"]
    shown_left = left if j.occurrence == 1 else next(r for r in ROLES[tasks.kind] if r != left)
    return "left" if j.outcome == shown_left else "right"


def agreement_so_far(tasks: TaskSet, judgments: Sequence[Judgment]) -> dict[str, Any]:
    """Krippendorff's α on first showings (raters × tasks) and, for choices, the pairwise rater agreement."""
    import numpy as np

    from pytest_i2i.validation.functional.agreement import krippendorff_alpha

    first = [j for j in judgments if j.occurrence == 1]
    raters = sorted({j.rater for j in first})
    task_ids = sorted({j.task for j in first})
    out: dict[str, Any] = {"n_raters": len(raters), "n_tasks": len(task_ids)}
    levels = ("nominal", "interval") if tasks.kind in ROLES else ("interval", "ordinal")
    alpha: dict[str, Any] = {}
    if len(raters) < 2:
        alpha = {lvl: None for lvl in levels}
        alpha["reason"] = "fewer than 2 raters so far"
    else:
        mat = np.full((len(raters), len(task_ids)), np.nan)
        ri, ti = {r: k for k, r in enumerate(raters)}, {t: k for k, t in enumerate(task_ids)}
        for j in first:
            mat[ri[j.rater], ti[j.task]] = j.value
        for lvl in levels:
            try:
                alpha[lvl] = krippendorff_alpha(mat, lvl)
            except I2IError as e:
                alpha[lvl] = None
                alpha[f"{lvl}_reason"] = str(e)
    out["krippendorff_alpha"] = alpha
    if tasks.kind in ROLES:
        per_task: dict[str, list[float]] = {}
        for j in first:
            per_task.setdefault(j.task, []).append(j.value)
        scores = [float(np.mean([_credit(x, y) for x, y in itertools.combinations(v, 2)]))
                  for v in per_task.values() if len(v) >= 2]
        out["rater_agreement"] = ({"value": float(np.mean(scores)), "n_tasks": len(scores)} if scores else
                                  {"value": None, "n_tasks": 0, "reason": "no task judged by 2 or more raters yet"})
    return out


class MetricRanking:
    """Which metric agrees with the raters so far: metric values are computed once per task on the
    folder's images, then joined to every judgment of that task and handed to the correlation engine."""

    def __init__(self, out: str | Path, tasks: TaskSet, metrics: Sequence[str] | None = None, *,
                 n_resamples: int = 1000, seed: int = 0, weights: str | None = None,
                 locked: Callable[[Callable[[], Any]], Any] | None = None):
        """``locked(fn)`` runs ``fn`` while no judgment is being written (a server passes its store's lock)."""
        from pytest_i2i.errors import I2IInputError
        from pytest_i2i.validation.correlate import computable_metrics

        metrics = default_metrics() if metrics is None else list(metrics)
        computable = computable_metrics()
        unknown = [m for m in metrics if m not in computable]
        if unknown:
            raise I2IInputError(f"metrics {unknown} cannot be computed on a study's images; computable: "
                                + ", ".join(computable))
        self.out = Path(out)
        self.tasks = tasks
        self.metrics = list(metrics)
        self.n_resamples = n_resamples
        self.seed = seed
        self.weights = weights
        self._locked = locked or (lambda fn: fn())
        self._task_scores: list[Any] | None = None
        self._skipped: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._cache: tuple[int, dict[str, Any]] | None = None

    def _task_set(self) -> Any:
        import pandas as pd

        from pytest_i2i.judge.store import IMAGES_DIR
        from pytest_i2i.validation.judgments.format import CHOICE_COLUMNS, RATING_COLUMNS, JudgmentSet

        t = self.tasks
        if t.kind in ROLES:
            r0, r1 = ROLES[t.kind]
            rows = [{"item": i, "reference": it.get("reference") or it.get("input"), "p0": it[r0], "p1": it[r1],
                     "h": 0.5, "n_judges": None} for i, it in t.items.items()]
            table = pd.DataFrame.from_records(rows, columns=CHOICE_COLUMNS)
        else:
            rows = [{"item": i, "model": it.get("model", ""), "rater": "", "criterion": "", "score": 0.0,
                     "image": it["image"], "reference": it.get("reference") or it.get("input")}
                    for i, it in t.items.items()]
            table = pd.DataFrame.from_records(rows, columns=RATING_COLUMNS)
        return JudgmentSet(name=t.name, kind=t.kind, table=table, root=self.out, images_root=self.out / IMAGES_DIR)

    def task_scores(self) -> tuple[list[Any], list[dict[str, str]]]:
        """``(MetricScores keyed by (task, p0/p1 or model), skipped)``, computed on first use."""
        from pytest_i2i.validation.correlate import compute_metric_scores

        with self._lock:
            if self._task_scores is None:
                self._task_scores, self._skipped = compute_metric_scores(self._task_set(), self.metrics,
                                                                         weights=self.weights)
            return self._task_scores, self._skipped

    def compute(self, n_records: int | None = None) -> dict[str, Any]:
        """The ranking now (cached while ``n_records`` is unchanged): ``{"rows": [...], "skipped", "ceiling"}``."""
        from pytest_i2i.validation.correlate import MetricScores, correlate
        from pytest_i2i.validation.judgments import load_judgments

        if n_records is not None and self._cache is not None and self._cache[0] == n_records:
            return self._cache[1]
        try:
            js = self._locked(lambda: load_judgments(self.out))
        except I2IError as e:
            return {"rows": [], "reason": f"no judgment set to rank on yet ({e})"}
        scores, skipped = self.task_scores()
        kind = self.tasks.kind
        mapped = []
        for m in scores:
            if m.level != "item":
                mapped.append(m)
                continue
            values: dict[tuple[str, str], float] = {}
            if kind in ROLES:
                for item in js.table["item"]:
                    task, _, _ = parse_item(kind, item)
                    for role in ("p0", "p1"):
                        if (task, role) in m.values:
                            values[(item, role)] = m.values[(task, role)]
            else:
                for item, model, rater in zip(js.table["item"], js.table["model"], js.table["rater"]):
                    task, _, _ = parse_item(kind, item, rater or "?")
                    if (task, model) in m.values:
                        values[(item, model)] = m.values[(task, model)]
            mapped.append(MetricScores(m.name, values, m.higher_is_better, m.calibrated, m.source, m.level,
                                       m.warnings))
        if not mapped:
            return {"rows": [], "skipped": skipped, "reason": "no metric could be computed on the study's images"}
        report = correlate([js], mapped, n_resamples=self.n_resamples, seed=self.seed)
        by_key = {(r["metric"], r["criterion"], r["level"]): r for r in report["results"]}
        rows = []
        for group in report["ranking"]:
            for o in group["order"]:
                r = by_key[(o["metric"], group["criterion"], group["level"])]
                est = r["two_afc"] if r["level"] == "2afc" else r["correlations"]["spearman"]
                rows.append({"metric": o["metric"], "criterion": group["criterion"], "level": group["level"],
                             "by": group["by"], "value": est["value"], "ci": est["ci"], "n": r["n"],
                             "calibrated": r.get("calibrated", True)})
        undefined = [{"metric": p["metric"], "level": p["level"], "reason": p["reason"]} for p in report["problems"]]
        result = {"rows": rows, "undefined": undefined, "skipped": skipped, "n_records": int(len(js.table)),
                  "n_resamples": self.n_resamples}
        if n_records is not None:
            self._cache = (n_records, result)
        return result


def study_status(tasks: TaskSet, judgments: Sequence[Judgment], *, ranking: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Everything the status view shows, as strict-JSON-able data."""
    status: dict[str, Any] = {
        "name": tasks.name, "kind": tasks.kind, "n_tasks": len(tasks.items), "n_repeats": len(tasks.repeats),
        "n_gold": sum(1 for it in tasks.items.values() if it.get("gold")), "n_slots_per_rater": tasks.n_slots(),
        "n_judgments": len(judgments), "raters": rater_summaries(tasks, judgments),
        "agreement": agreement_so_far(tasks, judgments),
    }
    if ranking is not None:
        status["ranking"] = ranking
    return status


def read_study(out: str | Path) -> tuple[TaskSet, list[Judgment], list[str]]:
    """A study's output folder as ``(tasks, judgments, warnings)``, without writing to it (an unfinished
    last line, a write in progress, is left out)."""
    from pytest_i2i.judge.records import DATA_NAME, decode_row, read_rows
    from pytest_i2i.judge.tasks import load_tasks

    folder = Path(out)
    tasks = load_tasks(folder, check_files=False)
    rows, torn = read_rows(folder / DATA_NAME)
    judgments = [decode_row(tasks, row, f"{folder / DATA_NAME}, line {line}") for line, row in rows]
    warnings = [f"an unfinished last line ({len(torn)} bytes) is being written or was cut by a crash"] if torn else []
    return tasks, judgments, warnings


