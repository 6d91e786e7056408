"""Controlled perturbations: local edits of known region, area and strength, and global nuisances.

>>> import torch
>>> from pytest_i2i.perturb import local_edit
>>> p = local_edit(torch.rand(3, 64, 64), "gaussian_blur", area=0.05, region="box", seed=1)
>>> sorted(p.params)[:3], p.image.shape, int(p.mask.sum())
(['op', 'region', 'seed'], torch.Size([3, 64, 64]), 205)

Every function takes a float32 ``(3, H, W)`` image in ``[0, 1]`` (the format of
:func:`pytest_i2i.load_images` / :func:`pytest_i2i.sample_images`) and returns a frozen
:class:`Perturbation` ``(image, mask, params)``; ``params`` is JSON-able.
"""

from pytest_i2i.perturb.base import MAX_AREA, MIN_AREA, Perturbation, Region
from pytest_i2i.perturb.nuisances import (
    NUISANCES, apply_nuisance, global_brightness, jpeg_q95, resize_round_trip, shift,
)
from pytest_i2i.perturb.ops import (
    OPS, OpSpec, brightness_contrast, colour_shift, copy_move, erase_fill, gaussian_blur, gaussian_noise, get_op,
    insert_object, jpeg, local_edit, local_warp, patch_shuffle,
)
from pytest_i2i.perturb.regions import REGION_KINDS, blob, box, ellipse, given, make_region

__all__ = [
    "MAX_AREA", "MIN_AREA", "NUISANCES", "OPS", "REGION_KINDS", "OpSpec", "Perturbation", "Region",
    "apply_nuisance", "blob", "box", "brightness_contrast", "colour_shift", "copy_move", "ellipse", "erase_fill",
    "gaussian_blur", "gaussian_noise", "get_op", "given", "global_brightness", "insert_object", "jpeg",
    "jpeg_q95", "local_edit", "local_warp", "make_region", "patch_shuffle", "resize_round_trip", "shift",
]
