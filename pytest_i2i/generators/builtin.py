"""The built-in generator architectures, registered by name with lazy references (standard library only).

pix2pix / CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix): one preset per reference ``--netG``
and ``--norm`` pair, with the defaults its training scripts use (pix2pix: batch norm, dropout;
CycleGAN: instance norm, no dropout). Every other combination of ``--netG``, ``--norm``,
``--no_dropout``, ``--ngf`` (and ``--input_nc`` / ``--output_nc``) is a preset plus
architecture options (``--i2i-arch-option norm=none``, ``use_dropout=false``, ``ngf=32``, ...), and
is detected from a checkpoint's keys and shapes (:func:`pytest_i2i.generators.pix2pix.detect_preset`).

Adding an architecture to the project means one entry here and its module.
"""

from __future__ import annotations

from pytest_i2i.generators.registry import GeneratorArch, LazyCall, register_generator_arch

_PIX2PIX = "pytest_i2i.generators.pix2pix"

#: reference ``--netG`` -> (family, depth: U-Net down levels or ResNet residual blocks)
NETG: dict[str, tuple[str, int]] = {
    "unet_256": ("unet", 8),
    "unet_128": ("unet", 7),
    "resnet_9blocks": ("resnet", 9),
    "resnet_6blocks": ("resnet", 6),
}
NORMS = ("batch", "instance", "none")

#: preset name -> (reference --netG, --norm, use_dropout (not --no_dropout), --ngf)
PIX2PIX_PRESETS: dict[str, tuple[str, str, bool, int]] = {}
for _netg, _short in (("unet_256", "unet256"), ("unet_128", "unet128"), ("resnet_9blocks", "resnet9"),
                      ("resnet_6blocks", "resnet6")):
    PIX2PIX_PRESETS[f"pix2pix-{_short}"] = (_netg, "batch", True, 64)
    PIX2PIX_PRESETS[f"pix2pix-{_short}-instance"] = (_netg, "instance", False, 64)
# the demo colorization checkpoint's width (demo/colorize_unet128.pth, see train_pix2pix)
PIX2PIX_PRESETS["pix2pix-unet128-ngf8"] = ("unet_128", "batch", True, 8)

#: the architecture options of every pix2pix preset (``no_dropout`` is the reference's spelling of
#: ``use_dropout=false``)
PIX2PIX_OPTIONS = {"ngf": int, "norm": NORMS, "use_dropout": bool, "no_dropout": bool, "input_nc": int,
                   "output_nc": int}


def _describe(name: str) -> str:
    netg, norm, dropout, ngf = PIX2PIX_PRESETS[name]
    family, depth = NETG[netg]
    what = f"U-Net, {depth} down levels" if family == "unet" else f"ResNet, {depth} residual blocks"
    drop = ", dropout" if dropout else ""
    return f"pix2pix/CycleGAN --netG {netg}: {what}, {norm} norm{drop}, ngf={ngf}, RGB in/out in [-1, 1]"


for _name in PIX2PIX_PRESETS:
    register_generator_arch(
        GeneratorArch(_name, build=LazyCall(f"{_PIX2PIX}:build_variant", (_name,)), input_range=(-1.0, 1.0),
                      output_range=(-1.0, 1.0), detect=LazyCall(f"{_PIX2PIX}:detect_preset", (_name,)),
                      description=_describe(_name), options=PIX2PIX_OPTIONS,
                      adapt_state_dict=LazyCall(f"{_PIX2PIX}:drop_old_instance_norm_buffers")),
        overwrite=True,
    )
