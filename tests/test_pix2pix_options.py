"""Every pix2pix / CycleGAN generator setting against a re-implementation of the reference layout.

``Ref*`` below re-implement, in this test's own code, the generator layout of
junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py`` as read there (``get_norm_layer``,
``ResnetGenerator`` / ``ResnetBlock`` with reflection padding, ``UnetGenerator`` /
``UnetSkipConnectionBlock``): the norm factory is a ``functools.partial`` (batch:
``BatchNorm2d(affine=True, track_running_stats=True)``, instance: ``InstanceNorm2d(affine=False,
track_running_stats=False)``) or, for ``--norm none``, a function returning ``Identity``; a conv
before a norm has a bias exactly when the factory is a partial of ``InstanceNorm2d``; ``Dropout(0.5)``
sits after the first conv block of each residual block, and last in the U-Net levels just outside the
innermost one. For every combination of ``--netG`` (unet_256, unet_128, resnet_9blocks,
resnet_6blocks), ``--norm`` (batch, instance, none), ``--no_dropout`` and two ``--ngf`` widths, the
reference model's state_dict is saved as its training code does (``latest_net_G.pth``), loaded by
detection and by name with architecture options, and both outputs are compared **exactly**
(``torch.equal``) in eval mode and in train mode (dropout on, batch statistics, per-sample seeds).
Weights are seeded random (synthetic); nothing is downloaded.
"""

from __future__ import annotations

import functools
import itertools

import pytest
import torch
from torch import nn

from pytest_i2i.errors import I2IInputError, UnknownNameError
from pytest_i2i.generators import load_generator, match_arch, sample_seed
from pytest_i2i.generators.builtin import PIX2PIX_PRESETS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NETGS = ("unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks")
NORMS = ("batch", "instance", "none")
SIDE = {"unet_256": 256, "unet_128": 128, "resnet_9blocks": 32, "resnet_6blocks": 32}
PRESET = {"unet_256": "pix2pix-unet256", "unet_128": "pix2pix-unet128", "resnet_9blocks": "pix2pix-resnet9",
          "resnet_6blocks": "pix2pix-resnet6"}


# ----------------------------------------------------------------------------------------------
# the reference layout, re-implemented
# ----------------------------------------------------------------------------------------------
class RefIdentity(nn.Module):
    def forward(self, x):
        return x


def ref_norm_layer(norm_type):
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    return lambda channels: RefIdentity()


def ref_uses_bias(norm_layer):
    func = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return func is nn.InstanceNorm2d


