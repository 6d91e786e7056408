"""Weight-free paired image metrics as pure tensor maths.

Every function takes two canonical image batches ``a`` and ``b``: float tensors of shape
``(N, 3, H, W)``, RGB, values in ``[0, 1]``, the same shape. Metrics are computed in float64
(on the inputs' device, or on the CPU for devices without float64) and returned as a 1-D
float64 CPU tensor of ``N`` per-sample values. Gradients are not tracked.

Reference implementations these functions are tested against:

* :func:`ssim_per_sample`, :func:`ms_ssim_per_sample` and :func:`psnr_per_sample` agree with
  ``torchmetrics.functional.image`` (``reduction='none'``, ``data_range=1.0``, defaults otherwise).
* :func:`rgb_to_lab` and :func:`ciede2000_map` agree with ``skimage.color.rgb2lab`` and
  ``skimage.color.deltaE_ciede2000``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.colour import ciede2000_lab, lab_to_srgb, srgb_to_lab
from pytest_i2i.metrics.functional._tensors import as_float64

__all__ = [
    "ciede2000_map",
    "ciede2000_per_sample",
    "l1_per_sample",
    "lab_to_rgb",
    "ms_ssim_per_sample",
    "psnr_per_sample",
    "rgb_to_lab",
    "ssim_per_sample",
]

_MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _check_images(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise I2IInputError(f"`{name}` must be a torch.Tensor; got {type(x).__name__}")
    if x.ndim != 4:
        raise I2IInputError(f"`{name}` must have shape (N, C, H, W); got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise I2IInputError(
            f"`{name}` must be a float tensor with values in [0, 1]; got dtype {x.dtype}"
            " (for uint8 images use x.float() / 255)"
        )


def _check_pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    _check_images(a, "a")
    _check_images(b, "b")
    if a.shape != b.shape:
        raise I2IInputError(f"`a` and `b` must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    b = b.to(a.device)
    return as_float64(a, "a"), as_float64(b, "b")


def _check_rgb(x: Tensor, name: str) -> None:
    if x.shape[1] != 3:
        raise I2IInputError(f"`{name}` must have 3 (RGB) channels; got shape {tuple(x.shape)}")


def _check_positive(value: float, name: str) -> None:
    if not value > 0:
        raise I2IInputError(f"`{name}` must be positive; got {value}")


def _per_sample_mean(x: Tensor) -> Tensor:
    return x.flatten(1).mean(dim=1).cpu()


# --------------------------------------------------------------------------------------------
# L1 and PSNR
# --------------------------------------------------------------------------------------------


def l1_per_sample(a: Tensor, b: Tensor) -> Tensor:
    r"""Mean absolute error of each image pair.

    .. math:: \text{L1}_n = \frac{1}{CHW} \sum_{c,h,w} |a_{nchw} - b_{nchw}|

    Args:
        a: images, float tensor of shape ``(N, 3, H, W)`` with values in ``[0, 1]``.
        b: images of the same shape as ``a``.

    Returns:
        Float64 CPU tensor of shape ``(N,)``; ``0`` for identical images.

    Raises:
        ValueError: If ``a`` or ``b`` is not a 4-D float tensor, or their shapes differ.

    Example:
        >>> a = torch.zeros(2, 3, 8, 8)
        >>> b = torch.full((2, 3, 8, 8), 0.25)
        >>> l1_per_sample(a, b)
        tensor([0.2500, 0.2500], dtype=torch.float64)

    """
    a, b = _check_pair(a, b)
    return _per_sample_mean((a - b).abs())


def psnr_per_sample(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    r"""Peak signal-to-noise ratio of each image pair, in dB.

    .. math::
        \text{PSNR}_n = 10 \log_{10} \frac{R^2}{\text{MSE}_n}, \qquad
        \text{MSE}_n = \frac{1}{CHW} \sum_{c,h,w} (a_{nchw} - b_{nchw})^2

    where :math:`R` is ``data_range``. Identical images have zero MSE and give ``+inf``.

    Args:
        a: images, float tensor of shape ``(N, 3, H, W)`` with values in ``[0, 1]``.
        b: images of the same shape as ``a``.
        data_range: the value range :math:`R` of the images (``1.0`` for ``[0, 1]`` images).

    Returns:
        Float64 CPU tensor of shape ``(N,)``; ``+inf`` where ``a[n]`` equals ``b[n]``.

    Raises:
        ValueError: If ``a`` or ``b`` is not a 4-D float tensor, their shapes differ, or
            ``data_range`` is not positive.

    Example:
        >>> a = torch.zeros(2, 3, 8, 8)
        >>> b = torch.cat([torch.full((1, 3, 8, 8), 0.5), torch.zeros(1, 3, 8, 8)])
        >>> psnr_per_sample(a, b).round(decimals=4)
        tensor([6.0206,    inf], dtype=torch.float64)

    """
    _check_positive(data_range, "data_range")
    a, b = _check_pair(a, b)
    mse = (a - b).square().flatten(1).mean(dim=1)
    return (10.0 * torch.log10(data_range**2 / mse)).cpu()


# --------------------------------------------------------------------------------------------
# SSIM and MS-SSIM
# --------------------------------------------------------------------------------------------


def _gaussian_window_1d(kernel_size: int, sigma: float, like: Tensor) -> Tensor:
    offsets = torch.arange(kernel_size, dtype=like.dtype, device=like.device) - (kernel_size - 1) / 2
    window = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return window / window.sum()


def _check_ssim_args(kernel_size: int, sigma: float, data_range: float) -> None:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size <= 0 or kernel_size % 2 == 0:
        raise I2IInputError(f"`kernel_size` must be an odd positive int; got {kernel_size!r}")
    _check_positive(sigma, "sigma")
    _check_positive(data_range, "data_range")


def _ssim_maps(
    a: Tensor, b: Tensor, kernel_size: int, sigma: float, k1: float, k2: float, data_range: float
) -> tuple[Tensor, Tensor]:
    """SSIM map and contrast-structure map, both ``(N, C, H, W)``, of float64 images.

    The local statistics are Gaussian-weighted moments over a ``kernel_size`` window. The
    images are reflect-padded by ``kernel_size // 2`` first (torchmetrics' convention), so
    both maps have the input's size; their outer ``kernel_size // 2`` pixels come from windows
    that overlap the reflected border. Callers decide whether to crop.
    """
    n, c, h, w = a.shape
    pad = kernel_size // 2
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2

    # The five moments share one separable (column then row) depthwise blur.
    moments = torch.cat([a, b, a * a, b * b, a * b], dim=0)
    moments = F.pad(moments, (pad, pad, pad, pad), mode="reflect")
    moments = moments.reshape(5 * n * c, 1, h + 2 * pad, w + 2 * pad)
    window = _gaussian_window_1d(kernel_size, sigma, a)
    moments = F.conv2d(moments, window.view(1, 1, kernel_size, 1))
    moments = F.conv2d(moments, window.view(1, 1, 1, kernel_size))
    mu_a, mu_b, e_aa, e_bb, e_ab = moments.reshape(5, n, c, h, w).unbind(0)

    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    # E[x^2] - E[x]^2 can round to a tiny negative number on flat regions.
    var_a = (e_aa - mu_aa).clamp_min(0.0)
    var_b = (e_bb - mu_bb).clamp_min(0.0)
    cov_ab = e_ab - mu_ab

    cs_map = (2.0 * cov_ab + c2) / (var_a + var_b + c2)
    luminance = (2.0 * mu_ab + c1) / (mu_aa + mu_bb + c1)
    return luminance * cs_map, cs_map


def _crop_border(x: Tensor, border: int) -> Tensor:
    if border == 0:
        return x
    return x[..., border:-border, border:-border]


def ssim_per_sample(
    a: Tensor,
    b: Tensor,
    *,
    kernel_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
) -> Tensor:
    r"""Structural similarity (SSIM, Wang et al. 2004) of each image pair.

    With Gaussian-weighted local means :math:`\mu`, variances :math:`\sigma^2` and covariance
    :math:`\sigma_{ab}`, :math:`C_1 = (k_1 R)^2`, :math:`C_2 = (k_2 R)^2` (:math:`R` =
    ``data_range``):

    .. math::
        \text{SSIM}(x) = \frac{(2\mu_a\mu_b + C_1)(2\sigma_{ab} + C_2)}
                              {(\mu_a^2 + \mu_b^2 + C_1)(\sigma_a^2 + \sigma_b^2 + C_2)}

    and the per-sample value is the mean of the SSIM map over channels and pixels.

    Border convention (torchmetrics'): the images are reflect-padded by ``kernel_size // 2``
    and the mean runs over all ``H x W`` positions, border included. (skimage instead crops
    the border from the map, so its values differ slightly.) With the defaults this matches
    ``torchmetrics.functional.image.structural_similarity_index_measure(a, b,
    data_range=1.0, reduction='none')``. torchmetrics derives its Gaussian window size from
    ``sigma`` (``2 * int(3.5 * sigma + 0.5) + 1``, i.e. 11 for 1.5) and ignores its
    ``kernel_size``; here ``kernel_size`` is honoured, so other combinations only match it
    when ``kernel_size`` equals that size.

    Args:
        a: images, float tensor of shape ``(N, 3, H, W)`` with values in ``[0, 1]``.
        b: images of the same shape as ``a``.
        kernel_size: side of the Gaussian window, odd.
        sigma: standard deviation of the Gaussian window, in pixels.
        k1: luminance stabiliser constant.
        k2: contrast stabiliser constant.
        data_range: the value range :math:`R` of the images.

    Returns:
        Float64 CPU tensor of shape ``(N,)`` with values in ``[-1, 1]``; ``1`` for identical images.

    Raises:
        ValueError: If ``a`` or ``b`` is not a 4-D float tensor, their shapes differ, an
            argument is out of range, or ``H`` or ``W`` is smaller than ``kernel_size``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a = torch.rand(2, 3, 32, 32, generator=g)
        >>> ssim_per_sample(a, a)
        tensor([1., 1.], dtype=torch.float64)
        >>> ssim_per_sample(a, 0.75 * a).round(decimals=4)
        tensor([0.9219, 0.9219], dtype=torch.float64)

    """
    _check_ssim_args(kernel_size, sigma, data_range)
    a, b = _check_pair(a, b)
    h, w = a.shape[-2:]
    if h < kernel_size or w < kernel_size:
        raise I2IInputError(
            f"SSIM needs images of at least {kernel_size}x{kernel_size} pixels (the window size); got {h}x{w}"
        )
    ssim_map, _ = _ssim_maps(a, b, kernel_size, sigma, k1, k2, data_range)
    return _per_sample_mean(ssim_map)


def ms_ssim_per_sample(
    a: Tensor,
    b: Tensor,
    *,
    kernel_size: int = 11,
    sigma: float = 1.5,
    betas: Sequence[float] = _MS_SSIM_BETAS,
    data_range: float = 1.0,
) -> Tensor:
    r"""Multi-scale structural similarity (MS-SSIM, Wang et al. 2003) of each image pair.

    At scale :math:`j = 1..M` (``M = len(betas)``; the images are 2x2 average-pooled between
    scales, odd rows/columns dropped), with :math:`cs_j` the mean contrast-structure term and
    :math:`s_M` the mean SSIM at the coarsest scale (see :func:`ssim_per_sample`):

    .. math::
        \text{MS-SSIM} = \operatorname{relu}(s_M)^{\beta_M} \prod_{j=1}^{M-1} \operatorname{relu}(cs_j)^{\beta_j}

    Conventions (torchmetrics', whose default ``normalize='relu'`` is the ``relu`` above): the
    ``cs`` means exclude the ``kernel_size // 2`` reflect-padded border, while ``s_M`` is
    averaged over the whole map, border included. With the defaults this matches
    ``torchmetrics.functional.image.multiscale_structural_similarity_index_measure(a, b,
    data_range=1.0, reduction='none')``. ``k1 = 0.01`` and ``k2 = 0.03`` are fixed.

    Args:
        a: images, float tensor of shape ``(N, 3, H, W)`` with values in ``[0, 1]``.
        b: images of the same shape as ``a``.
        kernel_size: side of the Gaussian window, odd.
        sigma: standard deviation of the Gaussian window, in pixels.
        betas: exponent of each scale, finest first; its length is the number of scales.
        data_range: the value range :math:`R` of the images.

    Returns:
        Float64 CPU tensor of shape ``(N,)`` with values in ``[0, 1]``; ``1`` for identical images.

    Raises:
        ValueError: If ``a`` or ``b`` is not a 4-D float tensor, their shapes differ, an
            argument is out of range, or ``H`` or ``W`` is below
            ``kernel_size * 2 ** (len(betas) - 1)`` (176 with the defaults), the size at which
            the coarsest scale still holds one window.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a = torch.rand(1, 3, 176, 176, generator=g)
        >>> ms_ssim_per_sample(a, a)
        tensor([1.], dtype=torch.float64)
        >>> ms_ssim_per_sample(a, 0.75 * a).round(decimals=4)
        tensor([0.9627], dtype=torch.float64)

    """
    _check_ssim_args(kernel_size, sigma, data_range)
    betas = tuple(float(beta) for beta in betas)
    if not betas or any(not beta >= 0 for beta in betas):
        raise I2IInputError(f"`betas` must be a non-empty sequence of non-negative numbers; got {betas}")
    a, b = _check_pair(a, b)
    h, w = a.shape[-2:]
    min_side = kernel_size * 2 ** (len(betas) - 1)
    if h < min_side or w < min_side:
        raise I2IInputError(
            f"MS-SSIM with {len(betas)} scales and a {kernel_size}-pixel window needs images of at least"
            f" {min_side}x{min_side} pixels; got {h}x{w}"
        )

    result = torch.ones(a.shape[0], dtype=torch.float64, device=a.device)
    last = len(betas) - 1
    for scale, beta in enumerate(betas):
        ssim_map, cs_map = _ssim_maps(a, b, kernel_size, sigma, 0.01, 0.03, data_range)
        if scale < last:
            term = _crop_border(cs_map, kernel_size // 2).flatten(1).mean(dim=1)
            a = F.avg_pool2d(a, 2)
            b = F.avg_pool2d(b, 2)
        else:
            term = ssim_map.flatten(1).mean(dim=1)
        result = result * term.clamp_min(0.0) ** beta
    return result.cpu()


# --------------------------------------------------------------------------------------------
# CIELAB and CIEDE2000
# --------------------------------------------------------------------------------------------


def rgb_to_lab(x: Tensor) -> Tensor:
    r"""Convert sRGB images to CIELAB (D65 white, 2 degree observer).

    The sRGB values are linearised (:math:`v/12.92` for :math:`v \le 0.04045`, else
    :math:`((v + 0.055)/1.055)^{2.4}`), mapped to XYZ with the sRGB matrix, divided by the
    D65 white :math:`(0.95047, 1, 1.08883)` and then

    .. math::
        L^* = 116 f(Y) - 16, \quad a^* = 500 (f(X) - f(Y)), \quad b^* = 200 (f(Y) - f(Z)),

    with :math:`f(t) = t^{1/3}` for :math:`t > 0.008856`, else :math:`7.787 t + 16/116`. The
    constants are skimage's, so the result matches ``skimage.color.rgb2lab`` to float64
    precision.

    Args:
        x: images, float tensor of shape ``(N, 3, H, W)``, sRGB values in ``[0, 1]``.

    Returns:
        Float64 CPU tensor of shape ``(N, 3, H, W)`` holding :math:`(L^*, a^*, b^*)`;
        :math:`L^*` is in ``[0, 100]``.

    Raises:
        ValueError: If ``x`` is not a 4-D float tensor with 3 channels.

    Example:
        >>> black_and_red = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 0.0]).view(2, 3, 1, 1)
        >>> rgb_to_lab(black_and_red).flatten(1).round(decimals=2)
        tensor([[ 0.0000,  0.0000,  0.0000],
                [53.2400, 80.0900, 67.2000]], dtype=torch.float64)

    """
    _check_images(x, "x")
    _check_rgb(x, "x")
    return srgb_to_lab(as_float64(x, "x")).cpu()


def lab_to_rgb(lab: Tensor, *, clip: bool = True) -> Tensor:
    r"""Convert CIELAB (D65 white, 2 degree observer) to sRGB, the inverse of :func:`rgb_to_lab`.

    With :math:`f_y = (L^* + 16)/116`, :math:`f_x = f_y + a^*/500`, :math:`f_z = \max(f_y - b^*/200, 0)`,
    :math:`t = f^3` for :math:`f > 0.2068966`, else :math:`(f - 16/116)/7.787`; XYZ is :math:`t`
    times the D65 white, mapped to linear sRGB with the inverse sRGB matrix, negatives set to 0,
    and gamma-encoded (:math:`12.92 v` for :math:`v \le 0.0031308`, else :math:`1.055 v^{1/2.4} - 0.055`).
    These are skimage's constants, so the result matches ``skimage.color.lab2rgb``.

    Args:
        lab: float tensor of shape ``(N, 3, H, W)`` holding :math:`(L^*, a^*, b^*)`.
        clip: clip the result to ``[0, 1]`` (colours outside the sRGB gamut), as skimage does.

    Returns:
        Float64 CPU tensor of shape ``(N, 3, H, W)``, sRGB.

    Raises:
        I2IInputError: If ``lab`` is not a 4-D float tensor with 3 channels.

    Example:
        >>> red = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
        >>> lab_to_rgb(red).flatten().round(decimals=6)
        tensor([1., 0., 0.], dtype=torch.float64)

    """
    _check_images(lab, "lab")
    _check_rgb(lab, "lab")
    rgb = lab_to_srgb(as_float64(lab, "lab"))
    return (rgb.clamp(0.0, 1.0) if clip else rgb).cpu()


def ciede2000_map(a: Tensor, b: Tensor) -> Tensor:
    r"""Per-pixel CIEDE2000 colour difference :math:`\Delta E_{00}` between two sRGB image batches.

    Both batches are converted with :func:`rgb_to_lab`; then, with Sharma et al. (2005)'s
    notation and :math:`k_L = k_C = k_H = 1`,

    .. math::
        \Delta E_{00} = \sqrt{\left(\frac{\Delta L'}{S_L}\right)^2 + \left(\frac{\Delta C'}{S_C}\right)^2
                        + \left(\frac{\Delta H'}{S_H}\right)^2
                        + R_T \frac{\Delta C'}{S_C} \frac{\Delta H'}{S_H}}

    where :math:`a' = (1 + G) a^*` re-scales :math:`a^*` by the mean chroma,
    :math:`\Delta H' = 2\sqrt{C'_1 C'_2} \sin(\Delta h'/2)`, :math:`S_L, S_C, S_H` are the
    lightness, chroma and hue weights and :math:`R_T` the blue-region rotation term. Matches
    ``skimage.color.deltaE_ciede2000(rgb2lab(a), rgb2lab(b), channel_axis=...)``.

    Args:
        a: reference images, float tensor of shape ``(N, 3, H, W)``, sRGB values in ``[0, 1]``.
        b: images of the same shape as ``a``.

    Returns:
        Float64 CPU tensor of shape ``(N, H, W)``, non-negative; ``0`` where the pixels are equal.

    Raises:
        ValueError: If ``a`` or ``b`` is not a 4-D float tensor with 3 channels, or their shapes differ.

    Example:
        >>> a = torch.zeros(1, 3, 1, 2)  # two black pixels
        >>> b = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 0.0]).view(1, 3, 1, 2)  # black, red
        >>> ciede2000_map(a, b).round(decimals=4)
        tensor([[[ 0.0000, 50.4112]]], dtype=torch.float64)

    """
    a, b = _check_pair(a, b)
    _check_rgb(a, "a")
    return ciede2000_lab(srgb_to_lab(a), srgb_to_lab(b)).cpu()


def ciede2000_per_sample(a: Tensor, b: Tensor) -> Tensor:
    r"""Mean CIEDE2000 colour difference of each image pair.

    .. math:: \overline{\Delta E}_{00,n} = \frac{1}{HW} \sum_{h,w} \Delta E_{00}(a_{n,:,h,w}, b_{n,:,h,w})

    with the per-pixel :math:`\Delta E_{00}` of :func:`ciede2000_map` (sRGB -> CIELAB D65,
    Sharma et al. 2005, :math:`k_L = k_C = k_H = 1`). About 1 is a just-noticeable difference.

    Args:
        a: reference images, float tensor of shape ``(N, 3, H, W)``, sRGB values in ``[0, 1]``.
        b: images of the same shape as ``a``.

    Returns:
        Float64 CPU tensor of shape ``(N,)``; ``0`` for identical images.

    Raises:
        ValueError: If ``a`` or ``b`` is not a 4-D float tensor with 3 channels, or their shapes differ.

    Example:
        >>> a = torch.zeros(1, 3, 1, 2)  # two black pixels
        >>> b = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 0.0]).view(1, 3, 1, 2)  # black, red
        >>> ciede2000_per_sample(a, b).round(decimals=4)
        tensor([25.2056], dtype=torch.float64)

    """
    return ciede2000_map(a, b).flatten(1).mean(dim=1)
