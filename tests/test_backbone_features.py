"""Backbone feature extraction: the per-image memo, centre crops, families, weights targets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import pytest_i2i
from pytest_i2i.backbones import factory, registry
from pytest_i2i.backbones.memo import FeatureMemo
from pytest_i2i.backbones.registry import register_backbone
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile
from pytest_i2i.errors import UnknownNameError
from pytest_i2i.checkpoint import load_state_dict_file
from pytest_i2i.images import Preprocess
from pytest_i2i.images.prepare import center_crop_to_aspect


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
    factory._LOADED.clear()


def test_features_are_memoised_per_image_content(registered):
    bb = pytest_i2i.backbone(registered.name, weights="random", seed=5)
    imgs = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    first = bb.features(pytest_i2i.load_images(imgs), batch_size=2)["feat"]
    assert bb.model.calls == 4 and bb.memo.misses == 4
    # same pixels in another order and container, forward passes of the same size: no new pass, same features
    again = bb.features(pytest_i2i.load_images(list(imgs.flip(0))), batch_size=2)["feat"]
    assert bb.model.calls == 4 and bb.memo.hits == 4
    torch.testing.assert_close(again, first.flip(0), rtol=0, atol=0)
    # another forward-pass size (3 rows): computed again, as a run without the memo computes it
    bb.features(pytest_i2i.load_images(imgs[:3]), batch_size=3)
    assert bb.model.calls == 7
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
    sizes = [b.shape for _, b in images.iter_batches(4, Preprocess((6, 6), center_crop=True))]
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


# -- data flows down once ---------------------------------------------------------------------------
class Counted:
    """An image loader that counts its calls (one call = one decode)."""

    def __init__(self, image, counts, i):
        self.image, self.counts, self.i = image, counts, i

    def __call__(self):
        self.counts[self.i] += 1
        return self.image


def _counted_set(images):
    from pytest_i2i.images.imageset import ImageSet

    counts = [0] * len(images)
    return ImageSet([f"img{i}" for i in range(len(images))], [Counted(im, counts, i) for i, im in enumerate(images)],
                    "counted"), counts


@pytest.mark.parametrize("cached", [False, True])
def test_each_image_is_decoded_once_per_call_and_prepared_only_when_computed(registered, tmp_path, monkeypatch,
                                                                              cached):
    from pytest_i2i import cache
    from pytest_i2i.images import prepare

    prepared = []
    real = prepare.prepare_image
    monkeypatch.setattr(prepare, "prepare_image", lambda img, *a, **k: prepared.append(1) or real(img, *a, **k))
    previous = cache.configure(tmp_path / "c" if cached else None)
    try:
        imgs = list(torch.rand(7, 3, 20, 24, generator=torch.Generator().manual_seed(1)))
        bb = pytest_i2i.backbone(registered.name, weights="random", seed=2)
        bb.memo.clear()
        images, counts = _counted_set(imgs)
        cold = bb.features(images, batch_size=3)["feat"]
        assert counts == [1] * 7 and len(prepared) == 7  # cold: decoded once, prepared once
        # a second call on the same set: memo hits, decoded (to hash) once more, never prepared again
        again = bb.features(images, batch_size=3)["feat"]
        assert counts == [2] * 7 and len(prepared) == 7 and torch.equal(again, cold)
        if cached:  # a fresh backbone (empty memo) on a warm disk cache: decoded and hashed, never prepared
            factory._LOADED.clear()
            warm_bb = pytest_i2i.backbone(registered.name, weights="random", seed=2)
            warm = warm_bb.features(images, batch_size=3)["feat"]
            assert counts == [3] * 7 and len(prepared) == 7 and not warm_bb.model_built
            assert torch.equal(warm, cold)
    finally:
        cache.restore(previous)


def test_partly_memoised_batches_are_padded_like_a_run_without_memo(registered):
    """Misses after memo hits are grouped into full batches (later misses fill them), padded to the
    size their batch has without any memo: their features equal a plain run's bit for bit."""
    bb = pytest_i2i.backbone(registered.name, weights="random", seed=3)
    imgs = torch.rand(9, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    bb.memo.clear()
    # memoise images 0, 4 (in a pass of 4 rows) and 8 (in a pass of 1 row), as the run below sizes them
    other = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    first = bb.features(pytest_i2i.load_images(torch.cat([imgs[[0, 4]], other, imgs[[8]]])), batch_size=4)["feat"]
    calls, sizes = bb.model.calls, []
    real_forward = bb._forward_rows
    bb._forward_rows = lambda batch, rows: sizes.append((batch.shape[0], rows)) or real_forward(batch, rows)
    try:
        mixed = bb.features(pytest_i2i.load_images(imgs), batch_size=4)["feat"]
    finally:
        del bb._forward_rows
    # six misses: 1, 2, 3, 5, 6, 7 -> one full batch of 4 and one of 2 padded to 4 (both before the last
    # chunk); the last chunk (image 8) is a memo hit
    assert sizes == [(4, 4), (2, 4)] and bb.model.calls - calls == 8
    memoised = first[[0, 1, 4]]
    bb.memo.clear()
    plain = bb.features(pytest_i2i.load_images(imgs), batch_size=4)["feat"]
    misses = [1, 2, 3, 5, 6, 7]
    assert torch.equal(mixed[misses], plain[misses]) and torch.equal(mixed[[0, 4, 8]], memoised)


def test_inception_normalisation_in_the_pipeline_equals_the_networks_own_2x_minus_1():
    """The FID Inception's 2x - 1 moved into the image pipeline as (x - 0.5) / 0.5: the same float32
    bits (checked exhaustively over every float32 in [0, 1] once; here on a million samples and the ends)."""
    from pytest_i2i.backbones.registry import get_spec

    spec = get_spec("inception-fid")
    x = torch.cat([torch.rand(10**6, generator=torch.Generator().manual_seed(0)),
                   torch.tensor([0.0, 1.0, 0.5, 2.0**-149, 0.25, 0.75, 1 - 2.0**-24])]).view(1, 1, -1).expand(3, 1, -1)
    got = Preprocess((1, x.shape[-1]), mean=spec.mean, std=spec.std).normalize(x)
    assert torch.equal(got.view(torch.int32), (2 * x - 1).view(torch.int32))
