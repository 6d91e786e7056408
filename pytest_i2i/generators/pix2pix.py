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

The registered presets (:mod:`pytest_i2i.generators.builtin`) are ``pix2pix-unet256``,
``pix2pix-unet128``, ``pix2pix-resnet9``, ``pix2pix-resnet6`` (batch norm, dropout on, as
pix2pix trains them), their ``-instance`` variants (instance norm, no dropout, as CycleGAN
trains them) and ``pix2pix-unet128-ngf8`` (the demo colorization checkpoint's width). Every
combination of the reference options is a preset plus architecture options, and is read from a
checkpoint by :func:`read_layout`:

=================  ===================================================================
reference option   how it shows in a state_dict
=================  ===================================================================
``--netG``         the keys: U-Net depth (one ``.model.<i>`` per level), ResNet block count
``--norm``         batch: ``running_mean`` entries; instance: conv biases, no norm entries;
                   none: neither
``--no_dropout``   ResNets: the index of the second conv in each block (5, or 6 after a
                   Dropout); U-Nets: invisible (a Dropout has no parameters and sits last)
``--ngf``          the first conv's output channels
``--input_nc``,    the first conv's input channels, the last conv's output channels
``--output_nc``
=================  ===================================================================

Checkpoints written by older versions of that code carry ``running_mean`` / ``running_var`` (and
``num_batches_tracked``) for InstanceNorm layers that no longer track statistics; they are dropped
with a note (:func:`drop_old_instance_norm_buffers`), as the reference loader does. All models take
and return images in [-1, 1] (tanh head).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from pytest_i2i.errors import I2IInputError
from pytest_i2i.generators.builtin import NETG, NORMS, PIX2PIX_PRESETS


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
# presets, layouts and detection
# --------------------------------------------------------------------------------------------

#: the presets of the default width: name -> (family, depth, norm, use_dropout)
VARIANTS: dict[str, tuple[str, int, str, bool]] = {
    name: (*NETG[netg], norm, dropout) for name, (netg, norm, dropout, ngf) in PIX2PIX_PRESETS.items() if ngf == 64
}


@dataclass(frozen=True)
class Layout:
    """One pix2pix/CycleGAN generator configuration, in the reference's terms."""

    netG: str  # noqa: N815 - the reference option's name
    norm: str = "batch"
    use_dropout: bool = True
    ngf: int = 64
    input_nc: int = 3
    output_nc: int = 3

    def build(self) -> nn.Module:
        family, depth = NETG[self.netG]
        cls = UnetGenerator if family == "unet" else ResnetGenerator
        return cls(depth, input_nc=self.input_nc, output_nc=self.output_nc, ngf=self.ngf, norm=self.norm,
                   use_dropout=self.use_dropout)


def preset_layout(name: str, **options: Any) -> Layout:
    """The layout of preset ``name`` with architecture ``options`` applied (``no_dropout`` is the
    reference's spelling of ``use_dropout=False``).

    Raises:
        I2IInputError: ``use_dropout`` and ``no_dropout`` both given and contradicting, or a bad norm.
    """
    netg, norm, dropout, ngf = PIX2PIX_PRESETS[name]
    options = dict(options)
    if "no_dropout" in options:
        no_dropout = bool(options.pop("no_dropout"))
        if "use_dropout" in options and bool(options["use_dropout"]) == no_dropout:
            raise I2IInputError(f"{name}: use_dropout={options['use_dropout']} contradicts no_dropout={no_dropout}")
        options["use_dropout"] = not no_dropout
    layout = Layout(netg, norm, dropout, ngf)
    unknown = set(options) - set(asdict(layout))
    if unknown:
        raise I2IInputError(f"{name}: unknown architecture options {sorted(unknown)}")
    layout = Layout(**{**asdict(layout), **options})
    if layout.norm not in NORMS:
        raise I2IInputError(f"norm must be one of {', '.join(NORMS)}; got {layout.norm!r}")
    return layout


def build_variant(name: str, **options: Any) -> nn.Module:
    """The generator of preset ``name``; ``options`` (``ngf``, ``norm``, ``use_dropout`` or
    ``no_dropout``, ``input_nc``, ``output_nc``) override its defaults."""
    return preset_layout(name, **options).build()


@lru_cache(maxsize=None)
def _layout_keys(netg: str, norm: str, use_dropout: bool) -> tuple[frozenset[str], tuple[str, ...]]:
    """(state_dict keys, names of the InstanceNorm modules) of a layout; built on the meta device."""
    with torch.device("meta"):
        model = Layout(netg, norm, use_dropout).build()
    names = tuple(n for n, m in model.named_modules() if isinstance(m, nn.InstanceNorm2d))
    return frozenset(model.state_dict()), names


def variant_keys(name: str) -> frozenset[str]:
    """The state_dict keys of preset ``name`` with its defaults (built on the meta device: no memory)."""
    netg, norm, dropout, _ = PIX2PIX_PRESETS[name]
    return _layout_keys(netg, norm, dropout)[0]


_OLD_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _old_instance_keys(keys: frozenset[str], instance_norms: tuple[str, ...]) -> set[str]:
    return {f"{n}.{b}" for n in instance_norms for b in _OLD_BUFFERS} & keys


def read_layout(state_dict: Mapping) -> tuple[Layout, bool] | None:
    """The reference configuration a generator state_dict was written with, or ``None`` if it is
    no pix2pix/CycleGAN generator (see the module docstring for what tells each option).

    Returns:
        ``(layout, dropout_known)``: ``dropout_known`` is False for U-Nets, whose dropout leaves no
        trace in the keys (``layout.use_dropout`` is then the pix2pix default, True).
    """
    keys = frozenset(state_dict)
    for netg, (family, _) in NETG.items():
        for norm in NORMS:
            for dropout in ((False, True) if family == "resnet" else (True,)):
                expected, instance_norms = _layout_keys(netg, norm, dropout)
                if keys - _old_instance_keys(keys, instance_norms) != expected:
                    continue
                first = state_dict["model.model.0.weight" if family == "unet" else "model.1.weight"]
                last_key = "model.model.3.weight" if family == "unet" else f"model.{NETG[netg][1] + 17}.weight"
                last = state_dict[last_key]
                out_nc = last.shape[1] if family == "unet" else last.shape[0]  # ConvTranspose2d: (in, out, k, k)
                layout = Layout(netg, norm, dropout, int(first.shape[0]), int(first.shape[1]), int(out_nc))
                return layout, family == "resnet"
    return None


def preset_for(layout: Layout) -> str:
    """The preset a layout is reported under: the one of its ``--netG`` and norm (batch-norm
    presets stand for ``norm=none`` too), preferring a preset of its width."""
    norm = "instance" if layout.norm == "instance" else "batch"
    candidates = [n for n, (netg, nm, _, _) in PIX2PIX_PRESETS.items() if netg == layout.netG and nm == norm]
    same_width = [n for n in candidates if PIX2PIX_PRESETS[n][3] == layout.ngf]
    return (same_width or [n for n in candidates if PIX2PIX_PRESETS[n][3] == 64])[0]


def detect_preset(name: str, state_dict: Mapping) -> dict[str, Any] | bool:
    """The registry's ``detect`` of preset ``name`` (False unless the checkpoint's layout is
    reported under ``name``): the options in which the layout differs from the preset's defaults,
    and ``use_dropout`` whenever the keys tell it (ResNets; U-Nets keep the preset's default)."""
    found = read_layout(state_dict)
    if found is None or preset_for(found[0]) != name:
        return False
    layout, dropout_known = found
    defaults = asdict(preset_layout(name))
    options = {k: v for k, v in asdict(layout).items() if v != defaults[k] or k == "use_dropout"}
    if not dropout_known:
        options.pop("use_dropout")
    return options or True


def drop_old_instance_norm_buffers(model: nn.Module, state_dict: dict) -> tuple[dict, list[str]]:
    """``state_dict`` without the running statistics of InstanceNorm layers that track none.

    Versions of the reference code before PyTorch 0.4's ``track_running_stats`` saved
    ``running_mean`` / ``running_var`` (and ``num_batches_tracked``) for InstanceNorm layers; its
    loader drops them, and so does this (with a note), so the layers normalise per image as trained.
    """
    modules = dict(model.named_modules())
    dropped = []
    for key in list(state_dict):
        owner, _, leaf = key.rpartition(".")
        module = modules.get(owner)
        if leaf in _OLD_BUFFERS and isinstance(module, nn.InstanceNorm2d) and not module.track_running_stats:
            dropped.append(key)
    if not dropped:
        return state_dict, []
    kept = {k: v for k, v in state_dict.items() if k not in set(dropped)}
    return kept, [f"dropped {len(dropped)} {'/'.join(sorted({k.rpartition('.')[2] for k in dropped}))} entries of "
                  "InstanceNorm layers (written by versions of the pix2pix/CycleGAN code before PyTorch 0.4; "
                  "the layers normalise each image by its own statistics, as the reference loader does)"]
