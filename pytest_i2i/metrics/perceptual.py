"""Learned perceptual distances of image pairs: LPIPS (Zhang et al. 2018), DISTS (Ding et al. 2020)
and DreamSim (Fu et al. 2023).

DreamSim compares per-image embeddings (its encoder is a backbone like CLIP's, resizing images
to 224 px; :func:`dreamsim` goes through the shared feature path with :func:`dreamsim_kernel`).
LPIPS and DISTS compare each pair at its own resolution (no resize to a network input size): the images
of a pair are brought to the same size with the project's declared ``resize`` (the second image
to the first's size, a warning naming the pair), consecutive pairs of equal size run through the
trunk together (:func:`paired_trunk_metric`), and the learned head turns the two images' tapped
feature maps into one distance per pair (maths in :mod:`pytest_i2i.metrics.functional.perceptual`).

* Trunks: the backbones ``lpips-alex`` / ``lpips-vgg`` / ``lpips-squeeze`` and ``dists-vgg16``
  (:mod:`pytest_i2i.backbones.perceptual`), weights = torchvision's published ImageNet files,
  found by the usual resolution order; ``weights="random"`` gives a seeded random trunk.
* Heads: LPIPS' linear layers v0.1 (BSD-2-Clause, Richard Zhang et al.) and DISTS' α/β (MIT,
  Keyan Ding), each one small published file with a recorded sha256, found in this order: the
  file given (``lin_weights=`` / ``alpha_beta=``), the installed reference package
  (``lpips/weights/v0.1/<net>.pth``, ``DISTS_pytorch/weights.pt``), torchmetrics' copy, then the
  usual order (weights dir, torch hub cache, download from the reference repository at a pinned
  commit). A result is calibrated only when the trunk and the head are the published files.

Conventions (those of the ``lpips`` and ``DISTS_pytorch`` packages and of torchmetrics):

* inputs are canonical images in [0, 1] (``value_range=(-1, 1)`` maps tanh outputs); LPIPS
  scales them to [-1, 1] and then by its own shift/scale constants (torchmetrics'
  ``normalize=True`` on [0, 1] input, or ``normalize=False`` on [-1, 1] input); DISTS
  normalises with ImageNet's mean and std and also compares the [0, 1] images themselves;
* no resize to a fixed size (the ``lpips`` package and torchmetrics do none; DISTS' optional
  "resize to 256" and piq's automatic one are not applied);
* eval mode, no dropout; distances in float32 like the references, reported in float64.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.backbones.perceptual import DISTS_BACKBONE, LPIPS_BACKBONES
from pytest_i2i.backbones.weights import PretrainedCfg, ResolvedWeights, WeightsFile, resolve_weights
from pytest_i2i.distributed import map_shards
from pytest_i2i.errors import I2IInputError, UnknownNameError, WeightsNotFound
from pytest_i2i.images.imageset import as_pairs, iter_pair_batches
from pytest_i2i.images.resize import check_resize_mode
from pytest_i2i.metrics.base import (
    backbone_fields, frontend, paired_feature_metric, per_sample_result, resolve_backbone, timed,
)
from pytest_i2i.metrics.functional import perceptual as F
from pytest_i2i.metrics.registry import DEFAULT_BATCH_SIZE, DEFAULT_CONFIDENCE, DEFAULT_N_RESAMPLES, DEFAULT_SEED
from pytest_i2i.result import MetricResult

LPIPS_VERSION = "0.1"
_LPIPS_COMMIT = "c33f89e9f46522a584cf41d8880eb0afa982708b"  # richzhang/PerceptualSimilarity, last change of the files
_DISTS_COMMIT = "da720e8aba80f2addfb25400d522e630a135416d"  # dingkeyan93/DISTS, last change of weights.pt

#: LPIPS v0.1 linear layers: the files of richzhang/PerceptualSimilarity (identical in the ``lpips``
#: package on PyPI and in torchmetrics); sha256 and size of the repository's blobs
LPIPS_LIN_FILES: dict[str, WeightsFile] = {
    net: WeightsFile(
        filename=f"lpips_v{LPIPS_VERSION}_{net}.pth", sha256=sha, size=size,
        url=f"https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/{_LPIPS_COMMIT}/lpips/weights/"
            f"v{LPIPS_VERSION}/{net}.pth")
    for net, sha, size in (
        ("alex", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", 6009),
        ("vgg", "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", 7289),
        ("squeeze", "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76", 10811),
    )
}
#: DISTS α/β: DISTS_pytorch/weights.pt of dingkeyan93/DISTS (identical in the PyPI package and torchmetrics)
DISTS_ALPHA_BETA_FILE = WeightsFile(
    filename="dists_alpha_beta.pt", sha256="f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
    size=12288, url=f"https://raw.githubusercontent.com/dingkeyan93/DISTS/{_DISTS_COMMIT}/DISTS_pytorch/weights.pt")

_NET_OF_BACKBONE = {bb: net for net, bb in LPIPS_BACKBONES.items()}
_LIN_KEY = re.compile(r"^lin(\d+)\.model\.\d+\.weight$")  # lpips' NetLinLayer: [Dropout,] Conv2d
_HEADS: dict[tuple[str, str], Any] = {}
_HEADS_LOCK = threading.Lock()


# -- the learned heads -------------------------------------------------------------------------------
def _package_file(package: str, *parts: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


def head_candidates(head: str) -> list[Path]:
    """The installed packages' copies of a head file (``"lpips-<net>"`` or ``"dists"``), in search order."""
    if head == "dists":
        found = [_package_file("DISTS_pytorch", "weights.pt"),
                 _package_file("torchmetrics", "functional", "image", "dists_models", "weights.pt")]
    else:
        net = head.removeprefix("lpips-")
        found = [_package_file("lpips", "weights", f"v{LPIPS_VERSION}", f"{net}.pth"),
                 _package_file("torchmetrics", "functional", "image", "lpips_models", f"{net}.pth")]
    return [p for p in found if p is not None]


