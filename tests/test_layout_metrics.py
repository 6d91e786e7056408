"""Label-layout metrics: the Zhao et al. label-based contrastive loss, kNN purity and FCN-score.

The contrastive losses are compared with a direct python-loop implementation of the formulas;
FCN-score with numbers worked out by hand on hand-made label maps and a fixed-logits segmenter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import pytest_i2i
from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional.layout import (
    confusion_matrix, cross_image_contrastive_loss, downsample_labels, knn_label_purity, label_contrastive_loss,
    segmentation_scores,
)


def loop_loss(f, y, g, z, tau, ignore, same_image):
    """The paper's loss for one image, written with python loops over cells."""
    f = [v / np.linalg.norm(v) for v in f.reshape(-1, f.shape[-1]).tolist() for v in [np.array(v)]]
    g = [v / np.linalg.norm(v) for v in g.reshape(-1, g.shape[-1]).tolist() for v in [np.array(v)]]
    y, z = y.reshape(-1).tolist(), z.reshape(-1).tolist()
    losses = []
    for p in range(len(f)):
        if y[p] == ignore:
            continue
        positives = [q for q in range(len(g)) if z[q] == y[p] and not (same_image and q == p)]
        negatives = [n for n in range(len(f)) if y[n] != y[p] and y[n] != ignore]
        if not positives:
            continue
        terms = []
        for q in positives:
            e_pos = math.exp(float(f[p] @ g[q]) / tau)
            denom = e_pos + sum(math.exp(float(f[p] @ f[n]) / tau) for n in negatives)
            terms.append(-math.log(e_pos / denom))
        losses.append(sum(terms) / len(terms))
    return sum(losses) / len(losses)


def random_case(seed, n=3, h=4, w=5, d=6, classes=3):
    gen = torch.Generator().manual_seed(seed)
    f = torch.randn(n, h, w, d, generator=gen, dtype=torch.float64)
    y = torch.randint(0, classes, (n, h, w), generator=gen)
    y[0, 0, :2] = 255
    return f, y


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_within_image_loss_matches_loops(tau):
    f, y = random_case(0)
    got = label_contrastive_loss(f, y, temperature=tau)
    want = [loop_loss(f[i], y[i], f[i], y[i], tau, 255, True) for i in range(len(f))]
    assert got.tolist() == pytest.approx(want, abs=1e-6, rel=1e-6)


def test_cross_image_loss_matches_loops():
    f, y = random_case(1)
    g, z = f.roll(-1, 0), y.roll(-1, 0)
    got = cross_image_contrastive_loss(f, y, g, z, temperature=0.2)
    want = [loop_loss(f[i], y[i], g[i], z[i], 0.2, 255, False) for i in range(len(f))]
    assert got.tolist() == pytest.approx(want, abs=1e-6, rel=1e-6)


def clustered(labels, d=4, noise=0.0, seed=0):
    """Features equal to a class direction (±e_0 for 2 classes) plus optional noise."""
    base = torch.zeros(int(labels.max()) + 1, d, dtype=torch.float64)
    base[0, 0], base[1, 0] = 1.0, -1.0
    gen = torch.Generator().manual_seed(seed)
    return base[labels] + noise * torch.randn(*labels.shape, d, generator=gen, dtype=torch.float64)


def test_clustered_features_reach_the_minimum_and_shuffling_raises_the_loss():
    y = torch.zeros(2, 4, 4, dtype=torch.int64)
    y[:, :, 2:] = 1
    f = clustered(y)
    tau = 0.1
    minimum = math.log(1 + 8 * math.exp(-2 / tau))  # 8 negatives at cosine −1, positive at cosine 1
    assert label_contrastive_loss(f, y, temperature=tau).tolist() == pytest.approx([minimum] * 2, abs=1e-9)
    assert cross_image_contrastive_loss(f, y, f.roll(1, 0), y.roll(1, 0), temperature=tau).tolist() == \
        pytest.approx([minimum] * 2, abs=1e-9)
    shuffled = y.flatten(1)[:, torch.randperm(16, generator=torch.Generator().manual_seed(0))].view(2, 4, 4)
    assert (label_contrastive_loss(f, shuffled, temperature=tau) > minimum + 1.0).all()
    assert (cross_image_contrastive_loss(f, shuffled, f, y, temperature=tau) > minimum + 1.0).all()
    assert knn_label_purity(f, y, k=3).tolist() == [1.0, 1.0]
    assert (knn_label_purity(clustered(y, noise=0.01), shuffled, k=3) < 1.0).all()


