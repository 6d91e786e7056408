"""Local edits: operations applied inside a region, each with one magnitude and a seed.

Every operation takes ``(image, mask, *, <magnitude>=..., seed=0)`` with ``image`` a float32
``(3, H, W)`` tensor in ``[0, 1]`` and ``mask`` a bool ``(H, W)`` tensor (or a
:class:`~pytest_i2i.perturb.base.Region`), and returns a
:class:`~pytest_i2i.perturb.base.Perturbation` whose pixels outside ``mask`` are bit-identical to
the input. Results are clipped to ``[0, 1]`` and deterministic for a seed.

:data:`OPS` lists each operation with its magnitude's name, unit and a grid of levels ordered
from weakest to strongest (used by the hypothesis strategies and the sensitivity suite);
:func:`local_edit` builds a region and applies an operation in one call.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from pytest_i2i.errors import I2IInputError, UnknownNameError
from pytest_i2i.perturb.base import (
    Perturbation, Region, check_image, check_mask, check_number, check_seed, composite,
)

__all__ = [
    "OPS", "OpSpec", "brightness_contrast", "colour_shift", "copy_move", "erase_fill", "gaussian_blur",
    "gaussian_noise", "insert_object", "jpeg", "local_edit", "local_warp", "patch_shuffle",
]

#: ΔE2000 tolerance of :func:`colour_shift` per pixel (pixels that reach the request).
DELTA_E_TOLERANCE = 0.01


def _prepare(image: Any, mask: Any) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    img = check_image(image)
    region_params = dict(mask.params) if isinstance(mask, Region) else {}
    m = check_mask(mask, tuple(img.shape[1:]))
    region_params.setdefault("pixels", int(m.sum()))
    return img, m, region_params


def _result(original: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor, op: str, region: dict[str, Any],
            **params: Any) -> Perturbation:
    return Perturbation(composite(original, edited, mask), mask.clone(), {"op": op, **params, "region": region})


# --------------------------------------------------------------------------------------------
# colour
# --------------------------------------------------------------------------------------------


def colour_shift(image: Any, mask: Any, *, delta_e: float = 10.0, seed: int = 0) -> Perturbation:
    r"""Shift the colour of every pixel in ``mask`` by ``delta_e`` CIEDE2000 units.

    A hue direction :math:`\theta` is drawn from the seed; each pixel's CIELAB colour moves along
    :math:`(\Delta a^*, \Delta b^*) = t (\cos\theta, \sin\theta)` (lightness unchanged), with
    :math:`t` found per pixel by bisection (40 steps) so that
    :math:`\Delta E_{00}(\text{original}, \text{clip}_{[0,1]}(\text{sRGB}(\text{shifted}))) = ` ``delta_e``.
    Pixels that cannot reach the request in that direction inside the sRGB gamut try the opposite
    direction; pixels that reach it in neither keep the largest difference found.

    Tolerance: pixels that reach the request are within :data:`DELTA_E_TOLERANCE` (0.01 ΔE) of
    it after the float32 round-trip. ``params`` reports ``delta_e_mean``, ``delta_e_median``
    (measured with :func:`~pytest_i2i.metrics.functional.paired.ciede2000_map` over the mask on
    the returned image) and ``reached_fraction`` (share of mask pixels within tolerance); very
    saturated or near-black/white pixels may not reach large requests.

    Args:
        image: float32 ``(3, H, W)`` in ``[0, 1]``.
        mask: bool ``(H, W)`` or a :class:`Region`.
        delta_e: the requested ΔE2000, in (0, 50].
        seed: seed of the hue direction.

    Raises:
        I2IInputError: bad ``image``, ``mask``, ``delta_e`` or ``seed``.
    """
    from pytest_i2i.images.colour import ciede2000_lab, lab_to_srgb, srgb_to_lab

    img, m, region = _prepare(image, mask)
    target = check_number(delta_e, "delta_e", 0.0, 50.0, low_open=True)
    seed = check_seed(seed)
    theta = float(np.random.default_rng(seed).uniform(0.0, 2.0 * math.pi))
    pixels = img[:, m].to(torch.float64).view(1, 3, 1, -1)
    lab = srgb_to_lab(pixels)
    direction = torch.tensor([0.0, math.cos(theta), math.sin(theta)], dtype=torch.float64).view(1, 3, 1, 1)

    def shifted(t: torch.Tensor, sign: float) -> tuple[torch.Tensor, torch.Tensor]:
        rgb = lab_to_srgb(lab + sign * t.view(1, 1, 1, -1) * direction).clamp(0.0, 1.0)
        return rgb, ciede2000_lab(lab, srgb_to_lab(rgb)).view(-1)

    t_max = torch.full((pixels.shape[-1],), 200.0, dtype=torch.float64)
    best_rgb, best_de = shifted(t_max, 1.0)
    sign = torch.ones_like(t_max)
    neg_rgb, neg_de = shifted(t_max, -1.0)
    use_neg = (best_de < target) & (neg_de > best_de)
    sign[use_neg] = -1.0
    low, high = torch.zeros_like(t_max), t_max.clone()
    for _ in range(40):
        mid = 0.5 * (low + high)
        _, de = _shift_signed(shifted, mid, sign)
        below = de < target
        low = torch.where(below, mid, low)
        high = torch.where(below, high, mid)
    rgb, de = _shift_signed(shifted, high, sign)
    unreachable = torch.maximum(best_de, neg_de) < target
    fallback = torch.where(use_neg.view(1, 1, 1, -1), neg_rgb, best_rgb)
    rgb = torch.where(unreachable.view(1, 1, 1, -1), fallback, rgb)
    edited = img.clone()
    edited[:, m] = rgb.view(3, -1).to(torch.float32)
    out = composite(img, edited, m)
    achieved = ciede2000_lab(srgb_to_lab(img[:, m].to(torch.float64).view(1, 3, 1, -1)),
                              srgb_to_lab(out[:, m].to(torch.float64).view(1, 3, 1, -1))).view(-1)
    reached = (achieved - target).abs() <= DELTA_E_TOLERANCE
    return Perturbation(out, m.clone(), {
        "op": "colour_shift", "delta_e": target, "seed": seed, "hue_direction_deg": math.degrees(theta),
        "delta_e_mean": float(achieved.mean()), "delta_e_median": float(achieved.median()),
        "reached_fraction": float(reached.double().mean()), "region": region})


def _shift_signed(shifted: Callable, t: torch.Tensor, sign: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``shifted`` with a per-pixel sign (one call per sign present)."""
    rgb_pos, de_pos = shifted(t, 1.0)
    if not (sign < 0).any():
        return rgb_pos, de_pos
    rgb_neg, de_neg = shifted(t, -1.0)
    neg = sign < 0
    return torch.where(neg.view(1, 1, 1, -1), rgb_neg, rgb_pos), torch.where(neg, de_neg, de_pos)