_HEAD_PACKAGES = {"dists": "DISTS-pytorch", "lpips": "lpips"}


def resolve_head(head: str, wf: WeightsFile, explicit: str | os.PathLike | None, *, source: str,
                 license: str) -> ResolvedWeights:
    """Find a head file: ``explicit``, else the installed packages' copy, else the usual resolution order.

    A file found in a package or given explicitly is used and is calibrated when its sha256 is
    the published one (:func:`pytest_i2i.backbones.weights.resolve_weights` with an explicit path).

    Raises:
        WeightsNotFound: nowhere (the message lists the locations and the package to install).
    """
    cfg = PretrainedCfg(files=(wf,), source=source, license=license)
    what = f"{head} head ({source})"
    if explicit is not None:
        return resolve_weights(what, cfg, explicit)
    candidates = head_candidates(head)
    for path in candidates:
        if path.is_file():
            return resolve_weights(what, cfg, path)
    try:
        return resolve_weights(what, cfg)
    except WeightsNotFound as e:
        package = _HEAD_PACKAGES[head.partition("-")[0]]
        raise WeightsNotFound(f"{e}\nOr install the `{package}` package (pip install {package}), which ships the "
                              f"file (looked for: {', '.join(str(p) for p in candidates)}).",
                              filename=e.filename, sha256=e.sha256, searched=e.searched + [str(p) for p in candidates],
                              backbone=e.backbone) from None


def _read_head(resolved: ResolvedWeights, what: str) -> dict[str, torch.Tensor]:
    from pytest_i2i.checkpoint import read_state_dict

    key = (str(resolved.path), resolved.sha256)
    with _HEADS_LOCK:
        if key not in _HEADS:
            state = read_state_dict(resolved.path, what=what)
            _HEADS[key] = {k: v.detach().to(torch.float32) for k, v in state.items() if isinstance(v, torch.Tensor)}
        return _HEADS[key]


