"""The metrics a sensitivity run measures, derived from the metric registry.

* every registered ``paired`` metric of two images (its ``MetricSpec.args`` hold two image roles),
  and each of its extra poolings (``MetricSpec.pooled``) as ``<name>_<pool>`` (e.g.
  ``vit_patch_distance_max``, the max of the patch-distance map);
* every ``set`` / ``single-set`` metric that declares a ``statistic`` on a backbone ``feature``
  (the permutation test recomputes it on relabelled feature rows, so it must be cheap).

A paired metric with a ``kernel`` is computed from it (on image batches, or on the backbone
features computed once per image); one without (a user's own, or LPIPS and DISTS, whose feature
maps are compared at full resolution) is called as a function on the original and its copies,
with the loaded backbone, once per image for all its poolings. Metrics of texts (CLIPScore, the
CLIP direction) and label maps have no place here: a local edit of an image has no text counterpart.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_i2i.metrics.registry import MetricSpec, metric_specs

IMAGE_ROLES = ("outputs", "targets", "inputs")


@dataclass(frozen=True)
class EngineMetric:
    """One measured quantity: a registered metric, or one of its extra poolings.

    Attributes:
        name: the measured name (the metric's, or ``<metric>_<pool>``).
        spec: the registered metric.
        kind: ``"paired"`` (scores per copy, detection AUROC) or ``"set"`` (permutation test).
        pool: the per-pair value used: ``"value"`` or a name from ``spec.pooled``.
    """

    name: str
    spec: MetricSpec
    kind: str
    pool: str = "value"

    @property
    def similarity(self) -> bool:
        """Larger values mean more similar images (the AUROC is computed on the negation)."""
        return self.spec.higher_is_better

    @property
    def backbone(self) -> str | None:
        return self.spec.backbone

    @property
    def feature(self) -> str | None:
        return self.spec.feature

    @property
    def min_size(self) -> int:
        return self.spec.min_size

    @property
    def note(self) -> str:
        if self.pool != "value":
            return f"{self.pool} of {self.spec.name}'s per-pair values ({self.spec.name}'s extra[{self.pool!r}])"
        if self.kind == "set":
            return f"{self.spec.name}'s statistic on the whole sets ({_ref(self.spec.statistic)})"
        return ""


def _ref(ref: object) -> str:
    return ref if isinstance(ref, str) else getattr(ref, "__qualname__", repr(ref))


def _is_image_pair(spec: MetricSpec) -> bool:
    return len(spec.args) == 2 and all(role in IMAGE_ROLES for role in spec.args) and not spec.required


def engine_metrics() -> dict[str, EngineMetric]:
    """Every measurable metric by name: paired ones first, then set ones (each group by name)."""
    paired: list[EngineMetric] = []
    sets: list[EngineMetric] = []
    for spec in metric_specs():
        if spec.kind == "paired" and _is_image_pair(spec):
            paired.append(EngineMetric(spec.name, spec, "paired"))
            paired += [EngineMetric(f"{spec.name}_{pool}", spec, "paired", pool) for pool in spec.pooled]
        elif (spec.kind in ("set", "single-set") and spec.statistic is not None and spec.feature
              and spec.backbone and not spec.required):
            sets.append(EngineMetric(spec.name, spec, "set"))
    return {m.name: m for m in paired + sets}


def available_metrics() -> list[str]:
    """Names of every metric the engine measures, paired first."""
    return list(engine_metrics())
