"""The sensitivity engine: which metrics notice small local edits, and which ignore nuisances?

For every image, every operation of :data:`pytest_i2i.perturb.OPS` (at its clearly visible
default magnitude) is applied inside a seeded region (default an ellipse) of each area in
:data:`AREAS_PERCENT`, ``repeats`` times with different regions; every nuisance of
:data:`pytest_i2i.perturb.NUISANCES` is applied once. Then:

The metrics come from the metric registry (:mod:`.metrics`): every registered paired metric of two
images, with each of its extra poolings (``vit_patch_distance_max``), and every set metric that
declares a ``statistic`` on a backbone ``feature``.

* **Paired metrics** (l1, psnr, ssim, ms_ssim, ciede2000, dino_image, vit_patch_distance,
  vit_patch_distance_max, clip_image, ...) score each image against each of its copies. The
  detection AUROC of an (operation, area) cell is
  :func:`~pytest_i2i.validation.functional.detection.detection_auroc` of the edited copies'
  scores (``n_images x repeats``) against all nuisance copies' scores (``n_images x 4``),
  sign-aware (a similarity's negation is the score), ties counted 1/2.
* **Set-level metrics** (fid, kid, inception_score, fd_vit, cmmd) compare the set of originals
  with the set of edited copies (repeat 0) and with each nuisance set. Significance: the
  paired permutation test of
  :func:`~pytest_i2i.validation.functional.detection.permutation_test`: for each image, its
  original and its edited copy swap sets with probability 1/2 (all ``2**n`` swaps enumerated
  when ``2**n <= n_permutations``), the statistic recomputed, one-sided p-value. Statistics:
  each metric's ``MetricSpec.statistic``: FID / FD-ViT = Fréchet distance of the features (in its
  exact low-rank form, :func:`~pytest_i2i.metrics.functional.frechet.frechet_distance_features`), KID = unbiased polynomial-kernel MMD² on the whole sets
  (one "subset" of all images), IS = ``|IS(edited) - IS(originals)|`` (one split), CMMD = RBF
  MMD² x 1000 of normalised CLIP embeddings.

Each backbone is loaded once; all copies of an image go through it in batches, once. With
``weights="random"`` every backbone metric is labelled ``uncalibrated`` (tables, figures and the
statement). Nothing here assumes which metric is better: the statement is computed from the
numbers (the smallest area at which a paired metric reaches AUROC >= 0.9, or at which a set
metric's permutation test rejects at ``alpha``).

The package has one module per job: :mod:`.metrics` (the measured metrics, from the registry),
:mod:`.engine` (:func:`run_sensitivity`), :mod:`.result` (:class:`SensitivityResult`),
:mod:`.statement` (the computed statement) and :mod:`.outputs` (files and figures).
"""

from pytest_i2i.validation.sensitivity.engine import AREAS_PERCENT, edit_seed, run_sensitivity
from pytest_i2i.validation.sensitivity.metrics import EngineMetric, available_metrics, engine_metrics
from pytest_i2i.validation.sensitivity.outputs import plot, write_outputs
from pytest_i2i.validation.sensitivity.result import (
    AUROC_TARGET, CALIBRATED, UNCALIBRATED, WEIGHT_FREE, SensitivityResult,
)
from pytest_i2i.validation.sensitivity.statement import build_statement

__all__ = [
    "AREAS_PERCENT", "AUROC_TARGET", "CALIBRATED", "UNCALIBRATED", "WEIGHT_FREE", "EngineMetric", "SensitivityResult",
    "available_metrics", "build_statement", "edit_seed", "engine_metrics", "plot", "run_sensitivity", "write_outputs",
]
