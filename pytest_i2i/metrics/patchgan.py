"""`patchgan_realism`: how real a user's trained pix2pix discriminator finds each output, patch by patch.

The conditional PatchGAN of pix2pix scores ``cat(condition, candidate)`` (both in [-1, 1]) with
one logit per overlapping patch (70x70 for ``n_layers=3``). The per-pair value is the mean of
``sigmoid(logit)`` over the patch grid (higher is better: "looks real to D"); the maps go to
``extra["maps"]`` for heat maps. The score is only as meaningful as the discriminator: it comes
from the user's own training run, not from published reference weights.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from pytest_i2i.checkpoint import load_state_dict_file
from pytest_i2i.files import sha256_file
from pytest_i2i.errors import I2IInputError
from pytest_i2i.generators.pix2pix import NLayerDiscriminator
from pytest_i2i.distributed import map_shards
from pytest_i2i.images.imageset import as_pairs, iter_pair_batches
from pytest_i2i.metrics.base import frontend, per_sample_result, timed
from pytest_i2i.metrics.registry import DEFAULT_BATCH_SIZE, DEFAULT_CONFIDENCE, DEFAULT_N_RESAMPLES, DEFAULT_SEED
from pytest_i2i.result import MetricResult


@frontend
def patchgan_realism(
    outputs: Any,
    inputs: Any,
    *,
    discriminator: nn.Module | str | os.PathLike,
    device: str | torch.device | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    n_layers: int = 3,
    norm: str = "batch",
    ndf: int = 64,
    resize: str = "clean",
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Mean per-patch ``sigmoid(D(cat(input, output)))`` of a conditional PatchGAN, per pair (higher is better).

    Args:
        outputs: the candidate images (generator outputs), paired by position with ``inputs``.
        inputs: the condition images the outputs were generated from; an input whose size differs
            from its output is resized to the output's size with ``resize`` (a note is recorded).
        discriminator: an ``nn.Module`` taking (N, 6, H, W) in [-1, 1] and returning (N, 1, h, w)
            logits (run in eval mode; its training flag is restored), or a path to its state_dict
            (e.g. ``latest_net_D.pth``), read with ``weights_only=True`` into a
            :class:`~pytest_i2i.generators.pix2pix.NLayerDiscriminator` of ``n_layers`` / ``norm`` / ``ndf``.
        device: where the discriminator runs (default: a module's own device, else CPU).
        batch_size: pairs per forward pass.
        n_layers, norm, ndf: the discriminator's layout when ``discriminator`` is a path
            (pix2pix's ``--netD basic`` is ``n_layers=3``, ``norm="batch"``, ``ndf=64``).
        resize: resize mode for pairs of different size.
        confidence, n_resamples, seed: of the percentile-bootstrap CI of the mean.

    Returns:
        A :class:`MetricResult` named ``"patchgan_realism"`` with ``per_sample`` means, ``ci``,
        ``weights_sha256`` of a discriminator file, and ``extra``: ``maps`` (per pair, nested lists
        h x w of probabilities) and ``grids`` (per pair, ``[h, w]``).

    Raises:
        I2IInputError: mismatched pair counts, bad images, an unreadable or ill-fitting
            discriminator file, a discriminator that fails on the pairs or does not return
            (N, 1, h, w) finite logits.

    Example:
        >>> import torch, pytest_i2i
        >>> from pytest_i2i.generators.pix2pix import NLayerDiscriminator
        >>> d = NLayerDiscriminator(n_layers=1, ndf=8)
        >>> r = pytest_i2i.patchgan_realism(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), discriminator=d)
        >>> 0.0 < r.value < 1.0
        True
    """
    with timed() as t:
        model, name, sha = _discriminator(discriminator, n_layers=n_layers, norm=norm, ndf=ndf)
        dev = torch.device(device) if device is not None else _device_of(model)
        so, si = as_pairs(outputs, inputs, names=("outputs", "inputs"))

        def shard(indices: range) -> tuple[torch.Tensor, list, list[str]]:
            sub_o, sub_i = so.subset(indices), si.subset(indices)
            values = torch.empty(len(indices), dtype=torch.float64)
            maps: list[list[list[float]]] = [[] for _ in indices]
            notes: list[str] = []
            with torch.inference_mode():
                for idx, out, inp, batch_notes in iter_pair_batches(sub_o, sub_i, batch_size, resize=resize,
                                                                    start=indices.start):
                    notes += batch_notes
                    prob = _realism_maps(model, inp.to(dev), out.to(dev), [sub_o.names[i] for i in idx])
                    values[idx] = prob.mean(dim=(1, 2)).double().cpu()
                    for j, i in enumerate(idx):
                        maps[i] = prob[j].cpu().tolist()
            return values, maps, notes

        was_training = model.training
        model.to(dev).eval()
        try:
            values, maps, notes = map_shards(len(so), batch_size, shard)
        finally:
            model.train(was_training)
    return per_sample_result(
        "patchgan_realism", values, so.names, higher_is_better=True, confidence=confidence,
        n_resamples=n_resamples, seed=seed, backbone=name, weights_sha256=sha, resize=resize,
        wall_time_s=t.seconds, warnings=notes,
        extra={"maps": maps, "grids": [[len(m), len(m[0])] for m in maps]},
    )


def _discriminator(d: nn.Module | str | os.PathLike, *, n_layers: int, norm: str, ndf: int
                   ) -> tuple[nn.Module, str, str | None]:
    """``(module, name for the result, sha256 of its file or None)``."""
    if isinstance(d, nn.Module):
        return d, f"discriminator:{type(d).__name__}", None
    if not isinstance(d, (str, os.PathLike)):
        raise I2IInputError(f"discriminator must be an nn.Module or a path to a state_dict, got {type(d).__name__}")
    if not os.path.isfile(d):
        raise I2IInputError(f"discriminator file {os.fspath(d)} does not exist")
    model = NLayerDiscriminator(n_layers, input_nc=6, ndf=ndf, norm=norm)
    load_state_dict_file(model, d, what=f"PatchGAN discriminator (n_layers={n_layers}, norm={norm!r}, ndf={ndf})")
    return model, f"patchgan-n{n_layers}-{norm}", sha256_file(d)


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _realism_maps(model: nn.Module, condition: torch.Tensor, candidate: torch.Tensor, names: list[str]) -> torch.Tensor:
    """(N, h, w) ``sigmoid`` of the discriminator's logits for [0, 1] images, mapped to [-1, 1] as pix2pix trains."""
    x = torch.cat([condition, candidate], 1) * 2.0 - 1.0
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    try:
        logits = model(x.to(dtype))
    except Exception as e:  # noqa: BLE001 - channel / size mismatches raise RuntimeError, user modules anything
        raise I2IInputError(f"the discriminator failed on pairs {', '.join(names[:3])} "
                            f"(input {tuple(x.shape)}): {type(e).__name__}: {str(e)[:300]}") from None
    if not (isinstance(logits, torch.Tensor) and logits.dim() == 4 and logits.shape[:2] == (len(names), 1)):
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise I2IInputError(f"the discriminator must return (N, 1, h, w) logits; got {got} for {len(names)} pairs")
    bad = ~torch.isfinite(logits.flatten(1)).all(1)
    if bad.any():
        raise I2IInputError("the discriminator gave non-finite logits for "
                            + ", ".join(names[i] for i in bad.nonzero().flatten()[:3].tolist()))
    return torch.sigmoid(logits[:, 0].float())