def brightness_contrast(
    image: Any, mask: Any, *, brightness: float = 0.0, contrast: float = 1.0, seed: int = 0
) -> Perturbation:
    r"""Change brightness and contrast inside ``mask``: :math:`y = (x - \mu) c + \mu + b`, clipped.

    :math:`\mu` is the per-channel mean of the image inside the mask, :math:`c` = ``contrast``
    and :math:`b` = ``brightness`` (in image units; a positive value brightens). ``seed`` is
    accepted for a uniform signature and unused (the operation is deterministic).

    Raises:
        I2IInputError: ``brightness`` outside [-1, 1], ``contrast`` outside [0, 4], bad image/mask.
    """
    img, m, region = _prepare(image, mask)
    b = check_number(brightness, "brightness", -1.0, 1.0)
    c = check_number(contrast, "contrast", 0.0, 4.0)
    check_seed(seed)
    mu = img[:, m].mean(dim=1).view(3, 1, 1)
    return _result(img, (img - mu) * c + mu + b, m, "brightness_contrast", region, brightness=b, contrast=c, seed=seed)


def _brightness(image: Any, mask: Any, *, brightness: float = 0.2, seed: int = 0) -> Perturbation:
    """Brightness change of ``brightness`` (> 0), towards the side with room: darker if the region's mean is above 0.5."""
    img = check_image(image)
    b = check_number(brightness, "brightness", 0.0, 1.0, low_open=True)
    m = check_mask(mask, tuple(img.shape[1:]))
    sign = -1.0 if float(img[:, m].mean()) > 0.5 else 1.0
    p = brightness_contrast(img, mask, brightness=sign * b, seed=seed)
    return Perturbation(p.image, p.mask, {**p.params, "op": "brightness"})


def _contrast(image: Any, mask: Any, *, contrast_loss: float = 0.5, seed: int = 0) -> Perturbation:
    """Contrast reduced by ``contrast_loss`` in (0, 1): contrast factor ``1 - contrast_loss``."""
    loss = check_number(contrast_loss, "contrast_loss", 0.0, 1.0, low_open=True)
    p = brightness_contrast(image, mask, contrast=1.0 - loss, seed=seed)
    return Perturbation(p.image, p.mask, {**p.params, "op": "contrast", "contrast_loss": loss})


