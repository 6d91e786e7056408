"""Tests of the pix2pix / CycleGAN architectures (pytest_i2i.generators.pix2pix) and patchgan_realism.

Key-layout evidence, derived by hand from junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py
(UnetSkipConnectionBlock, ResnetGenerator/ResnetBlock, NLayerDiscriminator, PixelDiscriminator):

- U-Net block ``.model`` indices: outermost [0 downconv (bias only with instance norm), 1 inner,
  2 ReLU, 3 convT (always bias), 4 Tanh]; middle [0 LeakyReLU, 1 downconv, 2 norm, 3 inner,
  4 ReLU, 5 convT, 6 norm, (7 Dropout)]; innermost [0 LeakyReLU, 1 downconv, 2 ReLU, 3 convT, 4 norm].
  Batch norm has 5 entries (weight, bias, running_mean, running_var, num_batches_tracked);
  instance norm (affine=False, track_running_stats=False) none, but the convs then have a bias.
  unet_256 (8 levels = outermost + 6 middle + innermost), batch: 3 + 6*12 + 7 = 82 keys;
  instance: 4 + 6*4 + 4 = 32. unet_128 (7 levels): 3 + 5*12 + 7 = 70; 4 + 5*4 + 4 = 28.
- ResnetGenerator ``model`` indices: 0 pad, 1 conv7, 2 norm, 3 ReLU, 4-9 two (conv, norm, ReLU)
  downsamplings, 10..10+n-1 blocks, then two (convT, norm, ReLU), pad, 7x7 conv (bias), Tanh:
  the last conv is model.26 for 9 blocks, model.23 for 6. Block ``conv_block``: [0 pad, 1 conv,
  2 norm, 3 ReLU, (4 Dropout), pad, conv, norm]: the second conv is index 5, or 6 with dropout.
  resnet_9blocks batch+dropout: 6 + 12 + 9*12 + 12 + 2 = 140; instance: 2 + 4 + 9*4 + 4 + 2 = 48.
- Parameter counts the reference code prints: unet_256 generator 54.414 M, resnet_9blocks 11.378 M
  (CycleGAN), basic discriminator on 6 channels 2.769 M.
- NLayerDiscriminator(n_layers=3) ``model``: 0 conv (bias), 1 LReLU, (2 conv, 3 norm, 4 LReLU),
  (5, 6, 7), (8, 9, 10), 11 conv (bias): batch 2 + 3*6 + 2 = 22 keys; instance 2 + 3*2 + 2 = 10.
- PixelDiscriminator ``net``: 0 conv (bias), 1 LReLU, 2 conv, 3 norm, 4 LReLU, 5 conv (bias only
  with instance norm): batch 9 keys, instance 6.
"""

from __future__ import annotations

import pytest
import torch

import pytest_i2i
from pytest_i2i.errors import I2IInputError
from pytest_i2i.generators import detect_arch, get_generator_arch, list_generator_archs, load_generator
from pytest_i2i.generators.pix2pix import (
    VARIANTS,
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    build_variant,
    patchgan_receptive_field,
    variant_keys,
)

DEEP_UNET256 = "model.model.1" + ".model.3" * 6 + ".model.1.weight"  # innermost downconv: 8 levels deep

# name: (n_keys, first key, its shape, last key, its shape, some inner key, its shape)
EXPECTED = {
    "pix2pix-unet256": (82, "model.model.0.weight", (64, 3, 4, 4), "model.model.3.bias", (3,),
                        DEEP_UNET256, (512, 512, 4, 4)),
    "pix2pix-unet256-instance": (32, "model.model.0.weight", (64, 3, 4, 4), "model.model.3.bias", (3,),
                                 DEEP_UNET256.replace(".weight", ".bias"), (512,)),
    "pix2pix-unet128": (70, "model.model.0.weight", (64, 3, 4, 4), "model.model.3.bias", (3,),
                        "model.model.1.model.2.running_mean", (128,)),
    "pix2pix-unet128-instance": (28, "model.model.0.weight", (64, 3, 4, 4), "model.model.3.bias", (3,),
                                 "model.model.1.model.5.weight", (256, 64, 4, 4)),  # convT (2*inner, outer, k, k)
    "pix2pix-resnet9": (140, "model.1.weight", (64, 3, 7, 7), "model.26.bias", (3,),
                        "model.18.conv_block.6.weight", (256, 256, 3, 3)),
    "pix2pix-resnet9-instance": (48, "model.1.weight", (64, 3, 7, 7), "model.26.bias", (3,),
                                 "model.18.conv_block.5.weight", (256, 256, 3, 3)),
    "pix2pix-resnet6": (104, "model.1.weight", (64, 3, 7, 7), "model.23.bias", (3,),
                        "model.19.weight", (128, 64, 3, 3)),  # 2nd convT: (in, out, k, k)
    "pix2pix-resnet6-instance": (36, "model.1.weight", (64, 3, 7, 7), "model.23.bias", (3,),
                                 "model.19.bias", (64,)),
}