class RefResnetBlock(nn.Module):
    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
                  norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
                   norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks):
        super().__init__()
        bias = ref_uses_bias(norm_layer)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=bias),
                  norm_layer(ngf), nn.ReLU(True)]
        channels = ngf
        for _ in range(2):  # two stride-2 downsamplings
            layers += [nn.Conv2d(channels, channels * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                       norm_layer(channels * 2), nn.ReLU(True)]
            channels *= 2
        layers += [RefResnetBlock(channels, norm_layer, use_dropout, bias) for _ in range(n_blocks)]
        for _ in range(2):  # two stride-2 transposed convolutions
            layers += [nn.ConvTranspose2d(channels, channels // 2, kernel_size=3, stride=2, padding=1,
                                          output_padding=1, bias=bias),
                       norm_layer(channels // 2), nn.ReLU(True)]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class RefUnetLevel(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=None, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        bias = ref_uses_bias(norm_layer)
        down = nn.Conv2d(input_nc if input_nc is not None else outer_nc, inner_nc, kernel_size=4, stride=2,
                         padding=1, bias=bias)
        if outermost:
            seq = [down, submodule, nn.ReLU(True),
                   nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1), nn.Tanh()]
        elif innermost:
            seq = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                   nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias),
                   norm_layer(outer_nc)]
        else:
            seq = [nn.LeakyReLU(0.2, True), down, norm_layer(inner_nc), submodule, nn.ReLU(True),
                   nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias),
                   norm_layer(outer_nc)]
            if use_dropout:
                seq.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout):
        super().__init__()
        level = RefUnetLevel(ngf * 8, ngf * 8, innermost=True, norm_layer=norm_layer)
        for _ in range(num_downs - 5):
            level = RefUnetLevel(ngf * 8, ngf * 8, submodule=level, norm_layer=norm_layer, use_dropout=use_dropout)
        for outer, inner in ((4, 8), (2, 4), (1, 2)):
            level = RefUnetLevel(ngf * outer, ngf * inner, submodule=level, norm_layer=norm_layer)
        self.model = RefUnetLevel(output_nc, ngf, input_nc=input_nc, submodule=level, outermost=True,
                                  norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


def ref_define_g(netg, norm, no_dropout, ngf, input_nc=3, output_nc=3):
    """The reference's define_G for the options of its command line."""
    norm_layer, dropout = ref_norm_layer(norm), not no_dropout
    if netg.startswith("resnet"):
        return RefResnetGenerator(input_nc, output_nc, ngf, norm_layer, dropout, 9 if netg == "resnet_9blocks" else 6)
    return RefUnetGenerator(input_nc, output_nc, 8 if netg == "unet_256" else 7, ngf, norm_layer, dropout)


def seeded_reference(netg, norm, no_dropout, ngf, seed=0, **kw):
    """A reference generator with seeded random weights and non-trivial running statistics (synthetic)."""
    torch.manual_seed(seed)
    model = ref_define_g(netg, norm, no_dropout, ngf, **kw)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.normal_(0.0, 0.2)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.05)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, 0.1)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model


def ref_outputs(model, images01, *, train, names, seed=0):
    """The reference run: eval mode on the batch, or train mode one sample at a time (test.py's batch
    size 1), each sample's dropout drawn after seeding with the sample's seed."""
    x = images01 * 2 - 1
    with torch.no_grad():
        if not train:
            return ((model.eval()(x) + 1) / 2).clamp(0, 1)
        model.train()
        outs = []
        for i, name in enumerate(names):
            torch.manual_seed(sample_seed(seed, name))
            outs.append(model(x[i:i + 1]))
        model.eval()
        return ((torch.cat(outs) + 1) / 2).clamp(0, 1)


def has_dropout(model):
    return any(isinstance(m, nn.Dropout) for m in model.modules())


def _images(side, n=2):
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(side))


# ----------------------------------------------------------------------------------------------
# every combination, exact
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("netg,norm", list(itertools.product(NETGS, NORMS)))
def test_every_combination_matches_the_reference_exactly(tmp_path, netg, norm):
    names = ["a", "b"]
    x = _images(SIDE[netg])
    for no_dropout, ngf in itertools.product((False, True), (4, 6)):
        ref = seeded_reference(netg, norm, no_dropout, ngf)
        path = tmp_path / f"{netg}_{norm}_{no_dropout}_{ngf}_net_G.pth"
        torch.save(ref.state_dict(), path)
        expected_eval = ref_outputs(ref, x, train=False, names=names)
        expected_train = ref_outputs(ref, x, train=True, names=names)
        what = f"--netG {netg} --norm {norm} --ngf {ngf}" + (" --no_dropout" if no_dropout else "")

        detected = load_generator(path)
        assert detected.arch.startswith(PRESET[netg]), what
        assert torch.equal(detected(x, names=names), expected_eval), what

        # named like a user would on the command line: the preset plus string options
        named_train = load_generator(path, arch=PRESET[netg], mode="train", arch_kwargs={
            "norm": norm, "ngf": str(ngf), "no_dropout": str(no_dropout).lower()})
        assert has_dropout(named_train.model) is (not no_dropout), what
        assert torch.equal(named_train(x, names=names), expected_train), what
        if netg.startswith("resnet"):  # dropout shows in the keys: detection alone reproduces train mode
            detected_train = load_generator(path, mode="train")
            assert detected_train.options["use_dropout"] is (not no_dropout), what
            assert has_dropout(detected_train.model) is (not no_dropout), what
            assert torch.equal(detected_train(x, names=names), expected_train), what
            assert not any("cannot be read" in w for w in detected_train.warnings)


