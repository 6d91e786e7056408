"""Train the small pix2pix colorization demo generator (grayscale -> colour) on a CPU in minutes.

The objective is the paper's (Isola et al. 2017): a conditional LSGAN through a PatchGAN that sees
``cat(condition, candidate)``, plus ``lambda * L1`` with ``lambda = 100``; Adam, lr 2e-4, betas
(0.5, 0.999). The data are random ``crop`` x ``crop`` crops (with random horizontal flips) of the
colour photos bundled with scikit-image (:data:`~pytest_i2i.images.COLOR_PHOTOS`), each photo first
resized so its shorter side is ``shorter_side``; the input is the crop's ITU-R BT.601 luma (Pillow
``convert("L")``, as :func:`~pytest_i2i.data.sample_dataset` makes it) replicated to 3 channels,
the target the colour crop, both in [-1, 1]. There is no finite training set, so an "epoch" is a
fixed number of steps (``steps_per_epoch``).

Everything random is seeded (``torch.manual_seed`` for weights and dropout, a numpy ``Generator``
for the crops) and ``torch.use_deterministic_algorithms(True)`` is on, so the same command on
the same torch version, CPU and thread count writes the same checkpoint bytes.

Only the generator's ``state_dict`` is saved; it loads with
``pytest_i2i.load_generator(path, arch="pix2pix-unet128-ngf8")`` (or by detection)::

    python -m pytest_i2i.generators.train_pix2pix --out demo/colorize_unet128.pth
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pytest_i2i.errors import I2IInputError
from pytest_i2i.files import sha256_file
from pytest_i2i.generators.pix2pix import NLayerDiscriminator, UnetGenerator

#: U-Net down levels of ``unet_128`` (inputs need sides divisible by 2**7 = 128).
UNET128_DOWNS = 7


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (the defaults made ``demo/colorize_unet128.pth``)."""

    steps: int = 1500
    steps_per_epoch: int = 100
    batch_size: int = 8
    crop: int = 128
    shorter_side: int = 192
    ngf: int = 8
    ndf: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_l1: float = 100.0
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        for name in ("steps_per_epoch", "batch_size", "crop", "shorter_side", "ngf", "ndf", "threads"):
            if int(getattr(self, name)) < 1:
                raise I2IInputError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.steps < 0:
            raise I2IInputError(f"steps must be >= 0, got {self.steps!r}")
        side = 2 ** UNET128_DOWNS
        if self.crop % side:
            raise I2IInputError(f"crop must be a multiple of {side} for a unet_128 generator, got {self.crop}")
        if self.shorter_side < self.crop:
            raise I2IInputError(f"shorter_side ({self.shorter_side}) must be >= crop ({self.crop})")


@dataclass
class TrainResult:
    """The trained generator (in eval mode), per-epoch mean losses and the training wall time."""

    generator: UnetGenerator
    epochs: list[dict[str, float]] = field(default_factory=list)
    wall_time_s: float = 0.0


def build_generator(ngf: int = 8) -> UnetGenerator:
    """The demo's generator: ``unet_128`` with batch norm and dropout (the pix2pix setting), width ``ngf``."""
    return UnetGenerator(UNET128_DOWNS, ngf=ngf, norm="batch", use_dropout=True)


def training_photos(shorter_side: int = 192) -> list[np.ndarray]:
    """The bundled colour photos as HWC uint8 arrays, resized (Pillow bicubic) to ``shorter_side``."""
    from PIL import Image

    from pytest_i2i.images.samples import COLOR_PHOTOS, sample_photo

    photos = []
    for name in COLOR_PHOTOS:
        img = Image.fromarray(sample_photo(name))
        scale = shorter_side / min(img.size)
        size = (max(shorter_side, round(img.size[0] * scale)), max(shorter_side, round(img.size[1] * scale)))
        photos.append(np.asarray(img.resize(size, Image.Resampling.BICUBIC)))
    return photos