def _meta_state(name: str, **kwargs: object) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build_variant(name, **kwargs).state_dict()


def _n_params(state: dict[str, torch.Tensor]) -> int:
    return sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var", "tracked")))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_generator_key_layout_matches_reference(name: str) -> None:
    state = _meta_state(name)
    keys = list(state)
    n, first, first_shape, last, last_shape, inner, inner_shape = EXPECTED[name]
    assert len(keys) == n
    assert (keys[0], tuple(state[keys[0]].shape)) == (first, first_shape)
    assert (keys[-1], tuple(state[keys[-1]].shape)) == (last, last_shape)
    assert tuple(state[inner].shape) == inner_shape
    batch = not name.endswith("-instance")
    assert any(k.endswith("running_mean") for k in keys) == batch


def test_parameter_counts_match_the_reference_printout() -> None:
    assert round(_n_params(_meta_state("pix2pix-unet256")) / 1e6, 3) == 54.414
    assert round(_n_params(_meta_state("pix2pix-resnet9-instance")) / 1e6, 3) == 11.378
    with torch.device("meta"):
        d = NLayerDiscriminator(3, input_nc=6).state_dict()
    assert round(_n_params(d) / 1e6, 3) == 2.769


@pytest.mark.parametrize("norm, n_keys, pixel_keys", [("batch", 22, 9), ("instance", 10, 6)])
def test_discriminator_key_layouts(norm: str, n_keys: int, pixel_keys: int) -> None:
    d = NLayerDiscriminator(3, norm=norm).state_dict()
    assert len(d) == n_keys
    assert list(d)[:3] == ["model.0.weight", "model.0.bias", "model.2.weight"]
    assert list(d)[-2:] == ["model.11.weight", "model.11.bias"]
    assert tuple(d["model.8.weight"].shape) == (512, 256, 4, 4)
    p = PixelDiscriminator(norm=norm).state_dict()
    assert len(p) == pixel_keys
    assert list(p)[0] == "net.0.weight" and list(p)[-1].startswith("net.5.")


def test_archs_are_registered_with_tanh_ranges() -> None:
    assert set(VARIANTS) <= set(list_generator_archs())
    for name in VARIANTS:
        arch = get_generator_arch(name)
        assert arch.input_range == arch.output_range == (-1.0, 1.0)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_detection_finds_each_variant(name: str) -> None:
    assert detect_arch(_meta_state(name)) == name
    assert frozenset(_meta_state(name, ngf=8)) == variant_keys(name)  # the layout does not depend on ngf


def test_detection_of_unknown_layout_is_a_clear_error() -> None:
    state = dict(_meta_state("pix2pix-unet256"))
    state.pop(DEEP_UNET256)
    with pytest.raises(I2IInputError, match="no registered architecture matches"):
        detect_arch(state, source="x.pth")
    # a U-Net of 6 levels is no registered variant
    with torch.device("meta"):
        six = UnetGenerator(6).state_dict()
    with pytest.raises(I2IInputError, match="--i2i-arch"):
        detect_arch(six)