def lpips_lin_weights(net: str, lin_weights: str | os.PathLike | None = None
                      ) -> tuple[list[torch.Tensor], ResolvedWeights]:
    """LPIPS' linear layers of ``net`` (one (1, C_l, 1, 1) weight per tap) and where they came from.

    Raises:
        UnknownNameError: an unknown ``net``. WeightsNotFound: the file is nowhere.
        I2IInputError: the file does not hold ``lin<k>.model.1.weight`` entries (the ``lpips`` layout).
    """
    if net not in LPIPS_BACKBONES:
        raise UnknownNameError("LPIPS net", net, list(LPIPS_BACKBONES))
    resolved = resolve_head(f"lpips-{net}", LPIPS_LIN_FILES[net], lin_weights,
                            source=f"LPIPS v{LPIPS_VERSION} linear layers ({net})", license="BSD-2-Clause")
    state = _read_head(resolved, f"LPIPS {net} linear layers")
    layers = {int(m.group(1)): v for k, v in state.items() if (m := _LIN_KEY.match(k))}
    if not layers or sorted(layers) != list(range(len(layers))):
        raise I2IInputError(f"{resolved.path} holds no LPIPS linear layers lin0 ... lin<L-1> (expected keys like "
                            f"lin0.model.1.weight; found {sorted(state)[:6]})")
    return [layers[k] for k in range(len(layers))], resolved


def dists_alpha_beta(alpha_beta: str | os.PathLike | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, ResolvedWeights]:
    """DISTS' α and β ((1, 1475, 1, 1) each) and where they came from.

    Raises:
        WeightsNotFound: the file is nowhere. I2IInputError: it holds no ``alpha`` and ``beta``.
    """
    resolved = resolve_head("dists", DISTS_ALPHA_BETA_FILE, alpha_beta, source="DISTS alpha/beta (Ding et al. 2020)",
                            license="MIT")
    state = _read_head(resolved, "DISTS alpha/beta")
    if "alpha" not in state or "beta" not in state:
        raise I2IInputError(f"{resolved.path} holds no DISTS 'alpha' and 'beta' (found {sorted(state)[:6]})")
    return state["alpha"], state["beta"], resolved


# -- the shared pair loop ----------------------------------------------------------------------------
def paired_trunk_metric(
    name: str,
    higher_is_better: bool,
    bb: Backbone,
    head: Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], tuple[int, int]], dict[str, torch.Tensor]],
    a: Any,
    b: Any,
    *,
    batch_size: int,
    resize: str,
    value_range: tuple[float, float],
    confidence: float,
    n_resamples: int,
    seed: int,
    extra: dict[str, Any],
    calibrated: bool = True,
    warnings: list[str] | None = None,
) -> MetricResult:
    """A per-pair metric on a trunk's feature maps at the pairs' own resolution (LPIPS, DISTS).

    Pairs are read with :func:`~pytest_i2i.images.imageset.iter_pair_batches` (the second image
    of a pair resized to the first's size with ``resize``); each batch of equal-size pairs runs
    through ``bb`` as one batch of 2n images, and ``head(features_a, features_b, (H, W))`` returns
    ``{"value": (n,), other: (n, ...)}``; the other entries go into ``extra`` as per-pair lists.
    ``calibrated`` and ``warnings`` describe the head (the trunk's come from ``bb``).
    """
    check_resize_mode(resize)
    with timed() as t:
        sa, sb = as_pairs(a, b, names=("a", "b"), value_range=value_range)

        def shard(indices: range) -> tuple[dict[str, list], list[str]]:
            parts: dict[str, list] = {}
            notes: list[str] = []
            for _, xa, xb, batch_notes in iter_pair_batches(sa.subset(indices), sb.subset(indices), batch_size,
                                                             resize=resize, start=indices.start):
                n = xa.shape[0]
                fmt = torch.channels_last if bb.spec.channels_last else torch.contiguous_format
                x = torch.empty((2 * n, *xa.shape[1:]), dtype=torch.float32, memory_format=fmt)
                x[:n], x[n:] = xa, xb  # one copy into the trunk's memory layout
                feats = bb(x)
                fa = {k: v[:n] for k, v in feats.items()}
                fb = {k: v[n:] for k, v in feats.items()}
                with torch.inference_mode():
                    out = head(fa, fb, (xa.shape[2], xa.shape[3]))
                for key, v in out.items():
                    v = v.detach().to("cpu", torch.float64)
                    parts.setdefault(key, []).extend(list(v) if key != "value" else v.tolist())
                notes += batch_notes
            return parts, notes

        out, notes = map_shards(len(sa), batch_size, shard)
        values = torch.tensor(out.pop("value", []), dtype=torch.float64)
    if not torch.isfinite(values).all():
        bad = [sa.names[i] for i in (~torch.isfinite(values)).nonzero().flatten()[:3].tolist()]
        raise I2IInputError(f"{name}: non-finite values for pairs {', '.join(bad)}")
    fields = backbone_fields(bb)
    fields["calibrated"] = fields["calibrated"] and calibrated
    fields["warnings"] += list(warnings or []) + notes
    more = {k: [v.tolist() for v in vs] for k, vs in out.items()}
    return per_sample_result(
        name, values, sa.names, higher_is_better=higher_is_better, confidence=confidence, n_resamples=n_resamples,
        seed=seed, resize=resize, wall_time_s=t.seconds, extra={**extra, **more}, **fields,
    )