def test_train_mode_differs_from_eval_and_leaves_the_model_unchanged(tmp_path):
    ref = seeded_reference("unet_128", "batch", False, 4)
    path = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    x = _images(128, n=3)
    gen = load_generator(path, mode="train")
    before = {k: v.clone() for k, v in gen.model.state_dict().items()}
    first = gen(x, names=["a", "b", "c"])
    # the pix2pix convention makes a large difference for batch-norm models (the issue measured ~0.5)
    assert (first - load_generator(path)(x, names=["a", "b", "c"])).abs().max() > 0.05
    assert all(torch.equal(v, gen.model.state_dict()[k]) for k, v in before.items())  # running stats kept
    # seeded per sample: independent of batch composition and order, different across samples
    again = gen(x[[2, 0]], names=["c", "a"])
    assert torch.equal(again[0], first[2]) and torch.equal(again[1], first[0])
    assert not torch.equal(gen(x[:1], names=["other"]), first[:1])
    # U-Net dropout leaves no trace in the keys: detection in train mode says what it assumed
    assert any("cannot be read from its keys" in w for w in gen.warnings)
    assert gen.provenance()["mode"] == "train"


def test_old_instance_norm_buffers_are_dropped_with_a_note(tmp_path):
    """Checkpoints from before PyTorch 0.4 carry InstanceNorm running statistics (69 keys for
    resnet_9blocks: 23 InstanceNorm layers x running_mean, running_var, num_batches_tracked)."""
    ref = seeded_reference("resnet_9blocks", "instance", True, 4)
    state = ref.state_dict()
    old = dict(state)
    n_norms = 0
    for name, module in ref.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            n_norms += 1
            c = module.num_features
            old[f"{name}.running_mean"] = torch.randn(c)
            old[f"{name}.running_var"] = torch.rand(c) + 0.5
            old[f"{name}.num_batches_tracked"] = torch.tensor(7)
    assert len(old) - len(state) == 69 and n_norms == 23
    path = tmp_path / "old_latest_net_G.pth"
    torch.save(old, path)
    x = _images(32)
    for gen in (load_generator(path), load_generator(path, arch="pix2pix-resnet9-instance", arch_kwargs={"ngf": 4})):
        assert gen.arch == "pix2pix-resnet9-instance"
        assert any("dropped 69" in w and "InstanceNorm" in w for w in gen.warnings), gen.warnings
        assert torch.equal(gen(x), ref_outputs(ref, x, train=False, names=None))


def test_detection_reads_channels_and_reports_the_options(tmp_path):
    ref = seeded_reference("resnet_6blocks", "none", False, 4, output_nc=1)
    name, options = match_arch(ref.state_dict())
    assert name == "pix2pix-resnet6" and options == {"norm": "none", "ngf": 4, "output_nc": 1, "use_dropout": True}
    path = tmp_path / "g.pth"
    torch.save(ref.state_dict(), path)
    gen = load_generator(path)
    x = _images(32)
    assert torch.equal(gen(x), ref_outputs(ref, x, train=False, names=None).expand(-1, 3, -1, -1))
    # the demo width keeps its own preset name
    assert match_arch(seeded_reference("unet_128", "batch", False, 8).state_dict())[0] == "pix2pix-unet128-ngf8"
    assert set(PIX2PIX_PRESETS) >= {"pix2pix-resnet9", "pix2pix-resnet9-instance", "pix2pix-unet128-ngf8"}