def test_forward_shapes() -> None:
    torch.manual_seed(0)
    with torch.inference_mode():
        assert UnetGenerator(8, ngf=4).eval()(torch.rand(1, 3, 256, 256)).shape == (1, 3, 256, 256)
        assert UnetGenerator(7, ngf=4, norm="instance").eval()(torch.rand(1, 3, 128, 128)).shape == (1, 3, 128, 128)
        assert ResnetGenerator(6, ngf=4).eval()(torch.rand(2, 3, 36, 44)).shape == (2, 3, 36, 44)
        out = ResnetGenerator(9, ngf=4, norm="instance").eval()(torch.rand(1, 3, 32, 32) * 2 - 1)
        assert out.shape == (1, 3, 32, 32) and out.abs().max() <= 1
        assert PixelDiscriminator(ndf=8).eval()(torch.rand(2, 6, 17, 23)).shape == (2, 1, 17, 23)
        assert NLayerDiscriminator(3, ndf=8).eval()(torch.rand(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    with pytest.raises(I2IInputError, match="divisible by 256"):
        UnetGenerator(8, ngf=4)(torch.rand(1, 3, 128, 128))
    with pytest.raises(I2IInputError, match="divisible by 4"):
        ResnetGenerator(6, ngf=4)(torch.rand(1, 3, 30, 32))


def test_patchgan_receptive_field_is_70_by_gradient_locality() -> None:
    assert patchgan_receptive_field(3) == 70
    torch.manual_seed(0)
    d = NLayerDiscriminator(3, ndf=8).eval()  # eval BN is per-pixel affine: it keeps locality
    x = torch.randn(1, 6, 256, 256, requires_grad=True)
    logits = d(x)
    assert logits.shape == (1, 1, 30, 30)
    logits[0, 0, 15, 15].backward()
    rows, cols = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero(as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == 70
    assert int(cols.max() - cols.min() + 1) == 70


def test_checkpoint_loads_with_arch_and_by_detection(tmp_path) -> None:
    torch.manual_seed(0)
    ref = UnetGenerator(8, ngf=8, norm="batch", use_dropout=True)
    for m in ref.modules():  # non-trivial running stats, so a wrong load would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    images = torch.rand(2, 3, 256, 256)
    with torch.inference_mode():
        expected = (ref.eval()(images * 2 - 1) + 1) / 2
    named = load_generator(path, arch="pix2pix-unet256", arch_kwargs={"ngf": 8})
    detected = pytest_i2i.load_generator(path, arch_kwargs={"ngf": 8})
    assert named.arch == detected.arch == "pix2pix-unet256"
    for gen in (named, detected):
        out = gen(images)
        assert out.shape == (2, 3, 256, 256)
        torch.testing.assert_close(out, expected.clamp(0, 1), atol=1e-5, rtol=0)
    with pytest.raises(I2IInputError, match="does not fit"):
        load_generator(path, arch="pix2pix-unet256")  # ngf=64 by default: shapes differ


def _direct_realism(d: torch.nn.Module, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.sigmoid(d.eval()(torch.cat([inputs, outputs], 1) * 2 - 1)).mean(dim=(1, 2, 3)).double()


def test_patchgan_realism_equals_direct_computation(tmp_path) -> None:
    torch.manual_seed(1)
    d = NLayerDiscriminator(3, ndf=8)
    outputs, inputs = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64)
    expected = _direct_realism(d, inputs, outputs)
    path = tmp_path / "latest_net_D.pth"
    torch.save(d.state_dict(), path)
    d.train()
    by_module = pytest_i2i.patchgan_realism(outputs, inputs, discriminator=d, batch_size=2)
    assert d.training  # the caller's mode is restored
    by_file = pytest_i2i.patchgan_realism(outputs, inputs, discriminator=path, ndf=8)
    for r in (by_module, by_file):
        torch.testing.assert_close(torch.tensor(r.per_sample, dtype=torch.float64), expected, atol=1e-6, rtol=0)
        assert r.value == pytest.approx(float(expected.mean()), abs=1e-6)
        assert r.higher_is_better and r.ci is not None and len(r.extra["maps"]) == 3
        assert r.extra["grids"] == [[6, 6]] * 3  # 64 -> 32 -> 16 -> 8 -> 7 -> 6
    assert by_file.weights_sha256 is not None and by_file.backbone == "patchgan-n3-batch"


def test_patchgan_realism_bad_inputs(tmp_path) -> None:
    d = NLayerDiscriminator(2, ndf=4, input_nc=3)  # not conditional: 3 channels instead of 6
    with pytest.raises(I2IInputError, match="discriminator failed"):
        pytest_i2i.patchgan_realism(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), discriminator=d)
    with pytest.raises(I2IInputError, match="pair counts"):
        pytest_i2i.patchgan_realism(torch.rand(2, 3, 32, 32), torch.rand(1, 3, 32, 32),
                                    discriminator=NLayerDiscriminator(2, ndf=4))
    path = tmp_path / "d.pth"
    torch.save(NLayerDiscriminator(2, ndf=4).state_dict(), path)
    with pytest.raises(I2IInputError, match="does not fit"):
        pytest_i2i.patchgan_realism(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), discriminator=path)