def _trunk(backbone: str | Backbone | None, default: str, weights: Any, device: Any, known: dict[str, str],
           what: str) -> Backbone:
    bb = resolve_backbone(backbone, default, weights, device)
    if bb.name not in known:
        raise I2IInputError(f"{what}: backbone {bb.name!r} is not one of its trunks ({', '.join(sorted(known))})")
    return bb


# -- LPIPS -------------------------------------------------------------------------------------------
def lpips_head(lin: list[torch.Tensor] | None, spatial: bool):
    """The per-batch head of :func:`lpips`: value, ``max`` of the per-pixel map, and the ``maps`` when
    ``spatial`` (``lin=None``: the unweighted baseline)."""

    def head(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        maps = F.lpips_layer_maps(list(fa.values()), list(fb.values()), lin)
        pixel = F.lpips_spatial_map(maps, size)
        out = {"value": F.lpips_from_layer_maps(maps), "max": pixel.flatten(1).amax(1)}
        if spatial:
            out["maps"] = pixel
        return out

    return head


@frontend
def lpips(
    a: Any,
    b: Any,
    *,
    net: str = "alex",
    spatial: bool = False,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    lin_weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str = "clean",
    value_range: tuple[float, float] = (0.0, 1.0),
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """LPIPS (Zhang et al. 2018), version 0.1: learned perceptual distance per pair (lower is better).

    d(a, b) = Σ_l mean_{h,w} w_l · (f̂ᵃ_l − f̂ᵇ_l)², with f̂ the trunk's tapped feature maps unit-
    normalised over channels at every position and w_l the learned linear layer of tap l; the
    input is scaled to [-1, 1] and then by LPIPS' shift/scale constants. Equal to
    ``lpips.LPIPS(net=net)(2a − 1, 2b − 1)`` and to torchmetrics'
    ``LearnedPerceptualImagePatchSimilarity(net_type=net, normalize=True)`` per pair, on the same
    weights (tested to 1e-6, the maps too).

    Args:
        a, b: image inputs paired by position (see :func:`pytest_i2i.load_images`), any size of at
            least 31 px (alex), 16 px (vgg) or 17 px (squeeze) per side.
        net: ``"alex"`` (default, the paper's recommendation), ``"vgg"`` or ``"squeeze"``.
        spatial: also return the per-pixel map of each pair (``extra["maps"]``, H x W of ``a``'s
            image, nested lists) for heat maps.
        backbone: the trunk as a name or loaded backbone (default ``"lpips-<net>"``); it fixes the net.
        weights: the trunk's weights: ``None`` (torchvision's published file), a path, or
            ``"random"`` (seeded random trunk with the real linear layers; uncalibrated).
        lin_weights: a file with the linear layers (``lin<k>.model.1.weight``); default: the
            published v0.1 file (installed ``lpips`` package, torchmetrics' copy, weights dir,
            torch hub cache, download).
        device: torch device of the trunk.
        batch_size: pairs per forward pass (2 x ``batch_size`` images).
        resize: how the second image of a pair of different sizes is brought to the first's size.
        value_range: the range of float inputs, e.g. ``(-1, 1)`` for tanh outputs.
        confidence, n_resamples, seed: the percentile-bootstrap CI of the mean.

    Returns:
        A :class:`MetricResult` named ``"lpips"``: the mean over pairs, its bootstrap CI, per-pair
        values; ``extra`` holds ``net``, ``version``, the linear layers' ``lin_weights_sha256``,
        ``max`` (the maximum of each pair's per-pixel map) and, with ``spatial``, ``maps``.
        ``calibrated`` only when the trunk and the linear layers are the published files.

    Raises:
        I2IInputError: pair counts differ, bad images, images too small for the trunk, a backbone
            that is not an LPIPS trunk or does not match ``net``.
        WeightsNotFound: the trunk's or the linear layers' file is nowhere.

    Example:
        >>> import torch, pytest_i2i
        >>> x = torch.rand(2, 3, 64, 64)
        >>> float(pytest_i2i.lpips(x, x, weights="random"))      # doctest: +SKIP
        0.0
    """
    if net not in LPIPS_BACKBONES:
        raise UnknownNameError("LPIPS net", net, list(LPIPS_BACKBONES))
    bb = _trunk(backbone, LPIPS_BACKBONES[net], weights, device, _NET_OF_BACKBONE, "lpips")
    trunk_net = _NET_OF_BACKBONE[bb.name]
    if backbone is not None and net != "alex" and net != trunk_net:
        raise I2IInputError(f"lpips: net={net!r} but backbone {bb.name!r} is the {trunk_net!r} trunk")
    lin, head_file = lpips_lin_weights(trunk_net, lin_weights)
    if len(lin) != len(bb.spec.outputs):
        raise I2IInputError(f"lpips: {head_file.path} has {len(lin)} linear layers; the {trunk_net} trunk has "
                            f"{len(bb.spec.outputs)} taps")
    try:
        return paired_trunk_metric(
            "lpips", False, bb, lpips_head(lin, bool(spatial)), a, b, batch_size=batch_size, resize=resize,
            value_range=value_range, confidence=confidence, n_resamples=n_resamples, seed=seed,
            extra={"net": trunk_net, "version": LPIPS_VERSION, "lin_weights_sha256": head_file.sha256},
            calibrated=head_file.calibrated, warnings=list(head_file.warnings),
        )
    except RuntimeError as e:  # e.g. an image smaller than a pooling window
        raise I2IInputError(f"lpips ({trunk_net}) cannot be computed on these images: {str(e)[:300]}") from None


# -- DISTS -------------------------------------------------------------------------------------------
def dists_head(alpha: torch.Tensor, beta: torch.Tensor):
    """The per-batch head of :func:`dists`."""

    def head(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        return {"value": F.dists_from_features(list(fa.values()), list(fb.values()), alpha, beta)}

    return head


@frontend
def dists(
    a: Any,
    b: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    alpha_beta: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str = "clean",
    value_range: tuple[float, float] = (0.0, 1.0),
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """DISTS (Ding et al. 2020): deep image structure and texture similarity, as a distance (lower is better).

    D = 1 − Σ_{k,i} (α_ki S1_ki + β_ki S2_ki) over the taps k (the image itself and five stages of
    VGG16 with L2 pooling) and their channels i, with the structure term
    S1 = (2 μx μy + c1) / (μx² + μy² + c1) and the texture term S2 = (2 σxy + c2) / (σx² + σy² + c2)
    of the channel's spatial statistics (c1 = c2 = 1e-6), α and β learned and normalised to sum 1.
    Equal to ``DISTS_pytorch.DISTS()(a, b)`` and torchmetrics'
    ``DeepImageStructureAndTextureSimilarity(reduction="none")`` per pair on the same weights
    (tested to 1e-5). Images are compared at their own size (no resize to 256).

    Args:
        a, b: image inputs paired by position, any size (below 32 px the deepest taps are 1 x 1
            and their texture terms are constant).
        backbone: the trunk as a name or loaded backbone (default ``"dists-vgg16"``).
        weights: the trunk's weights: ``None`` (torchvision's VGG16 file), a path, or ``"random"``.
        alpha_beta: a file with DISTS' ``alpha`` and ``beta``; default: the published file
            (installed ``DISTS_pytorch``, torchmetrics' copy, weights dir, torch hub cache, download).
        device, batch_size, resize, value_range, confidence, n_resamples, seed: as for :func:`lpips`.

    Returns:
        A :class:`MetricResult` named ``"dists"`` with per-pair values; ``extra["alpha_beta_sha256"]``.

    Raises:
        I2IInputError: pair counts differ, bad images, images too small, a backbone that is not
            the DISTS trunk. WeightsNotFound: a weights file is nowhere.
    """
    bb = _trunk(backbone, DISTS_BACKBONE, weights, device, {DISTS_BACKBONE: "dists"}, "dists")
    alpha, beta, head_file = dists_alpha_beta(alpha_beta)
    try:
        return paired_trunk_metric(
            "dists", False, bb, dists_head(alpha, beta), a, b, batch_size=batch_size, resize=resize,
            value_range=value_range, confidence=confidence, n_resamples=n_resamples, seed=seed,
            extra={"alpha_beta_sha256": head_file.sha256}, calibrated=head_file.calibrated,
            warnings=list(head_file.warnings),
        )
    except RuntimeError as e:
        raise I2IInputError(f"dists cannot be computed on these images: {str(e)[:300]}") from None


# -- DreamSim ----------------------------------------------------------------------------------------
def dreamsim_kernel(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DreamSim's distance of a chunk of pairs from their embeddings: ``{"value": 1 − cos(ẽa, ẽb)}``."""
    return {"value": F.dreamsim_distance(fa["embedding"], fb["embedding"]).double()}


@frontend
def dreamsim(
    a: Any,
    b: Any,
    *,
    variant: str = "ensemble",
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """DreamSim (Fu et al. 2023): human-aligned perceptual distance per pair (lower is better).

    d(a, b) = 1 − cos(ẽa, ẽb), where e is the concatenation of the branches' embeddings (the
    ensemble: DINO ViT-B/16 class token, OpenAI CLIP ViT-B/16 and OpenCLIP ViT-B/16 image
    embeddings, each backbone fine-tuned with LoRA on NIGHTS) and ẽ = (e − mean e) / ‖e − mean e‖
    (the ``dreamsim`` package's default ``normalize_embeds=True``). Images are resized to 224 x 224
    (no crop) and normalised per branch inside the model. Equal to
    ``dreamsim.dreamsim(pretrained=True)[0](a, b)`` on the same weights and 224 px images (tested
    to 1e-5); the project's ``"clean"`` resize works on float data, ``dreamsim``'s preprocessing
    on 8-bit PIL images, so on images of another size the two differ by that rounding.

    Args:
        a, b: image inputs paired by position.
        variant: ``"ensemble"`` (default; 96.2 % 2AFC agreement on NIGHTS' test set in the
            ``dreamsim`` README), ``"dino_vitb16"``, ``"clip_vitb32"`` or ``"open_clip_vitb32"``.
        backbone: a DreamSim encoder by name or loaded (default ``"dreamsim-<variant>"``).
        weights: ``None`` (DreamSim's release zip of the variant, found by the usual order, and
            ``dino-vitb16``'s file for a DINO branch), a path to that zip, or ``"random"``.
        device, batch_size: of the forward passes.
        resize: ``"clean"`` (default) or ``"legacy-pytorch"``.
        confidence, n_resamples, seed: the percentile-bootstrap CI of the mean.

    Returns:
        A :class:`MetricResult` named ``"dreamsim"``: mean over pairs, bootstrap CI, per-pair values;
        ``extra["variant"]``. Computed from the per-image embeddings, which are memoised and
        cached like every backbone feature.

    Raises:
        UnknownNameError: an unknown ``variant``. I2IInputError: pair counts differ, bad images, a
            backbone without an ``"embedding"`` output. WeightsNotFound: a weights file is nowhere.
    """
    from pytest_i2i.backbones.dreamsim import DREAMSIM_VARIANTS

    if variant not in DREAMSIM_VARIANTS:
        raise UnknownNameError("DreamSim variant", variant, list(DREAMSIM_VARIANTS))
    if isinstance(backbone, Backbone) and "embedding" not in backbone.spec.outputs:
        raise I2IInputError(f"dreamsim: backbone {backbone.name!r} has no 'embedding' output; use a DreamSim "
                            f"encoder ({', '.join(v[0] for v in DREAMSIM_VARIANTS.values())})")
    if isinstance(backbone, str):
        from pytest_i2i.backbones.registry import get_spec

        if "embedding" not in get_spec(backbone).outputs:
            raise I2IInputError(f"dreamsim: backbone {backbone!r} has no 'embedding' output")
    return paired_feature_metric(
        "dreamsim", False, dreamsim_kernel, a, b, default_backbone=DREAMSIM_VARIANTS[variant][0], backbone=backbone,
        weights=weights, device=device, batch_size=batch_size, resize=resize, confidence=confidence,
        n_resamples=n_resamples, seed=seed, extra={"variant": variant, "feature": "embedding"},
    )
