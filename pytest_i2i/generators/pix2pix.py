"""The pix2pix / CycleGAN generator and discriminator families (Isola et al. 2017; Zhu et al. 2017).

Independent implementations whose ``state_dict`` keys and shapes are those written by the widely
used training code (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``), so a user's
``latest_net_G.pth`` / ``latest_net_D.pth`` loads unchanged:

- :class:`UnetGenerator` (``unet_256``: 8 down levels, ``unet_128``: 7): nested skip blocks,
  keys ``model.model.0.weight``, ``model.model.1.model.1.weight``, ... (one ``.model.<i>`` per level).
- :class:`ResnetGenerator` (``resnet_9blocks``, ``resnet_6blocks``): keys ``model.<i>...`` with
  residual blocks ``model.<i>.conv_block.<j>...``.
- :class:`NLayerDiscriminator` (PatchGAN; ``n_layers=3`` has a 70x70 receptive field) and
  :class:`PixelDiscriminator` (1x1 "PixelGAN").

Norms as in that code: ``"batch"`` is ``BatchNorm2d(affine=True, track_running_stats=True)``
(the pix2pix default); ``"instance"`` is ``InstanceNorm2d(affine=False, track_running_stats=False)``
(the CycleGAN default) and then the convolutions before a norm have a bias; ``"none"`` has no norm.

Importing this module registers the generator architectures ``pix2pix-unet256``,
``pix2pix-unet128``, ``pix2pix-resnet9``, ``pix2pix-resnet6`` (batch norm, dropout on, as
pix2pix trains them) and their ``-instance`` variants (instance norm, and no dropout for the
ResNets, as CycleGAN trains them), and ``pix2pix-unet128-ngf8`` (``pix2pix-unet128`` with ngf=8, the
demo colorization checkpoint's). All take and return images in [-1, 1] (tanh head).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache, partial

import torch
from torch import nn

from pytest_i2i.errors import I2IInputError
from pytest_i2i.generators.registry import GeneratorArch, register_generator_arch

NORMS = ("batch", "instance", "none")


def _norm(norm: str) -> tuple[Callable[[int], nn.Module], bool]:
    """``(make_norm(channels), conv_bias)`` for ``norm``; convs before a norm have a bias only with instance norm."""
    if norm == "batch":
        return (lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)), False
    if norm == "instance":
        return (lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)), True
    if norm == "none":
        return (lambda c: nn.Identity()), False
    raise I2IInputError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}")


class UnetSkipBlock(nn.Module):
    """One U-Net level: ``down -> inner level -> up``, its output concatenated with its input.

    ``self.model`` holds, by index (the reference layout):
    outermost ``[down conv, inner, ReLU, up convT, Tanh]`` (no skip concat, no norm);
    innermost ``[LeakyReLU, down conv, ReLU, up convT, norm]``;
    other ``[LeakyReLU, down conv, norm, inner, ReLU, up convT, norm, (Dropout)]``.
    """

    def __init__(self, outer_nc: int, inner_nc: int, *, inner: nn.Module | None, in_nc: int | None = None,
                 outermost: bool = False, norm: str = "batch", use_dropout: bool = False) -> None:
        super().__init__()
        make_norm, bias = _norm(norm)
        self.outermost = outermost
        down = nn.Conv2d(in_nc or outer_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        # levels below carry skip channels (inner_nc from the input + inner_nc from the inner level)
        up_in = inner_nc if inner is None else inner_nc * 2
        if outermost:
            assert inner is not None
            layers = [down, inner, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer_nc, kernel_size=4, stride=2, padding=1), nn.Tanh()]
        elif inner is None:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias),
                      make_norm(outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, make_norm(inner_nc), inner, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias),
                      make_norm(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return y if self.outermost else torch.cat([x, y], 1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels: inputs need sides divisible by ``2**num_downs``.

    Channels from the outside in: ``ngf, 2ngf, 4ngf, 8ngf, 8ngf, ...``; dropout (when enabled)
    sits in the ``num_downs - 5`` levels just outside the innermost one.
    """

    def __init__(self, num_downs: int = 8, *, input_nc: int = 3, output_nc: int = 3, ngf: int = 64,
                 norm: str = "batch", use_dropout: bool = False) -> None:
        super().__init__()
        if num_downs < 5:
            raise I2IInputError(f"a U-Net generator needs num_downs >= 5, got {num_downs}")
        self.num_downs = num_downs
        block = UnetSkipBlock(ngf * 8, ngf * 8, inner=None, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, inner=block, norm=norm, use_dropout=use_dropout)
        for outer_mult, inner_mult in ((4, 8), (2, 4), (1, 2)):
            block = UnetSkipBlock(ngf * outer_mult, ngf * inner_mult, inner=block, norm=norm)
        self.model = UnetSkipBlock(output_nc, ngf, inner=block, in_nc=input_nc, outermost=True, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = 2 ** self.num_downs
        if x.shape[-1] % side or x.shape[-2] % side:
            raise I2IInputError(f"a U-Net with {self.num_downs} down levels needs height and width divisible by "
                                f"{side}; got {tuple(x.shape[-2:])}")
        return self.model(x)


class ResnetBlock(nn.Module):
    """``x + [pad, conv3, norm, ReLU, (Dropout), pad, conv3, norm](x)`` with reflection padding."""

    def __init__(self, dim: int, *, norm: str = "batch", use_dropout: bool = False) -> None:
        super().__init__()
        make_norm, bias = _norm(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make_norm(dim),
                                   nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """7x7 stem, two stride-2 downsamplings, ``n_blocks`` residual blocks, two transposed-conv upsamplings, tanh.

    Inputs need sides divisible by 4.
    """

    def __init__(self, n_blocks: int = 9, *, input_nc: int = 3, output_nc: int = 3, ngf: int = 64,
                 norm: str = "batch", use_dropout: bool = False) -> None:
        super().__init__()
        if n_blocks < 0:
            raise I2IInputError(f"n_blocks must be >= 0, got {n_blocks}")
        make_norm, bias = _norm(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), make_norm(ngf),
                                   nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       make_norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm=norm, use_dropout=use_dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=bias),
                       make_norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise I2IInputError(f"a ResNet generator needs height and width divisible by 4; got {tuple(x.shape[-2:])}")
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: one real/fake logit per overlapping patch, shape (N, 1, h, w).

    ``n_layers`` stride-2 4x4 convs (channels ``ndf * min(2**i, 8)``), then a stride-1 4x4 conv
    and a stride-1 4x4 conv to one channel; LeakyReLU(0.2) between, no norm after the first conv.
    The receptive field is :func:`patchgan_receptive_field` (70 for ``n_layers=3``). For pix2pix,
    ``input_nc`` is condition + candidate channels (6).
    """

    def __init__(self, n_layers: int = 3, *, input_nc: int = 6, ndf: int = 64, norm: str = "batch") -> None:
        super().__init__()
        if n_layers < 1:
            raise I2IInputError(f"n_layers must be >= 1, got {n_layers}")
        make_norm, bias = _norm(norm)
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                       make_norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN ("PixelGAN"): one logit per pixel, shape (N, 1, H, W)."""

    def __init__(self, *, input_nc: int = 6, ndf: int = 64, norm: str = "batch") -> None:
        super().__init__()
        make_norm, bias = _norm(norm)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), make_norm(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def patchgan_receptive_field(n_layers: int = 3) -> int:
    """Side in pixels of the input window that one :class:`NLayerDiscriminator` logit sees.

    All convs are 4x4; ``n_layers`` have stride 2, the last two stride 1. Walking back from one
    output pixel, ``rf <- (rf - 1) * stride + 4``: 70 for ``n_layers=3``, 34 for 2, 142 for 4.
    """
    rf = 1
    for stride in [1, 1] + [2] * n_layers:
        rf = (rf - 1) * stride + 4
    return rf


# --------------------------------------------------------------------------------------------
# registered generator architectures
# --------------------------------------------------------------------------------------------

#: name -> (family, depth: U-Net down levels or ResNet blocks, norm, use_dropout)
VARIANTS: dict[str, tuple[str, int, str, bool]] = {}
for _norm_name, _suffix, _resnet_dropout in (("batch", "", True), ("instance", "-instance", False)):
    VARIANTS[f"pix2pix-unet256{_suffix}"] = ("unet", 8, _norm_name, _norm_name == "batch")
    VARIANTS[f"pix2pix-unet128{_suffix}"] = ("unet", 7, _norm_name, _norm_name == "batch")
    VARIANTS[f"pix2pix-resnet9{_suffix}"] = ("resnet", 9, _norm_name, _resnet_dropout)
    VARIANTS[f"pix2pix-resnet6{_suffix}"] = ("resnet", 6, _norm_name, _resnet_dropout)


def build_variant(name: str, **kwargs: object) -> nn.Module:
    """The generator of registered variant ``name``; ``kwargs`` (``ngf``, ``input_nc``, ``output_nc``,
    ``norm``, ``use_dropout``) override its defaults."""
    family, depth, norm, dropout = VARIANTS[name]
    cls = UnetGenerator if family == "unet" else ResnetGenerator
    return cls(depth, **{"norm": norm, "use_dropout": dropout, **kwargs})  # type: ignore[arg-type]


@lru_cache(maxsize=None)
def variant_keys(name: str) -> frozenset[str]:
    """The state_dict keys of variant ``name`` with its defaults (built on the meta device: no memory)."""
    with torch.device("meta"):
        return frozenset(build_variant(name).state_dict())


#: narrow variants with a pinned width: name -> (variant whose layout it has, ngf); ``pix2pix-unet128-ngf8``
#: is the demo colorization checkpoint's (``demo/colorize_unet128.pth``, see ``train_pix2pix``).
NARROW_VARIANTS: dict[str, tuple[str, int]] = {"pix2pix-unet128-ngf8": ("pix2pix-unet128", 8)}


def _detector(name: str) -> Callable[[Mapping], bool]:
    # The key set encodes everything detection needs: the U-Net depth (one ".model.<i>" per
    # level), the number of residual blocks, the norm (running_mean / num_batches_tracked for
    # batch norm, conv biases for instance norm) and, for ResNets, dropout (it shifts the
    # indices inside conv_block). Shapes (ngf, channels) are left to the strict load, except
    # the first conv's width (ngf) that tells a narrow variant from the variant it shares keys with.
    base, ngf = NARROW_VARIANTS.get(name, (name, None))
    pinned = {width for other, width in NARROW_VARIANTS.values() if other == name}

    def detect(state_dict: Mapping) -> bool:
        if frozenset(state_dict) != variant_keys(base):
            return False
        if ngf is None and not pinned:
            return True
        width = int(state_dict["model.model.0.weight"].shape[0])
        return width == ngf if ngf is not None else width not in pinned

    return detect


def _describe(name: str) -> str:
    family, depth, norm, dropout = VARIANTS[name]
    what = f"U-Net, {depth} down levels" if family == "unet" else f"ResNet, {depth} residual blocks"
    drop = ", dropout" if dropout else ""
    return f"pix2pix/CycleGAN {what}, {norm} norm{drop}, ngf=64, RGB in/out in [-1, 1]"


for _name in VARIANTS:
    register_generator_arch(
        GeneratorArch(_name, build=partial(build_variant, _name), input_range=(-1.0, 1.0),
                      output_range=(-1.0, 1.0), detect=_detector(_name), description=_describe(_name)),
        overwrite=True,
    )

for _name, (_base, _ngf) in NARROW_VARIANTS.items():
    register_generator_arch(
        GeneratorArch(_name, build=partial(build_variant, _base, ngf=_ngf), input_range=(-1.0, 1.0),
                      output_range=(-1.0, 1.0), detect=_detector(_name),
                      description=_describe(_base).replace("ngf=64", f"ngf={_ngf}")),
        overwrite=True,
    )