# --------------------------------------------------------------------------------------------
# filters and codecs
# --------------------------------------------------------------------------------------------


def gaussian_blur(image: Any, mask: Any, *, sigma: float = 4.0, seed: int = 0) -> Perturbation:
    """Gaussian blur of standard deviation ``sigma`` pixels (scipy, reflect borders, truncated at 4 σ) inside ``mask``.

    The whole image is blurred, so pixels inside the mask mix with their surroundings as in a
    real blurred region. ``seed`` is unused (deterministic).

    Raises:
        I2IInputError: ``sigma`` outside (0, 64], bad image/mask.
    """
    from scipy.ndimage import gaussian_filter

    img, m, region = _prepare(image, mask)
    s = check_number(sigma, "sigma", 0.0, 64.0, low_open=True)
    check_seed(seed)
    blurred = gaussian_filter(img.numpy().astype(np.float64), sigma=(0.0, s, s), mode="reflect")
    return _result(img, torch.from_numpy(blurred), m, "gaussian_blur", region, sigma=s, seed=seed)


def gaussian_noise(image: Any, mask: Any, *, std: float = 0.1, seed: int = 0) -> Perturbation:
    """Add i.i.d. Gaussian noise of standard deviation ``std`` (image units) inside ``mask``, then clip.

    Raises:
        I2IInputError: ``std`` outside (0, 1], bad image/mask/seed.
    """
    img, m, region = _prepare(image, mask)
    s = check_number(std, "std", 0.0, 1.0, low_open=True)
    seed = check_seed(seed)
    noise = np.random.default_rng(seed).standard_normal(tuple(img.shape)).astype(np.float32) * s
    return _result(img, img + torch.from_numpy(noise), m, "gaussian_noise", region, std=s, seed=seed)