def test_knn_purity_by_hand():
    # cells a=(1,0) b=(0.9,0.1) label 0, c=(0,1) label 1, d=(0.8,0.2) label 1; k=1:
    # a→b (same), b→a (same), c→d (same), d→b (different): purity 3/4
    f = torch.tensor([[[[1.0, 0.0], [0.9, 0.1]], [[0.0, 1.0], [0.8, 0.2]]]])
    y = torch.tensor([[[0, 0], [1, 1]]])
    assert knn_label_purity(f, y, k=1).tolist() == [0.75]


def test_downsample_labels_nearest_and_majority():
    y = torch.tensor([[[0, 0, 1, 1],
                       [0, 2, 1, 1],
                       [255, 255, 3, 3],
                       [255, 2, 3, 3]]])
    assert downsample_labels(y, (2, 2)).tolist() == [[[2, 1], [2, 3]]]
    assert downsample_labels(y, (2, 2), mode="majority").tolist() == [[[0, 1], [2, 3]]]
    with pytest.raises(I2IInputError, match="mode"):
        downsample_labels(y, (2, 2), mode="bilinear")


def test_contrastive_bad_input():
    f, y = random_case(2)
    with pytest.raises(I2IInputError, match="temperature"):
        label_contrastive_loss(f, y, temperature=0)
    with pytest.raises(I2IInputError, match="integer"):
        label_contrastive_loss(f, y.double())
    with pytest.raises(I2IInputError, match="NaN"):
        label_contrastive_loss(f.clone().fill_(float("nan")), y)
    with pytest.raises(I2IInputError, match="labels\\[0\\]"):
        label_contrastive_loss(f, torch.full_like(y, 255))


class FixedLogits(torch.nn.Module):
    def __init__(self, pred: torch.Tensor, num_classes: int):
        super().__init__()
        self.register_buffer("logits", torch.nn.functional.one_hot(pred, num_classes).permute(0, 3, 1, 2).float())

    def forward(self, x):
        return self.logits[: x.shape[0]]


def test_fcn_score_by_hand(tmp_path):
    # 2 images of 2x4, 3 classes; predictions at half resolution 1x2 (upsampled by nearest).
    labels = [np.array([[0, 0, 1, 1], [0, 0, 1, 255]], dtype=np.uint8),
              np.array([[2, 2, 2, 2], [0, 0, 2, 2]], dtype=np.uint8)]
    pred = torch.tensor([[[0, 1]], [[2, 0]]])  # image 0 left half 0 right 1; image 1 left 2 right 0
    for i, lab in enumerate(labels):
        Image.fromarray(lab, mode="L").save(tmp_path / f"{i}.png")
    outputs = torch.rand(2, 3, 2, 4, generator=torch.Generator().manual_seed(0))
    r = pytest_i2i.fcn_score(outputs, tmp_path, segmenter=FixedLogits(pred, 3), num_classes=3)
    # image 0: 4 px 0→0, 3 px 1→1 (one ignored): perfect.  image 1: row 0 [2,2,2,2] pred [2,2,0,0],
    # row 1 [0,0,2,2] pred [2,2,0,0]: 2→2 twice, 2→0 four times, 0→2 twice.
    # set confusion: C00=4, C02=2, C11=3, C20=4, C22=2
    assert r.extra["confusion_matrix"] == [[4, 0, 2], [0, 3, 0], [4, 0, 2]]
    assert r.extra["pixel_accuracy"] == pytest.approx(9 / 15)
    assert r.extra["class_accuracy"] == pytest.approx((4 / 6 + 1 + 2 / 6) / 3)
    iou = [4 / (6 + 8 - 4), 1.0, 2 / (6 + 4 - 2)]
    assert r.extra["per_class_iou"] == pytest.approx(iou)
    assert r.value == pytest.approx(sum(iou) / 3)
    # image 1 alone: C00=0, C02=2, C20=4, C22=2; IoU0 = 0/(2+4) = 0, IoU2 = 2/(6+4-2), class 1 absent
    assert r.per_sample == pytest.approx([1.0, (0 + 2 / 8) / 2])
    assert r.extra["per_image"]["pixel_accuracy"] == pytest.approx([1.0, 2 / 8])
    assert r.extra["per_image"]["class_accuracy"] == pytest.approx([1.0, (0 + 2 / 6) / 2])
    assert r.sample_names == ["outputs[0]", "outputs[1]"] and r.calibrated