def gray_input(color: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an HWC uint8 colour image, replicated to 3 channels (as in ``sample_dataset``)."""
    from PIL import Image

    luma = np.asarray(Image.fromarray(color).convert("L"))
    return np.repeat(luma[:, :, None], 3, axis=2)


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """NHWC uint8 -> NCHW float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def random_batch(photos: Sequence[np.ndarray], rng: np.random.Generator, batch_size: int,
                 crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(gray inputs, colour targets)``, each (batch_size, 3, crop, crop) in [-1, 1]: random crops and flips."""
    grays, colors = [], []
    for _ in range(batch_size):
        photo = photos[int(rng.integers(len(photos)))]
        top = int(rng.integers(photo.shape[0] - crop + 1))
        left = int(rng.integers(photo.shape[1] - crop + 1))
        patch = photo[top:top + crop, left:left + crop]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        patch = np.ascontiguousarray(patch)
        colors.append(patch)
        grays.append(gray_input(patch))
    return to_model_range(np.stack(grays)), to_model_range(np.stack(colors))


def chroma(images: torch.Tensor) -> float:
    """Mean over pixels of the standard deviation across the R, G, B channels: 0 for a gray image.

    Args:
        images: (N, 3, H, W) in [0, 1].
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise I2IInputError(f"images must be (N, 3, H, W) RGB, got shape {tuple(images.shape)}")
    return float(images.float().std(dim=1, unbiased=False).mean())


def evaluate(generator: nn.Module, size: int = 128) -> dict[str, float]:
    """Mean L1 to the colour targets (in [0, 1] units) and the chroma of inputs, outputs and targets
    on :func:`~pytest_i2i.data.sample_dataset` (``size`` x ``size``); the generator runs in eval mode."""
    from pytest_i2i.images.samples import colorization_pairs

    pairs = colorization_pairs(size)
    gray = to_model_range(np.stack([g for _, g, _ in pairs]))
    color = to_model_range(np.stack([c for _, _, c in pairs]))
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        out = generator(gray)
    generator.train(was_training)
    to01 = lambda t: (t + 1) / 2  # noqa: E731
    return {
        "l1": float((to01(out) - to01(color)).abs().mean()),
        "chroma_input": chroma(to01(gray)),
        "chroma_output": chroma(to01(out)),
        "chroma_target": chroma(to01(color)),
    }


def train(cfg: TrainConfig, log: Callable[[str], None] = lambda _: None) -> TrainResult:
    """Train the generator of ``cfg``; deterministic for a given torch version, CPU and ``cfg.threads``.

    Every ``cfg.steps_per_epoch`` steps (and at the end) ``log`` gets one line with the epoch's mean
    losses: ``D`` (LSGAN, halved as in pix2pix), ``G_gan`` (LSGAN), ``G_L1`` (unweighted mean |G(x) - y|
    in [-1, 1] units) and the total generator loss ``G_gan + lambda_l1 * G_L1``. The caller's thread
    count, deterministic-algorithms flag and global torch RNG state are restored afterwards.
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return _train(cfg, log)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(cfg: TrainConfig, log: Callable[[str], None]) -> TrainResult:
    rng = np.random.default_rng(cfg.seed)
    generator = build_generator(cfg.ngf)
    disc = NLayerDiscriminator(3, input_nc=6, ndf=cfg.ndf, norm="batch")
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    photos = training_photos(cfg.shorter_side)
    generator.train()
    disc.train()

    result = TrainResult(generator)
    sums: dict[str, float] = {}
    count = 0
    start = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        gray, color = random_batch(photos, rng, cfg.batch_size, cfg.crop)
        fake = generator(gray)

        opt_d.zero_grad(set_to_none=True)
        pred_real = disc(torch.cat([gray, color], 1))
        pred_fake = disc(torch.cat([gray, fake.detach()], 1))
        loss_d = 0.5 * (mse(pred_real, torch.ones_like(pred_real)) + mse(pred_fake, torch.zeros_like(pred_fake)))
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        pred_fake = disc(torch.cat([gray, fake], 1))
        loss_gan = mse(pred_fake, torch.ones_like(pred_fake))
        loss_l1 = l1(fake, color)
        loss_g = loss_gan + cfg.lambda_l1 * loss_l1
        loss_g.backward()
        opt_g.step()

        for key, value in (("D", loss_d), ("G_gan", loss_gan), ("G_L1", loss_l1), ("G", loss_g)):
            sums[key] = sums.get(key, 0.0) + value.item()
        count += 1
        if step % cfg.steps_per_epoch == 0 or step == cfg.steps:
            epoch = {"epoch": len(result.epochs) + 1, "step": step, **{k: v / count for k, v in sums.items()},
                     "elapsed_s": time.perf_counter() - start}
            result.epochs.append(epoch)
            log("epoch {epoch:3d}  step {step:5d}  D {D:.4f}  G_gan {G_gan:.4f}  G_L1 {G_L1:.4f}  "
                "G {G:.3f}  ({elapsed_s:.1f} s)".format(**epoch))
            sums, count = {}, 0
    result.wall_time_s = time.perf_counter() - start
    generator.eval()
    return result


def _parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m pytest_i2i.generators.train_pix2pix",
                                description=(__doc__ or "").split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="where to write the generator state_dict (.pth)")
    p.add_argument("--log", type=Path, default=None, help="training log (default: TRAINING_LOG.txt next to --out)")
    for name, value in asdict(d).items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, help=f"default {value}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: train, save the generator state_dict, write the log."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    cfg = TrainConfig(**{k: getattr(args, k) for k in asdict(TrainConfig())})
    log_path = args.log or args.out.parent / "TRAINING_LOG.txt"
    lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    log("pix2pix colorization demo (grayscale -> colour), conditional LSGAN + lambda*L1 through a PatchGAN")
    log("command: python -m pytest_i2i.generators.train_pix2pix " + shlex.join(argv))
    log(f"seed: {cfg.seed}")
    log(f"torch: {torch.__version__}   numpy: {np.__version__}   threads: {cfg.threads}")
    log("config: " + ", ".join(f"{k}={v}" for k, v in asdict(cfg).items()))
    result = train(cfg, log)
    log(f"training wall time: {result.wall_time_s:.1f} s")
    scores = evaluate(result.generator, cfg.crop)
    log("sample_dataset({}) after training: L1 to targets {l1:.4f}; chroma (mean per-pixel std over RGB, [0, 1]): "
        "input {chroma_input:.4f}, output {chroma_output:.4f}, target {chroma_target:.4f}".format(cfg.crop, **scores))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result.generator.state_dict(), args.out)
    log(f"checkpoint: {args.out} ({args.out.stat().st_size} bytes)")
    log(f"checkpoint sha256: {sha256_file(args.out)}")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
