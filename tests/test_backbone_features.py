"""Backbone feature extraction: the per-image memo, centre crops, families, weights targets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import pytest_i2i
from pytest_i2i.backbones import registry
from pytest_i2i.backbones.registry import BackboneSpec, FeatureMemo, load_state_dict_file, register_backbone
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile
from pytest_i2i.errors import UnknownNameError
from pytest_i2i.images.imageset import center_crop_to_aspect


class Wrapped(nn.Module):
    """An adapter (adds an output) around an inner net that owns the weights."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Conv2d(3, 2, kernel_size=3)
        self.calls = 0

    def forward(self, x):
        self.calls += x.shape[0]
        return {"feat": self.inner(x).mean(dim=(2, 3))}


def _init(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def _spec(name="wrapped-test-net", **kw):
    return BackboneSpec(name=name, create=Wrapped, init_random=_init,
                        pretrained=PretrainedCfg(files=(WeightsFile("wrapped.pth"),)), input_size=(16, 16),
                        outputs=("feat",), weights_target=lambda m: m.inner, **kw)


@pytest.fixture
def registered():
    spec = register_backbone(_spec(), overwrite=True)
    yield spec
    registry._REGISTRY.pop(spec.name, None)
    registry._FAMILIES.pop("toy", None)
    registry._LOADED.clear()


def test_features_are_memoised_per_image_content(registered):
    bb = pytest_i2i.backbone(registered.name, weights="random", seed=5)
    imgs = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    first = bb.features(pytest_i2i.load_images(imgs), batch_size=2)["feat"]
    assert bb.model.calls == 5 and bb.memo.misses == 5
    # same pixels in another order and container: no new forward pass, same features
    again = bb.features(pytest_i2i.load_images(list(imgs.flip(0))), batch_size=3)["feat"]
    assert bb.model.calls == 5 and bb.memo.hits == 5
    torch.testing.assert_close(again, first.flip(0), rtol=0, atol=0)
    # the direct computation agrees
    with torch.no_grad():
        direct = bb.model.inner(imgs).mean(dim=(2, 3))
    torch.testing.assert_close(first, direct, rtol=1e-6, atol=1e-6)


def test_memo_is_bounded_and_can_be_disabled():
    memo = FeatureMemo(max_bytes=3 * 4 * 4)  # three 4-float entries
    for i in range(5):
        memo.put(str(i), {"f": torch.full((4,), float(i))})
    assert memo.get("0") is None and memo.get("1") is None and memo.get("4") is not None
    off = FeatureMemo(max_bytes=0)
    off.put("a", {"f": torch.zeros(4)})
    assert off.get("a") is None


def test_center_crop_to_aspect():
    tall = torch.arange(3 * 10 * 4, dtype=torch.float32).reshape(3, 10, 4)
    crop = center_crop_to_aspect(tall, (8, 8))
    assert crop.shape == (3, 4, 4) and torch.equal(crop, tall[:, 3:7, :])
    wide = torch.rand(3, 4, 12)
    assert torch.equal(center_crop_to_aspect(wide, (2, 1)), wide[:, :, 5:7])
    images = pytest_i2i.load_images([tall / tall.max(), wide])
    sizes = [b.shape for _, b in images.iter_batches(4, size=(6, 6), center_crop=True)]
    assert sizes == [(2, 3, 6, 6)]


def test_weights_target_and_safetensors_and_filter(tmp_path, registered):
    from safetensors.torch import save_file

    inner = nn.Conv2d(3, 2, kernel_size=3)
    _init(inner, 9)
    save_file({k: v.contiguous() for k, v in inner.state_dict().items()}, str(tmp_path / "w.safetensors"))
    bb = pytest_i2i.backbone(registered.name, weights=tmp_path / "w.safetensors")
    assert torch.equal(bb.model.inner.weight, inner.weight) and not bb.calibrated
    # a transform sees the raw dict and the target module
    seen = {}

    def rename(sd, target):
        seen["target"] = target
        return {k.removeprefix("old."): v for k, v in sd.items()}

    torch.save({"old." + k: v for k, v in inner.state_dict().items()}, tmp_path / "old.pth")
    fresh = nn.Conv2d(3, 2, kernel_size=3)
    load_state_dict_file(fresh, tmp_path / "old.pth", what="test", transform=rename)
    assert seen["target"] is fresh and torch.equal(fresh.weight, inner.weight)


def test_backbone_family_and_unknown_names(registered):
    def resolve(rest: str) -> BackboneSpec:
        if rest != "small":
            raise UnknownNameError("toy model", rest, ["small"])
        return _spec(name="toy:small")

    registry.register_backbone_family("toy", resolve, help="toy:<size>")
    bb = pytest_i2i.backbone("toy:small", weights="random")
    assert bb.name == "toy:small"
    with pytest.raises(UnknownNameError, match="small"):
        pytest_i2i.backbone("toy:huge", weights="random")
    with pytest.raises(UnknownNameError, match=r"toy:<size>.*|inception-fid") as e:
        pytest_i2i.backbone("nonexistent", weights="random")
    assert "toy:<size>" in str(e.value) and "inception-fid" in str(e.value)
