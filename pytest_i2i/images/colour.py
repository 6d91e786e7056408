"""Colour spaces: sRGB ⇄ CIELAB (D65, 2 degree observer) and the CIEDE2000 colour difference.

The tensor maths shared by the colour metric (:mod:`pytest_i2i.metrics.functional.paired`, whose
public functions check their inputs and document the formulas) and the colour perturbations
(:mod:`pytest_i2i.perturb.ops`). Inputs are ``(N, 3, H, W)`` float tensors; results keep their
dtype and device and are not checked here. The constants are scikit-image's, so
:func:`srgb_to_lab` / :func:`lab_to_srgb` match ``skimage.color.rgb2lab`` / ``lab2rgb`` to float64
precision.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# sRGB (D65) -> CIE XYZ, the matrix skimage uses (``skimage.color.colorconv.xyz_from_rgb``).
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# D65, 2 degree observer, as skimage has it (its historical ``lab_ref_white``).
_D65_2DEG_WHITE = (0.95047, 1.0, 1.08883)


def srgb_to_lab(x: Tensor) -> Tensor:
    """sRGB (N, 3, H, W) in [0, 1] → CIELAB (D65 white, 2 degree observer), same dtype and device.

    skimage's constants (``skimage.color.rgb2lab``); the formulas are in
    :func:`pytest_i2i.metrics.functional.paired.rgb_to_lab`, the checked public front-end.
    """
    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    matrix = torch.tensor(_XYZ_FROM_RGB, dtype=x.dtype, device=x.device)
    white = torch.tensor(_D65_2DEG_WHITE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    t = torch.einsum("ij,njhw->nihw", matrix, linear) / white
    # skimage's CIE constants (0.008856 and 7.787, not the exact 216/24389 and 841/108).
    f = torch.where(t > 0.008856, t.clamp_min(0.008856) ** (1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_srgb(lab: Tensor) -> Tensor:
    """CIELAB (N, 3, H, W) → sRGB, same dtype and device, not clipped: the inverse of :func:`srgb_to_lab`
    (skimage's ``lab2rgb`` constants; formulas in :func:`pytest_i2i.metrics.functional.paired.lab_to_rgb`)."""
    l_star, a_star, b_star = lab.unbind(1)
    fy = (l_star + 16.0) / 116.0
    fx = a_star / 500.0 + fy
    fz = (fy - b_star / 200.0).clamp_min(0.0)  # skimage clips negative z the same way
    f = torch.stack([fx, fy, fz], dim=1)
    t = torch.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / 7.787)
    white = torch.tensor(_D65_2DEG_WHITE, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    inverse = torch.linalg.inv(torch.tensor(_XYZ_FROM_RGB, dtype=torch.float64)).to(lab.dtype).to(lab.device)
    linear = torch.einsum("ij,njhw->nihw", inverse, t * white)
    linear = linear.clamp_min(0.0)  # out-of-gamut negatives; the power below needs x >= 0
    return torch.where(linear > 0.0031308, 1.055 * linear ** (1.0 / 2.4) - 0.055, 12.92 * linear)


def ciede2000_lab(lab1: Tensor, lab2: Tensor) -> Tensor:
    """CIEDE2000 (Sharma et al. 2005, kL = kC = kH = 1) between two ``(N, 3, H, W)`` Lab tensors:
    ``(N, H, W)``, same dtype and device (formula in :func:`pytest_i2i.metrics.functional.paired.ciede2000_map`)."""
    l1, a1, b1 = lab1.unbind(1)
    l2, a2, b2 = lab2.unbind(1)
    two_pi = 2.0 * math.pi

    # a* is stretched according to the mean chroma; everything below is in these "prime" coordinates.
    c_mean = 0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))
    c_mean7 = c_mean**7
    g = 0.5 * (1.0 - torch.sqrt(c_mean7 / (c_mean7 + 25.0**7)))
    a1p = (1.0 + g) * a1
    a2p = (1.0 + g) * a2
    c1p = torch.hypot(a1p, b1)
    c2p = torch.hypot(a2p, b2)
    h1p = torch.atan2(b1, a1p)
    h2p = torch.atan2(b2, a2p)
    h1p = torch.where(h1p < 0, h1p + two_pi, h1p)
    h2p = torch.where(h2p < 0, h2p + two_pi, h2p)

    delta_l = l2 - l1
    delta_c = c2p - c1p
    chroma_product = c1p * c2p
    achromatic = chroma_product == 0  # a hue is undefined; Sharma et al. set delta h' = 0

    h_diff = h2p - h1p
    wraps = h_diff.abs() > math.pi
    delta_h = torch.where(h_diff > math.pi, h_diff - two_pi, torch.where(h_diff < -math.pi, h_diff + two_pi, h_diff))
    delta_h = torch.where(achromatic, torch.zeros_like(delta_h), delta_h)
    delta_big_h = 2.0 * torch.sqrt(chroma_product) * torch.sin(delta_h / 2.0)

    l_bar = 0.5 * (l1 + l2)
    c_bar = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    h_bar = torch.where(
        achromatic,
        h_sum,  # not halved (Sharma et al. eq. 14); moot, as delta H' = 0 here
        torch.where(wraps, torch.where(h_sum < two_pi, h_sum + two_pi, h_sum - two_pi), h_sum) / 2.0,
    )

    t = (
        1.0
        - 0.17 * torch.cos(h_bar - math.radians(30.0))
        + 0.24 * torch.cos(2.0 * h_bar)
        + 0.32 * torch.cos(3.0 * h_bar + math.radians(6.0))
        - 0.20 * torch.cos(4.0 * h_bar - math.radians(63.0))
    )
    l_offset2 = (l_bar - 50.0) ** 2
    s_l = 1.0 + 0.015 * l_offset2 / torch.sqrt(20.0 + l_offset2)
    s_c = 1.0 + 0.045 * c_bar
    s_h = 1.0 + 0.015 * c_bar * t
    c_bar7 = c_bar**7
    r_c = 2.0 * torch.sqrt(c_bar7 / (c_bar7 + 25.0**7))
    delta_theta = math.radians(30.0) * torch.exp(-(((torch.rad2deg(h_bar) - 275.0) / 25.0) ** 2))
    r_t = -torch.sin(2.0 * delta_theta) * r_c

    l_term = delta_l / s_l
    c_term = delta_c / s_c
    h_term = delta_big_h / s_h
    delta_e2 = l_term**2 + c_term**2 + h_term**2 + r_t * c_term * h_term
    # The quadratic form is positive definite; only rounding can take it below zero.
    return torch.sqrt(delta_e2.clamp_min(0.0))
