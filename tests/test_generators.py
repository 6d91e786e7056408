"""Tests of generator loading and running (pytest_i2i.generators).

Tiny models are saved to tmp_path in every supported format and loaded back through
``pytest_i2i.load_generator`` (the path the plugin and the CLI use). Test-only architectures are
registered for the state_dict tests and unregistered afterwards.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, Optional

import pytest
import torch
from torch import nn

import pytest_i2i
from pytest_i2i.errors import GeneratorOutputError, I2IInputError, UnknownNameError, UntrustedCheckpointError
from pytest_i2i.generators import (
    Generator,
    GeneratorArch,
    generate,
    get_generator_arch,
    list_generator_archs,
    load_generator,
    register_generator_arch,
    unregister_generator_arch,
)
from pytest_i2i.images import load_images

# torch 2.9+ marks torch.jit as deprecated; TorchScript files are still what users ship
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning")

TINY = "test-tiny-gen"
OTHER = "test-other-gen"


# --------------------------------------------------------------------------------------------
# test-only models (module level, so torch.save can pickle them by reference)
# --------------------------------------------------------------------------------------------


class TinyGen(nn.Module):
    """1x1 conv + tanh: expects and returns [-1, 1] like pix2pix."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel_size=1)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.copy_(torch.randn(self.conv.bias.shape, generator=g) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


class OtherGen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 3, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(x))


class NoisyGen(nn.Module):
    """Stochastic: adds noise drawn from the global RNG, as dropout-at-test-time or diffusion do."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x + torch.randn_like(x))


class TextEditor(nn.Module):
    """Instruction-based editor: records the texts it got."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list = []

    def forward(self, x: torch.Tensor, texts: List[str]) -> torch.Tensor:
        self.seen.append(list(texts))
        return x


class OptionalTextEditor(nn.Module):
    def forward(self, x: torch.Tensor, texts: Optional[List[str]] = None) -> torch.Tensor:
        if texts is None:
            return x
        return -x


class ScriptedTextEditor(nn.Module):
    def forward(self, x: torch.Tensor, texts: List[str]) -> torch.Tensor:
        return x * float(len(texts[0]) > 3)


class NaNForBright(nn.Module):
    """tanh, except NaN for every image whose mean (in [-1, 1] input space) is above 0.8."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        out = torch.tanh(x).clone()
        out[x.flatten(1).mean(1) > 0.8] = float("nan")
        return out


class RaiseForBright(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x.flatten(1).mean(1) > 0.8).any()):
            raise RuntimeError("kernel exploded")
        return torch.tanh(x)


class Recorder(nn.Module):
    """Has trainable parameters and dropout; records the mode and grad state it ran under."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel_size=1)
        self.drop = nn.Dropout(0.5)
        self.state: dict = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.state = {"training": self.training, "grad": torch.is_grad_enabled()}
        return torch.tanh(self.drop(self.conv(x)))


