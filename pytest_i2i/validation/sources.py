"""Turn ``i2i validate`` inputs (paths, task names, built-in set names) into judgment sets and scores.

A path is, by its files:

- a judgment set: a manifest, or a folder in a native layout (ImagenHub rater TSVs, BAPPS, NIGHTS,
  TID2013, KADID-10k, GenAI-Bench ``<judge>/pairwise.jsonl``, TIFA's annotations JSON);
- scores: a score file or ``<model>.json`` folder (VIEScore's autometrics), or a VIEScore judge task
  folder ``<model>/{SC,PQ}.json``;
- a root holding one such folder per task (``ImagenHub_human_eval_results/``, ``results_gpt4o_0shot/``,
  ``results_autometrics/``): the tasks are chosen with ``tasks`` (all tasks of the human root when
  none is given); a task that is not there is an error listing the tasks that are.

Scores are bound to the judgment set of the same task (folder name); with one judgment set, every
score belongs to it. A score folder that matches no set is an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments import LAYOUTS, is_judgment_path, load_judgments, load_scores, viescore
from pytest_i2i.validation.judgments import scores as S
from pytest_i2i.validation.judgments.format import JudgmentSet
from pytest_i2i.validation.judgments.scores import MetricScores


def _is_score_folder(p: Path) -> bool:
    return viescore.detect(p) or (p.is_dir() and S.detect(p))


def _kind(p: Path) -> str:
    if is_judgment_path(p):
        return "set"
    if viescore.detect(p):
        return "judge"
    if S.detect(p):
        return "scores"
    if viescore.task_folders(p, is_judgment_path):
        return "set-root"
    if viescore.task_folders(p, _is_score_folder):
        return "score-root"
    raise JudgmentError(f"{p}: neither a judgment set nor precomputed scores. Recognised judgment layouts: " + "; ".join(LAYOUTS)
                        + f". Recognised score layouts: {S.LAYOUT}; {viescore.LAYOUT}; or a root with one such "
                          "folder per task (select tasks with --task)")


def _load_scores(p: Path, kind: str, directions: Mapping[str, bool] | None, binding: str | None,
                 judge: str | None = None) -> list[MetricScores]:
    if kind == "judge":
        return [viescore.load_judge(p, name=judge, binding=binding)]
    return load_scores(p, directions=directions).metric_scores(binding=binding)


def resolve_inputs(paths: Sequence[str | os.PathLike], *, tasks: Sequence[str] = (),
                   directions: Mapping[str, bool] | None = None, allow_outside_root: bool = False,
                   tasks_elsewhere: bool = False) -> tuple[list[JudgmentSet], list[MetricScores]]:
    """Judgment sets and scores from ``paths`` (see the module docstring).

    ``tasks_elsewhere``: the tasks also select something else (a built-in set), so paths without a
    root simply ignore them instead of raising.

    Raises:
        JudgmentError: a path that does not exist or is not recognised (listing the layouts), an
            unknown task (listing the tasks), a score folder matching no judgment set.
    """
    kinds = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise JudgmentError(f"{p}: does not exist")
        kinds.append((p, _kind(p)))
    roots = [p for p, k in kinds if k.endswith("-root")]
    if tasks and not roots and tasks_elsewhere:
        tasks = ()
    if tasks and not roots:
        raise JudgmentError("--task selects tasks under root folders (e.g. ImagenHub_human_eval_results/, "
                            "results_gpt4o_0shot/); none of the paths is one")
    set_roots = [p for p, k in kinds if k == "set-root"]
    chosen = list(tasks)
    if roots and not chosen:
        if not set_roots:
            raise JudgmentError("score roots need a human root (one folder per task) or --task")
        chosen = [viescore.task_name(f) for f in viescore.task_folders(set_roots[0], is_judgment_path).values()]
    set_paths: list[Path] = []
    score_paths: list[tuple[Path, str, str | None]] = []  # (folder, kind, judge name)
    for p, k in kinds:
        if k == "set":
            set_paths.append(p)
        elif k in ("judge", "scores"):
            score_paths.append((p, k, None))
        elif k == "set-root":
            set_paths += [viescore.task_folder(p, t, is_judgment_path) for t in chosen]
        else:
            judge = p.name[len("results_"):] if p.name.startswith("results_") else p.name
            for t in chosen:
                f = viescore.task_folder(p, t, _is_score_folder)
                score_paths.append((f, "judge" if viescore.detect(f) else "scores", judge))
    if not set_paths:
        raise JudgmentError("no judgment set among the paths given: " + ", ".join(str(p) for p in paths))
    sets = [load_judgments(p, allow_outside_root=allow_outside_root) for p in set_paths]
    names = [js.name for js in sets]
    if len(set(names)) != len(names):
        raise JudgmentError(f"two judgment sets share a name: {names}")
    by_folder = {p.name: js.name for p, js in zip(set_paths, sets)}
    metrics: list[MetricScores] = []
    for p, k, judge in score_paths:
        if len(sets) == 1:
            binding = sets[0].name
        elif p.name in by_folder:
            binding = by_folder[p.name]
        else:
            raise JudgmentError(f"{p}: which judgment set do these scores belong to? Its folder name matches none "
                                f"of the sets' folders ({', '.join(by_folder)})")
        metrics += _load_scores(p, k, directions, binding, judge)
    return sets, metrics
