"""Collect your own human judgments: task manifests, a local judging page, durable storage, live status.

A study is three steps (``i2i judge make|serve|status``):

1. :mod:`~pytest_i2i.judge.make` writes a task folder (``tasks.json`` + the images): pairwise A/B of
   two models' outputs, 2AFC triplets, single outputs to rate on a declared scale, and controlled
   perturbations with known answers as gold / attention items. Sides are drawn with a seed and recorded.
2. :class:`~pytest_i2i.judge.server.JudgeServer` serves the page on 127.0.0.1 (standard library only) to
   several raters at once; :class:`~pytest_i2i.judge.store.JudgmentStore` appends every answer, fsync'd,
   to a judgment set in the project's format (``judgments.toml`` + ``judgments.jsonl``), which
   :func:`pytest_i2i.load_judgments`, ``i2i validate`` and ``suites/validation`` read as it grows.
3. :func:`~pytest_i2i.judge.status.study_status`: per-rater counts, gold agreement, self-consistency,
   Krippendorff's α so far and the current metric ranking with CIs.

Example:
    >>> from pytest_i2i.judge import JudgeServer, make_perturbation_2afc   # doctest: +SKIP
    >>> make_perturbation_2afc("study/", n_images=4)                       # doctest: +SKIP
    >>> JudgeServer("study/", "judged/", port=8765).serve_forever()         # doctest: +SKIP
"""

from pytest_i2i.judge.make import make_2afc, make_pairwise, make_perturbation_2afc, make_rating
from pytest_i2i.judge.records import Judgment
from pytest_i2i.judge.server import JudgeServer
from pytest_i2i.judge.status import MetricRanking, read_study, study_status
from pytest_i2i.judge.store import JudgmentStore
from pytest_i2i.judge.tasks import Scale, Slot, TaskSet, load_tasks

__all__ = [
    "JudgeServer", "Judgment", "JudgmentStore", "MetricRanking", "Scale", "Slot", "TaskSet", "load_tasks",
    "make_2afc", "make_pairwise", "make_perturbation_2afc", "make_rating", "read_study", "study_status",
]