def jpeg_round_trip(img: torch.Tensor, quality: int) -> torch.Tensor:
    """The whole image encoded as 8-bit baseline JPEG at ``quality`` by Pillow and decoded (4:2:0 chroma)."""
    from PIL import Image

    arr = (img.permute(1, 2, 0).numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    decoded = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(decoded).permute(2, 0, 1).contiguous()


def _check_quality(quality: Any) -> int:
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= int(quality) <= 100:
        raise I2IInputError(f"`quality` must be an int in [1, 100]; got {quality!r}")
    return int(quality)


def jpeg(image: Any, mask: Any, *, quality: int = 10, seed: int = 0) -> Perturbation:
    """JPEG compression artefacts at ``quality`` (1 to 100) inside ``mask``.

    The whole image goes through :func:`jpeg_round_trip` (so blocks see their real context);
    the decoded pixels replace the mask's pixels. ``seed`` is unused (deterministic).

    Raises:
        I2IInputError: ``quality`` not an int in [1, 100], bad image/mask.
    """
    img, m, region = _prepare(image, mask)
    q = _check_quality(quality)
    check_seed(seed)
    return _result(img, jpeg_round_trip(img, q), m, "jpeg", region, quality=q, seed=seed)


# --------------------------------------------------------------------------------------------
# geometry and content
# --------------------------------------------------------------------------------------------


def local_warp(image: Any, mask: Any, *, amplitude: float = 4.0, seed: int = 0) -> Perturbation:
    r"""Smooth local geometric warp: pixels in ``mask`` are resampled at displaced positions.

    The displacement field is white noise (seeded) smoothed by a Gaussian of
    :math:`\max(2, \sqrt{k}/4)` pixels (``k`` = mask pixels), scaled so its largest magnitude is
    ``amplitude`` pixels, and tapered to 0 towards the mask's border over ``amplitude`` pixels
    (Euclidean distance transform), so the warp has no seam. Sampling is bilinear, reflect borders.

    Raises:
        I2IInputError: ``amplitude`` outside (0, 64], bad image/mask/seed.
    """
    from scipy.ndimage import distance_transform_edt, gaussian_filter, map_coordinates

    img, m, region = _prepare(image, mask)
    amp = check_number(amplitude, "amplitude", 0.0, 64.0, low_open=True)
    seed = check_seed(seed)
    h, w = m.shape
    rng = np.random.default_rng(seed)
    smooth = max(2.0, math.sqrt(float(m.sum())) / 4.0)
    field = np.stack([gaussian_filter(rng.standard_normal((h, w)), smooth, mode="reflect") for _ in range(2)])
    field *= amp / max(float(np.sqrt((field**2).sum(0)).max()), 1e-12)
    taper = np.clip(distance_transform_edt(m.numpy()) / max(amp, 1.0), 0.0, 1.0)
    field *= taper[None]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = [y + field[0], x + field[1]]
    arr = img.numpy().astype(np.float64)
    warped = np.stack([map_coordinates(arr[c], coords, order=1, mode="reflect") for c in range(3)])
    return _result(img, torch.from_numpy(warped), m, "local_warp", region, amplitude=amp, seed=seed,
                   max_displacement=float(np.sqrt((field**2).sum(0)).max()))


def _blend(img: torch.Tensor, other: torch.Tensor, opacity: float) -> torch.Tensor:
    return (1.0 - opacity) * img + opacity * other


def copy_move(image: Any, mask: Any, *, opacity: float = 1.0, seed: int = 0) -> Perturbation:
    """Copy-move forgery: the mask's pixels are replaced by the pixels at a seeded offset.

    The offset ``(dy, dx)`` is drawn uniformly from ``[H/4, 3H/4] x [W/4, 3W/4]``; source
    coordinates wrap around the image borders (``torch.roll``), so any mask has a source.
    ``opacity`` blends the pasted patch over the original (1 = opaque).

    Raises:
        I2IInputError: ``opacity`` outside (0, 1], bad image/mask/seed.
    """
    img, m, region = _prepare(image, mask)
    o = check_number(opacity, "opacity", 0.0, 1.0, low_open=True)
    seed = check_seed(seed)
    h, w = m.shape
    rng = np.random.default_rng(seed)
    dy, dx = int(rng.integers(h // 4, 3 * h // 4 + 1)), int(rng.integers(w // 4, 3 * w // 4 + 1))
    source = torch.roll(img, shifts=(-dy, -dx), dims=(1, 2))
    return _result(img, _blend(img, source, o), m, "copy_move", region, opacity=o, offset=[dy, dx], seed=seed)


def patch_shuffle(image: Any, mask: Any, *, tile: int = 8, seed: int = 0) -> Perturbation:
    """Shuffle ``tile x tile`` patches within the mask's bounding box (seeded permutation).

    The bounding box is edge-padded to whole tiles, its tiles permuted (a random permutation,
    rolled by one when it draws the identity), and the result replaces the mask's pixels. When
    the box holds fewer than two tiles the tile side is halved until it holds two (down to 1 px);
    ``params["tile"]`` is the side used.

    Raises:
        I2IInputError: ``tile`` not an int in [1, 256], bad image/mask/seed.
    """
    img, m, region = _prepare(image, mask)
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or not 1 <= int(tile) <= 256:
        raise I2IInputError(f"`tile` must be an int in [1, 256]; got {tile!r}")
    seed = check_seed(seed)
    ys, xs = torch.nonzero(m, as_tuple=True)
    top, bottom, left, right = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    bh, bw = bottom - top, right - left
    p = int(tile)
    while p > 1 and math.ceil(bh / p) * math.ceil(bw / p) < 2:
        p //= 2
    nh, nw = math.ceil(bh / p), math.ceil(bw / p)
    crop = img[:, top:bottom, left:right]
    padded = F.pad(crop[None], (0, nw * p - bw, 0, nh * p - bh), mode="replicate")[0]
    tiles = padded.reshape(3, nh, p, nw, p).permute(1, 3, 0, 2, 4).reshape(nh * nw, 3, p, p)
    perm = np.random.default_rng(seed).permutation(nh * nw)
    if nh * nw > 1 and (perm == np.arange(nh * nw)).all():
        perm = np.roll(perm, 1)
    shuffled = tiles[torch.from_numpy(perm)].reshape(nh, nw, 3, p, p).permute(2, 0, 3, 1, 4).reshape(3, nh * p, nw * p)
    edited = img.clone()
    edited[:, top:bottom, left:right] = shuffled[:, :bh, :bw]
    return _result(img, edited, m, "patch_shuffle", region, tile=p, requested_tile=int(tile), seed=seed)


def fill_from_surroundings(img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""Smooth inpainting of ``mask`` from the pixels around it: the harmonic (membrane) fill.

    Each channel's unknown pixels solve the discrete Laplace equation
    :math:`\sum_{q \in N(p)} (u_p - u_q) = 0` over the 4-neighbours :math:`N(p)` inside the image,
    with the pixels outside the mask fixed (Dirichlet) and the image border free (Neumann), by
    one sparse LU factorisation (scipy). The fill is the smoothest surface matching the
    surroundings: it keeps no texture of the erased content.

    Raises:
        I2IInputError: the mask covers the whole image (nothing to fill from).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    m = mask.numpy()
    if m.all():
        raise I2IInputError("`mask` covers the whole image: erase_fill needs surrounding pixels to fill from")
    h, w = m.shape
    arr = img.numpy().astype(np.float64)
    index = -np.ones((h, w), dtype=np.int64)
    ys, xs = np.nonzero(m)
    index[ys, xs] = np.arange(len(ys))
    rows, cols, vals = [], [], []
    degree = np.zeros(len(ys))
    rhs = np.zeros((len(ys), 3))
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        degree += inside
        p, qy, qx = np.nonzero(inside)[0], ny[inside], nx[inside]
        q = index[qy, qx]
        unknown = q >= 0
        rows.append(p[unknown])
        cols.append(q[unknown])
        vals.append(-np.ones(int(unknown.sum())))
        np.add.at(rhs, p[~unknown], arr[:, qy[~unknown], qx[~unknown]].T)
    rows.append(np.arange(len(ys)))
    cols.append(np.arange(len(ys)))
    vals.append(degree)
    n = len(ys)
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsc()
    solution = splu(a).solve(rhs)
    out = arr.copy()
    out[:, ys, xs] = solution.T
    return torch.from_numpy(out)


def erase_fill(image: Any, mask: Any, *, opacity: float = 1.0, seed: int = 0) -> Perturbation:
    """Erase the mask's content and fill it smoothly from its surroundings (:func:`fill_from_surroundings`, harmonic).

    ``opacity`` blends the fill over the original (1 = the content is gone). ``seed`` is unused.

    Raises:
        I2IInputError: ``opacity`` outside (0, 1], bad image/mask.
    """
    img, m, region = _prepare(image, mask)
    o = check_number(opacity, "opacity", 0.0, 1.0, low_open=True)
    check_seed(seed)
    return _result(img, _blend(img, fill_from_surroundings(img, m).to(torch.float32), o), m, "erase_fill",
                   region, opacity=o, seed=seed, method="harmonic (Laplace) fill")


def insert_object(
    image: Any, mask: Any, *, opacity: float = 1.0, source: Any = None, seed: int = 0
) -> Perturbation:
    """Insert a small object into ``mask``: a flat contrasting shape, or a patch of another image.

    Without ``source``: the mask (its outline is the shape) is painted with one colour: CIELAB
    lightness 20 if the region's mean lightness is above 50 else 85, chroma 40 at a seeded hue.
    With ``source`` (a ``(3, H', W')`` image): the mask's bounding box is filled with a seeded
    crop of ``source`` (resized to the image's size first when smaller than the box). ``opacity``
    blends the object over the original.

    Raises:
        I2IInputError: ``opacity`` outside (0, 1], bad image/mask/source/seed.
    """
    from pytest_i2i.images.colour import lab_to_srgb, srgb_to_lab

    img, m, region = _prepare(image, mask)
    o = check_number(opacity, "opacity", 0.0, 1.0, low_open=True)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    h, w = m.shape
    if source is None:
        mean_l = float(srgb_to_lab(img[:, m].to(torch.float64).view(1, 3, 1, -1))[0, 0].mean())
        hue = float(rng.uniform(0.0, 2.0 * math.pi))
        lab = torch.tensor([20.0 if mean_l > 50.0 else 85.0, 40.0 * math.cos(hue), 40.0 * math.sin(hue)],
                           dtype=torch.float64).view(1, 3, 1, 1)
        colour = lab_to_srgb(lab).clamp(0.0, 1.0).view(3, 1, 1).to(torch.float32)
        obj = colour.expand(3, h, w)
        params = {"kind": "shape", "colour_rgb": colour.view(3).tolist()}
    else:
        src = check_image(source, "source")
        ys, xs = torch.nonzero(m, as_tuple=True)
        top, left = int(ys.min()), int(xs.min())
        bh, bw = int(ys.max()) + 1 - top, int(xs.max()) + 1 - left
        if src.shape[1] < bh or src.shape[2] < bw:
            from pytest_i2i.images.resize import resize_batch

            src = resize_batch(src[None], (h, w), "clean")[0]
        sy = int(rng.integers(0, src.shape[1] - bh + 1))
        sx = int(rng.integers(0, src.shape[2] - bw + 1))
        obj = img.clone()
        obj[:, top:top + bh, left:left + bw] = src[:, sy:sy + bh, sx:sx + bw]
        params = {"kind": "patch", "source_offset": [sy, sx]}
    return _result(img, _blend(img, obj, o), m, "insert_object", region, opacity=o, seed=seed, **params)


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpSpec:
    """One local operation: its function, its magnitude argument and a grid of magnitudes.

    ``levels`` run from weakest to strongest (for JPEG that is decreasing quality); ``default``
    is a clearly visible strength used by the sensitivity suite.
    """

    name: str
    fn: Callable[..., Perturbation]
    magnitude: str
    unit: str
    levels: tuple[float, ...]
    default: float
    description: str


OPS: dict[str, OpSpec] = {spec.name: spec for spec in (
    OpSpec("colour_shift", colour_shift, "delta_e", "ΔE2000", (1.0, 2.0, 3.0, 5.0, 10.0, 20.0), 10.0,
           "hue shift of a stated CIEDE2000 colour difference"),
    OpSpec("brightness", _brightness, "brightness", "image units", (0.02, 0.05, 0.1, 0.2, 0.4), 0.2,
           "brightness change (towards the side with room)"),
    OpSpec("contrast", _contrast, "contrast_loss", "fraction", (0.1, 0.25, 0.5, 0.75, 0.9), 0.5,
           "contrast reduction around the region's mean"),
    OpSpec("gaussian_blur", gaussian_blur, "sigma", "pixels", (0.5, 1.0, 2.0, 4.0, 8.0), 4.0, "Gaussian blur"),
    OpSpec("gaussian_noise", gaussian_noise, "std", "image units", (0.01, 0.02, 0.05, 0.1, 0.2), 0.1,
           "additive Gaussian noise"),
    OpSpec("jpeg", jpeg, "quality", "JPEG quality", (90, 70, 50, 30, 10, 5), 10, "JPEG artefacts"),
    OpSpec("local_warp", local_warp, "amplitude", "pixels", (0.5, 1.0, 2.0, 4.0, 8.0), 4.0,
           "smooth geometric warp"),
    OpSpec("copy_move", copy_move, "opacity", "fraction", (0.25, 0.5, 1.0), 1.0,
           "paste of a patch from elsewhere in the image"),
    OpSpec("patch_shuffle", patch_shuffle, "tile", "pixels", (2, 4, 8, 16), 8, "shuffled tiles"),
    OpSpec("erase_fill", erase_fill, "opacity", "fraction", (0.25, 0.5, 1.0), 1.0,
           "content erased and smoothly inpainted"),
    OpSpec("insert_object", insert_object, "opacity", "fraction", (0.25, 0.5, 1.0), 1.0,
           "a flat shape or a patch of another image"),
)}


def get_op(name: str) -> OpSpec:
    if name not in OPS:
        raise UnknownNameError("operation", str(name), OPS)
    return OPS[name]


def local_edit(
    image: Any,
    op: str,
    *,
    area: float | None = None,
    region: str = "ellipse",
    mask: Any = None,
    magnitude: float | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> Perturbation:
    """Apply operation ``op`` (a name from :data:`OPS`) inside a region, in one call.

    Either ``area`` (a region of kind ``region`` - ``"box"``, ``"ellipse"`` or ``"blob"`` - is
    placed with ``seed``) or ``mask`` (used as is). ``magnitude`` defaults to the operation's
    ``default``; ``kwargs`` go to the operation (e.g. ``source=`` for ``insert_object``).

    Example:
        >>> import torch
        >>> p = local_edit(torch.full((3, 64, 64), 0.5), "colour_shift", area=0.1, magnitude=5.0, seed=3)
        >>> p.params["op"], int(p.mask.sum())
        ('colour_shift', 410)
    """
    from pytest_i2i.perturb.regions import make_region

    spec = get_op(op)
    img = check_image(image)
    if (area is None) == (mask is None):
        raise I2IInputError("give exactly one of `area` (a generated region) or `mask`")
    reg = make_region(region, tuple(img.shape[1:]), area, seed=seed) if mask is None else mask
    value = spec.default if magnitude is None else magnitude
    if spec.name in ("jpeg", "patch_shuffle"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
    return spec.fn(img, reg, **{spec.magnitude: value}, seed=seed, **kwargs)