def test_fcn_score_bad_input():
    outputs = torch.rand(1, 3, 2, 2)
    seg = FixedLogits(torch.zeros(1, 2, 2, dtype=torch.int64), 2)
    with pytest.raises(I2IInputError, match="outside"):
        pytest_i2i.fcn_score(outputs, [np.array([[0, 5], [0, 0]])], segmenter=seg, num_classes=2)
    with pytest.raises(I2IInputError, match="logits"):
        pytest_i2i.fcn_score(outputs, [np.zeros((2, 2), np.int64)], segmenter=seg, num_classes=3)
    with pytest.raises(I2IInputError, match="2 label maps"):
        pytest_i2i.fcn_score(outputs, [np.zeros((2, 2), np.int64)] * 2, segmenter=seg, num_classes=2)
    with pytest.raises(I2IInputError, match="integer"):
        pytest_i2i.fcn_score(outputs, [np.zeros((2, 2))], segmenter=seg, num_classes=2)


def test_segmentation_scores_match_confusion_of_perfect_prediction():
    y = torch.tensor([[[0, 1], [2, 255]]])
    s = segmentation_scores(confusion_matrix(y.masked_fill(y == 255, 0), y, 3).sum(0))
    assert float(s["pixel_accuracy"]) == 1.0 and float(s["mean_iou"]) == 1.0 and float(s["class_accuracy"]) == 1.0


def test_layout_contrast_end_to_end_random_dino(tmp_path):
    timm = pytest.importorskip("timm")
    from pytest_i2i.backbones.timm_adapter import init_random
    from pytest_i2i.metrics.functional.layout import downsample_labels as ds

    model = timm.create_model("vit_small_patch16_224.dino", pretrained=False)
    init_random(model, 5)
    path = tmp_path / "dino.pth"
    torch.save(model.state_dict(), path)
    bb = pytest_i2i.backbone("dino-vits16", weights=path)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 64, 64, generator=gen)
    labels = torch.zeros(2, 64, 64, dtype=torch.int64)
    labels[:, :, 32:] = 1
    labels[1, :16] = 2
    r = pytest_i2i.layout_contrast(images, labels, backbone=bb, n_resamples=200)
    f = bb.features(pytest_i2i.load_images(images), batch_size=2)["patch_tokens"]
    y = ds(labels, tuple(f.shape[1:3]))
    want = [loop_loss(f[i].double(), y[i], f[i].double(), y[i], 0.1, 255, True) for i in range(2)]
    assert r.per_sample == pytest.approx(want, abs=1e-6)
    assert r.name == "layout_contrast" and not r.calibrated and r.extra["grid"] == [14, 14]
    assert r.extra["cross_image"] is not None and 0.0 <= r.extra["knn_purity_mean"] <= 1.0
    rc = pytest_i2i.layout_contrast(images, labels, backbone=bb, variant="cross", n_resamples=200)
    assert rc.per_sample == pytest.approx(r.extra["cross_image"])