class Malicious:
    """Unpickling this runs a shell command (the classic pickle attack)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class Wrap(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


# --------------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------------


def images(n: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def reference(model: nn.Module, x01: torch.Tensor) -> torch.Tensor:
    """What a [-1, 1] -> [-1, 1] model should give for [0, 1] images, mapped back to [0, 1]."""
    with torch.no_grad():
        return ((model.eval()(x01 * 2 - 1) + 1) / 2).clamp(0, 1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def has_conv_1x1(sd) -> bool:
    return "conv.weight" in sd and tuple(sd["conv.weight"].shape[2:]) == (1, 1)


@pytest.fixture
def archs():
    """Register the test-only architectures; unregister them afterwards."""
    register_generator_arch(GeneratorArch(TINY, build=TinyGen, detect=has_conv_1x1, description="test"))
    register_generator_arch(GeneratorArch(OTHER, build=OtherGen, detect=lambda sd: "body.weight" in sd))
    yield
    unregister_generator_arch(TINY)
    unregister_generator_arch(OTHER)


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


def test_registry_lookup_and_errors(archs):
    assert {TINY, OTHER} <= set(list_generator_archs())
    assert get_generator_arch(TINY).build is TinyGen
    with pytest.raises(UnknownNameError, match=TINY) as info:
        get_generator_arch("no-such-arch")
    assert "no-such-arch" in str(info.value)
    with pytest.raises(ValueError, match="already registered"):
        register_generator_arch(GeneratorArch(TINY, build=TinyGen))
    with pytest.raises(I2IInputError, match="output_range"):
        GeneratorArch("bad", build=TinyGen, output_range=(1, -1))
    assert GeneratorArch("ok", build=TinyGen, input_range=(0, 1)).input_range == (0.0, 1.0)


def test_registry_imports_no_torch():
    code = "import sys, pytest_i2i.generators.registry; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1]).returncode == 0


def test_public_name():
    assert pytest_i2i.load_generator is load_generator


# --------------------------------------------------------------------------------------------
# loading paths
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript(tmp_path, how, archs):
    model = TinyGen(seed=1).eval()
    x = images()
    ts = torch.jit.script(model) if how == "script" else torch.jit.trace(model, x * 2 - 1)
    path = tmp_path / "gen.pt"
    torch.jit.save(ts, path)
    gen = load_generator(path)
    assert (gen.kind, gen.arch, gen.sha256, gen.source) == ("torchscript", None, sha256(path), str(path))
    torch.testing.assert_close(gen(x), reference(model, x))
    # nothing declared the ranges: input assumed [-1, 1] (noted), output detected from the tanh values
    assert gen.output_range == (-1.0, 1.0) and gen.output_range_detected
    assert any("assumed [-1, 1]" in w for w in gen.warnings)
    with pytest.raises(I2IInputError, match="TorchScript"):
        load_generator(path, arch=TINY)


def test_state_dict_with_named_arch(tmp_path, archs):
    model = TinyGen(seed=2)
    plain, nested, prefixed = tmp_path / "plain.pth", tmp_path / "nested.pth", tmp_path / "ddp.pth"
    torch.save(model.state_dict(), plain)
    torch.save({"epoch": 7, "netG": model.state_dict(), "opt_name": "adam"}, nested)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, prefixed)
    x = images()
    for path in (plain, nested, prefixed):
        gen = load_generator(path, arch=TINY)
        assert (gen.kind, gen.arch, gen.sha256, gen.trusted) == ("state_dict", TINY, sha256(path), False)
        assert gen.output_range == (-1.0, 1.0) and not gen.output_range_detected  # the arch declares it
        torch.testing.assert_close(gen(x), reference(model, x))
    assert any("module." in w for w in load_generator(prefixed, arch=TINY).warnings)
    with pytest.raises(UnknownNameError, match=TINY):
        load_generator(plain, arch="not-registered")


def test_state_dict_detected(tmp_path, archs):
    model = TinyGen(seed=3)
    path = tmp_path / "latest_net_G.pth"
    torch.save(model.state_dict(), path)
    gen = load_generator(path)
    assert gen.arch == TINY and gen.kind == "state_dict"
    torch.testing.assert_close(gen(images()), reference(model, images()))
    other = tmp_path / "other.pth"
    torch.save(OtherGen().state_dict(), other)
    assert load_generator(other).arch == OTHER


def test_detection_none_or_ambiguous(tmp_path, archs):
    unknown = tmp_path / "unknown.pth"
    torch.save({"enc.0.weight": torch.zeros(2, 2)}, unknown)
    with pytest.raises(I2IInputError, match="cannot detect the architecture") as info:
        load_generator(unknown)
    assert str(unknown) in str(info.value) and "--i2i-arch" in str(info.value) and TINY in str(info.value)

    register_generator_arch(GeneratorArch("test-tiny-clone", build=TinyGen, detect=has_conv_1x1))
    try:
        path = tmp_path / "g.pth"
        torch.save(TinyGen().state_dict(), path)
        with pytest.raises(I2IInputError, match="several") as info:
            load_generator(path)
        assert TINY in str(info.value) and "test-tiny-clone" in str(info.value) and str(path) in str(info.value)
        assert load_generator(path, arch="test-tiny-clone").arch == "test-tiny-clone"  # naming it resolves it
    finally:
        unregister_generator_arch("test-tiny-clone")


def test_state_dict_mismatch_lists_keys(tmp_path, archs):
    sd = TinyGen().state_dict()
    sd.pop("conv.bias")
    sd["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(I2IInputError) as info:
        load_generator(path, arch=TINY)
    msg = str(info.value)
    assert str(path) in msg and "conv.bias" in msg and "extra.weight" in msg and "1 missing" in msg
    wrong_shape = tmp_path / "shape.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 1, 1), "conv.bias": torch.zeros(5)}, wrong_shape)
    with pytest.raises(I2IInputError, match="size mismatch"):
        load_generator(wrong_shape, arch=TINY)


def test_factory_spec(tmp_path, monkeypatch):
    mod = "i2i_test_factory_mod"
    (tmp_path / f"{mod}.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Scale(nn.Module):
            input_range = (0.0, 1.0)     # declared through the model's attributes
            output_range = (0.0, 1.0)

            def __init__(self, factor):
                super().__init__()
                self.factor = factor

            def forward(self, x):
                return x * self.factor

        def make(factor=1.0):
            return Scale(factor)

        class Factories:
            @staticmethod
            def half():
                return Scale(0.5)

        NOT_CALLABLE = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, mod, raising=False)
    x = images()
    gen = load_generator(f"{mod}:make", arch_kwargs={"factor": 0.25})
    assert (gen.kind, gen.sha256, gen.source, gen.input_range) == ("factory", None, f"{mod}:make", (0.0, 1.0))
    torch.testing.assert_close(gen(x), x * 0.25)
    torch.testing.assert_close(load_generator(f"{mod}:Factories.half")(x), x * 0.5)
    for spec, needle in [(f"{mod}:missing", "no attribute"), (f"{mod}:NOT_CALLABLE", "not a factory"),
                         ("i2i_no_such_module_xyz:make", "cannot import"), ("not a spec:", "neither")]:
        with pytest.raises(I2IInputError, match=needle) as info:
            load_generator(spec)
        assert spec.split(":")[0] in str(info.value)
    with pytest.raises(I2IInputError, match="raised TypeError"):
        load_generator(f"{mod}:make", arch_kwargs={"nope": 1})
    monkeypatch.delitem(sys.modules, mod, raising=False)


def test_pickled_module_needs_trust(tmp_path):
    model = TinyGen(seed=4)
    path = tmp_path / "full_model.pt"
    torch.save(model, path)
    with pytest.raises(UntrustedCheckpointError) as info:
        load_generator(path)
    msg = str(info.value)
    assert str(path) in msg and "--i2i-trust-checkpoint" in msg and "trust=True" in msg
    assert "TinyGen" in msg  # names what the file would import
    gen = load_generator(path, trust=True, output_range=(-1, 1))
    assert (gen.kind, gen.trusted, gen.sha256) == ("pickle", True, sha256(path))
    assert any("trust=True" in w for w in gen.warnings)
    torch.testing.assert_close(gen(images()), reference(model, images()))
    # a trusted dict checkpoint holding a module under a known key
    nested = tmp_path / "nested_module.pt"
    torch.save({"netG": model, "epoch": 1}, nested)
    torch.testing.assert_close(load_generator(nested, trust=True)(images()), reference(model, images()))


def test_malicious_pickle_is_never_unpickled(tmp_path, archs):
    pwned = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": Malicious(pwned)}, path)
    for arch in (None, TINY):  # naming an architecture does not bypass the check
        with pytest.raises(UntrustedCheckpointError) as info:
            load_generator(path, arch=arch)
        assert str(path) in str(info.value) and "--i2i-trust-checkpoint" in str(info.value)
        assert "system" in str(info.value)
    assert not pwned.exists()
    # the file really is an exploit: unsafe unpickling (which load_generator refused) runs the payload
    torch.load(path, weights_only=False)
    assert pwned.exists()


def test_bad_files_name_the_file(tmp_path, archs):
    good = tmp_path / "good.pth"
    torch.save(TinyGen().state_dict(), good)
    data = good.read_bytes()
    ts = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.trace(TinyGen(), images()), ts)
    files = {
        "empty.pth": b"",
        "truncated.pth": data[: len(data) // 2],
        "notes.txt": b"this is not a checkpoint\n",
        "noise.pth": bytes(range(256)) * 8,
        "truncated_ts.pt": ts.read_bytes()[:-200],
        "weights.safetensors": b"garbage",
    }
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(I2IInputError) as info:
            load_generator(path, arch=TINY)
        assert str(path) in str(info.value), name
    for path in (tmp_path / "missing.pth", tmp_path):
        with pytest.raises(I2IInputError, match="does not exist|not a regular file") as info:
            load_generator(path)
        assert str(path) in str(info.value)
    tensor_only = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(I2IInputError, match="holds a Tensor"):
        load_generator(tensor_only, arch=TINY)
    meta_only = tmp_path / "meta.pth"
    torch.save({"epoch": 3}, meta_only)
    with pytest.raises(I2IInputError, match="'epoch'"):
        load_generator(meta_only, arch=TINY)


def test_safetensors_state_dict(tmp_path, archs):
    from safetensors.torch import save_file

    model = TinyGen(seed=5)
    path = tmp_path / "gen.safetensors"
    save_file(model.state_dict(), path)
    gen = load_generator(path)
    assert gen.arch == TINY
    torch.testing.assert_close(gen(images()), reference(model, images()))


# --------------------------------------------------------------------------------------------
# running: ranges, seeding, texts, validation
# --------------------------------------------------------------------------------------------


def test_output_range_mapping_and_detection():
    x = images()
    sigmoid = Generator(Wrap(torch.sigmoid), input_range=(0, 1))  # [0, 1] output, detected
    torch.testing.assert_close(sigmoid(x), torch.sigmoid(x))
    assert sigmoid.output_range == (0.0, 1.0) and sigmoid.output_range_detected
    assert any("detected" in w for w in sigmoid.warnings)

    model = TinyGen(seed=6)
    declared = Generator(model, input_range=(-1, 1), output_range=(-1, 1))
    torch.testing.assert_close(declared(x), reference(model, x))
    assert not declared.output_range_detected

    wrong = Generator(TinyGen(seed=6), output_range=(0, 1))  # a tanh model declared as [0, 1]
    with pytest.raises(GeneratorOutputError, match="outside the declared output range") as info:
        wrong(x)
    assert info.value.indices and set(info.value.indices) <= {0, 1, 2}


def test_seeded_and_repeatable():
    x = images()
    gen = Generator(NoisyGen(), output_range=(-1, 1), seed=0)
    torch.manual_seed(123)
    expected_next = torch.rand(4)
    torch.manual_seed(123)
    a, b = gen(x), gen(x)
    torch.testing.assert_close(torch.rand(4), expected_next)  # the global RNG was not advanced
    torch.testing.assert_close(a, b)
    c = Generator(NoisyGen(), output_range=(-1, 1), seed=1)(x)
    assert (a - c).abs().max() > 0.01


def test_texts_passed_only_when_accepted(tmp_path):
    x = images(2)
    editor = TextEditor()
    gen = Generator(editor, input_range=(0, 1), output_range=(0, 1))
    assert gen.takes_texts and gen.requires_texts
    torch.testing.assert_close(gen(x, ["make it snow", "add a hat"]), x)
    assert editor.seen == [["make it snow", "add a hat"]]
    with pytest.raises(I2IInputError, match="texts"):
        gen(x)
    with pytest.raises(I2IInputError, match="2 images"):
        gen(x, ["only one"])
    with pytest.raises(I2IInputError, match="list of strings"):
        gen(x, "a string")

    optional = Generator(OptionalTextEditor(), input_range=(-1, 1), output_range=(-1, 1))
    assert optional.takes_texts and not optional.requires_texts
    torch.testing.assert_close(optional(x), x)
    torch.testing.assert_close(optional(x, ["a", "b"]), 1 - x)

    plain = Generator(TinyGen(), output_range=(-1, 1))
    assert not plain.takes_texts
    torch.testing.assert_close(plain(x, ["ignored", "ignored"]), reference(TinyGen(), x))
    assert any("does not take texts" in w for w in plain.warnings)

    path = tmp_path / "editor.pt"
    torch.jit.save(torch.jit.script(ScriptedTextEditor()), path)
    ts = load_generator(path, output_range=(-1, 1))
    assert ts.takes_texts and ts.requires_texts
    torch.testing.assert_close(ts(x, ["long text", "long text"]), x)
    torch.testing.assert_close(ts(x, ["no", "no"]), torch.full_like(x, 0.5))


def test_generate_isolates_the_bad_sample():
    x = images(5) * 0.4
    x[2] = 1.0  # the "bright" sample the model fails on
    model = NaNForBright()
    gen = Generator(model, output_range=(-1, 1))
    with pytest.raises(GeneratorOutputError, match="sample 2: NaN") as info:
        gen(x)
    assert info.value.indices == [2]
    model.calls.clear()

    result = generate(gen, x, batch_size=8)
    assert list(result.errors) == [2]
    assert "inputs[2]" in result.errors[2] and "NaN" in result.errors[2]
    assert result.outputs[2] is None and result.ok_indices == [0, 1, 3, 4]
    assert model.calls == [5, 1, 1, 1, 1, 1]  # the failed batch was rerun one by one
    for i in result.ok_indices:
        torch.testing.assert_close(result.outputs[i], reference(Wrap(torch.tanh), x[i:i + 1])[0])
    out_set = result.output_images()
    assert out_set.names == ["inputs[0]", "inputs[1]", "inputs[3]", "inputs[4]"]
    torch.testing.assert_close(out_set[2], result.outputs[3])

    raising = generate(Generator(RaiseForBright(), output_range=(-1, 1)), x, batch_size=2)
    assert list(raising.errors) == [2]
    assert "RuntimeError" in raising.errors[2] and "kernel exploded" in raising.errors[2]
    assert raising.ok_indices == [0, 1, 3, 4]


def test_generate_records_undecodable_inputs(tmp_path):
    from PIL import Image

    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (8, 8), (40 * i, 10, 200)).save(p)
        paths.append(p)
    paths[1].write_bytes(b"not a png")
    result = generate(Generator(Wrap(torch.tanh), output_range=(-1, 1)), load_images(paths, name="inputs"))
    assert list(result.errors) == [1] and "img1.png" in result.errors[1]
    assert result.ok_indices == [0, 2]


@pytest.mark.parametrize("bad", [
    lambda x: x[:, :, 0],                 # 3-D
    lambda x: torch.cat([x, x]),          # wrong batch size
    lambda x: torch.cat([x, x[:, :1]], 1),  # 4 channels
    lambda x: (x, x),                     # not a tensor
])
def test_wrong_output_shape_fails_every_sample(bad):
    gen = Generator(Wrap(bad), output_range=(-1, 1))
    with pytest.raises(GeneratorOutputError) as info:
        gen(images(2))
    assert info.value.indices == [0, 1]
    result = generate(gen, images(2), batch_size=2)
    assert sorted(result.errors) == [0, 1] and result.ok_indices == []
    assert "inputs[0]" in result.errors[0] and "inputs[1]" in result.errors[1]


def test_one_channel_output_is_replicated():
    x = images(2)
    out = Generator(Wrap(lambda t: t.mean(1, keepdim=True)), input_range=(0, 1), output_range=(0, 1))(x)
    assert out.shape == (2, 3, 8, 8)
    for c in range(3):
        torch.testing.assert_close(out[:, c], x.mean(1))


def test_eval_mode_and_no_grad(tmp_path):
    model = Recorder().train()
    assert any(p.requires_grad for p in model.parameters())
    path = tmp_path / "recorder.pt"
    torch.save(model, path)
    for gen in (Generator(model, output_range=(-1, 1)), load_generator(path, trust=True, output_range=(-1, 1))):
        gen.model.train()  # even if someone flips it back
        out = gen(images(2))
        assert gen.model.state == {"training": False, "grad": False}
        assert not out.requires_grad and not out.is_inference() and out.dtype == torch.float32
        torch.testing.assert_close(out, gen(images(2)))  # dropout is off


def test_bad_images_are_input_errors():
    gen = Generator(Wrap(torch.tanh), output_range=(-1, 1))
    for bad in (images(2)[0], images(2) * 3, images(2)[:, :1], "not a tensor"):
        with pytest.raises(I2IInputError, match="images"):
            gen(bad)
    with pytest.raises(I2IInputError, match="batch_size"):
        generate(gen, images(2), batch_size=0)
    with pytest.raises(I2IInputError, match="texts"):
        generate(gen, images(2), ["one"])
    with pytest.raises(I2IInputError, match="needs a Generator"):
        generate(Wrap(torch.tanh), images(2))