def test_wrong_options_are_clear_errors(tmp_path):
    ref = seeded_reference("resnet_9blocks", "batch", True, 4)  # CycleGAN --norm batch: no dropout
    path = tmp_path / "g.pth"
    torch.save(ref.state_dict(), path)
    with pytest.raises(I2IInputError, match="does not fit") as info:
        load_generator(path, arch="pix2pix-resnet9", arch_kwargs={"ngf": "4"})  # preset default: dropout
    assert "--i2i-arch-option use_dropout=false" in str(info.value)
    with pytest.raises(UnknownNameError, match="dropout_rate") as info:
        load_generator(path, arch="pix2pix-resnet9", arch_kwargs={"dropout_rate": "0.5"})
    assert "use_dropout" in str(info.value) and "ngf" in str(info.value)
    with pytest.raises(I2IInputError, match="norm.*not one of batch, instance, none"):
        load_generator(path, arch="pix2pix-resnet9", arch_kwargs={"norm": "group"})
    with pytest.raises(I2IInputError, match="not an integer"):
        load_generator(path, arch="pix2pix-resnet9", arch_kwargs={"ngf": "wide"})
    with pytest.raises(I2IInputError, match="contradicts"):
        load_generator(path, arch="pix2pix-resnet9", arch_kwargs={"use_dropout": "true", "no_dropout": "true"})
    with pytest.raises(I2IInputError, match="mode must be one of eval, train"):
        load_generator(path, mode="test")


# ----------------------------------------------------------------------------------------------
# the plugin's options
# ----------------------------------------------------------------------------------------------
def test_key_value_options_merge_key_by_key(pytester, monkeypatch):
    pytester.makefile(".pth", dummy="not read by this test")
    pytester.makeini("[pytest]\ni2i_arch_option =\n    ngf=4\n    norm=batch\n"
                     "i2i_generator_option = prompt_field=target_caption\n")
    monkeypatch.setenv("I2I_ARCH_OPTION", "norm=instance; use_dropout=false")
    pytester.makepyfile("""
        def test_show(i2i_options):
            print("ARCH", sorted(i2i_options.arch_option.items()), "FROM", i2i_options.sources["arch_option"])
            print("GEN", i2i_options.generator_option, "MODE", i2i_options.generator_mode)
    """)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "--i2i-model=dummy.pth",
                                           "--i2i-arch-option", "ngf=6", "--i2i-generator-mode=train")
    out = result.stdout.str()
    assert ("ARCH [('ngf', '6'), ('norm', 'instance'), ('use_dropout', 'false')] "
            "FROM ini i2i_arch_option, env I2I_ARCH_OPTION, command line") in out
    assert "GEN {'prompt_field': 'target_caption'} MODE train" in out


@pytest.mark.parametrize("args,message", [
    (["--i2i-model=m.pth", "--i2i-generator-mode=test"], "*--i2i-generator-mode*'test' is not one of eval, train*"),
    (["--i2i-model=m.pth", "--i2i-arch-option=ngf"], "*--i2i-arch-option (from command line): 'ngf' is not KEY=VALUE*"),
    (["--i2i-generator-option=num_inference_steps=2"], "*--i2i-generator-option needs --i2i-model*"),
    (["--i2i-model=diffusers:./no/such/pipeline"], "*--i2i-model*neither an existing folder nor a Hugging Face hub id*"),
])
def test_bad_generator_options_are_usage_errors(pytester, args, message):
    pytester.makefile(".pth", m="x")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_plugin_runs_a_cyclegan_batch_norm_generator_in_train_mode(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a tiny model: extra threads only contend on a shared CPU
    ref = seeded_reference("resnet_6blocks", "batch", True, 4)  # CycleGAN --norm batch --no_dropout
    path = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    pytester.makepyfile("""
        def test_generator(i2i_generator, i2i_outputs):
            assert (i2i_generator.arch, i2i_generator.mode) == ("pix2pix-resnet6", "train")
            assert i2i_generator.options == {"ngf": 4, "use_dropout": False}
            assert not i2i_outputs.errors and len(i2i_outputs.ok_indices) == 2
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--i2i-model={path}", "--i2i-max-samples=2",
                                           "--i2i-generator-mode=train", "--i2i-arch=pix2pix-resnet6",
                                           "--i2i-arch-option=ngf=4", "--i2i-arch-option=use_dropout=false")
    result.assert_outcomes(passed=1)
