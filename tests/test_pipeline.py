"""The image pipeline: DataLoader workers, progress bars, autocast refusal on CPU (no GPU needed)."""

from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")

import pytest_i2i  # noqa: E402
from pytest_i2i import pipeline  # noqa: E402
from pytest_i2i.errors import I2IInputError  # noqa: E402
from pytest_i2i.images import Preprocess, load_images  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch):
    for var in ("I2I_NUM_WORKERS", "I2I_PROGRESS", "I2I_AUTOCAST", "I2I_PREP_THREADS", "I2I_REUSE_MEMORY"):
        monkeypatch.delenv(var, raising=False)
    pipeline.reset_pipeline()
    yield
    pipeline.reset_pipeline()


def _batches(images, workers, prep=None, threads=1):
    pipeline.configure_pipeline(prep_threads=threads)
    return [(idx, b) for idx, b in images.iter_batches(3, prep, num_workers=workers)]


@pytest.mark.parametrize("prep", [Preprocess((48, 40), "clean", center_crop=True, mean=(0.4, 0.5, 0.6),
                                             std=(0.2, 0.3, 0.25)),
                                  Preprocess((299, 299), "legacy-pytorch"), None])
def test_batches_are_bit_identical_with_and_without_workers(photo_folders, prep):
    images = load_images(photo_folders[1], name="fake")
    serial = _batches(images, 0, prep)
    for parallel in (_batches(images, 2, prep), _batches(images, 0, prep, threads=2), _batches(images, 0, prep, 3)):
        assert [idx for idx, _ in serial] == [idx for idx, _ in parallel] == [[0, 1, 2], [3, 4, 5], [6, 7]]
        assert all(torch.equal(a, b) for (_, a), (_, b) in zip(serial, parallel))


def test_pair_batches_and_notes_are_identical_with_and_without_workers(photo_folders):
    from pytest_i2i.images.imageset import iter_pair_batches

    a = load_images(photo_folders[0], name="a")
    b = load_images([torch.rand(3, 40, 48)] + sorted(photo_folders[1].iterdir())[1:], name="b")
    runs = []
    for workers, threads in ((0, 1), (2, 1), (0, 2)):
        pipeline.configure_pipeline(prep_threads=threads)
        runs.append(list(iter_pair_batches(a, b, 3, resize="legacy-pytorch", start=10, num_workers=workers)))
    assert runs[0][0][3] and runs[0][0][3][0].startswith("pair 10 ")
    for other in runs[1:]:
        assert [(idx, notes) for idx, _, _, notes in runs[0]] == [(idx, notes) for idx, _, _, notes in other]
        assert all(torch.equal(x0, x1) and torch.equal(y0, y1)
                   for (_, x0, y0, _), (_, x1, y1, _) in zip(runs[0], other))


def test_mixed_sizes_batch_the_same_with_workers():
    imgs = [torch.rand(3, 8, 8), torch.rand(3, 8, 8), torch.rand(3, 6, 6), torch.rand(3, 8, 8)]
    images = load_images(imgs)
    for workers in (0, 2):
        got = _batches(images, workers)
        assert [idx for idx, _ in got] == [[0, 1], [2], [3]]
        assert torch.equal(got[0][1], torch.stack(imgs[:2]))


def test_feature_statistics_with_workers_equal_the_in_process_pipeline(photo_folders, inception_weights_file):
    from pytest_i2i.metrics.functional.frechet import FeatureStats

    images = load_images(sorted(photo_folders[1].iterdir())[:3], name="fake")
    bb = pytest_i2i.backbone("inception-fid", weights=inception_weights_file)
    bb.memo.clear()  # other tests may have memoised these images' features with another thread count
    serial = FeatureStats(2048)
    for _, batch in images.iter_batches(2, bb.preprocess("clean"), num_workers=0):
        serial.update(bb(batch)["pool3"])
    pipeline.configure_pipeline(num_workers=2)
    parallel = pytest_i2i.compute_stats(images, backbone=bb, batch_size=2)
    assert parallel.n == serial.n == 3
    assert (parallel.total == serial.total).all() and (parallel.outer == serial.outer).all()


def test_channels_last_preparation_changes_the_memory_layout_not_the_values(photo_folders):
    import dataclasses

    from pytest_i2i.images.prepare import stack_prepared

    img = load_images(photo_folders[0])[0]
    flat = Preprocess((48, 40), "clean", center_crop=True, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25))
    hwc = dataclasses.replace(flat, channels_last=True)
    a, b = flat(img), hwc(img)
    assert torch.equal(a, b) and a.is_contiguous() and not b.is_contiguous() and b.permute(1, 2, 0).is_contiguous()
    batch = stack_prepared([b, b])
    assert batch.is_contiguous(memory_format=torch.channels_last) and torch.equal(batch, torch.stack([a, a]))
    assert stack_prepared([a, a]).is_contiguous() and torch.equal(stack_prepared([a, b]), torch.stack([a, a]))


def test_channels_last_pipeline_features_equal_the_network_on_contiguous_batches(photo_folders,
                                                                                 inception_weights_file):
    """The FID Inception runs channels-last: the pipeline hands it batches laid out so (no conversion
    pass); the features are bit-identical to the network on plainly stacked prepared images."""
    images = load_images(sorted(photo_folders[0].iterdir())[:3], name="real")
    bb = pytest_i2i.backbone("inception-fid", weights=inception_weights_file)
    bb.memo.clear()
    prep = bb.preprocess("clean")
    assert prep.channels_last
    plain = torch.stack([prep(images[i]).contiguous() for i in range(3)])
    assert plain.is_contiguous()
    expected = bb(plain)["pool3"]
    pipeline.configure_pipeline(num_workers=0)
    assert torch.equal(bb.features(images, resize="clean", batch_size=3)["pool3"], expected)


def test_a_bad_image_in_a_worker_raises_the_same_error_naming_the_file(tmp_path, photo_folders):
    for p in sorted(photo_folders[0].iterdir()):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    victim = sorted(tmp_path.iterdir())[4]
    victim.write_bytes(b"\x89PNG truncated")
    images = load_images(tmp_path, name="real")
    errors = []
    for workers, threads in ((0, 1), (2, 1), (0, 2)):
        with pytest.raises(I2IInputError) as e:
            _batches(images, workers, Preprocess((32, 32)), threads)
        errors.append(str(e.value))
    assert victim.name in errors[0] and errors[0] == errors[1] == errors[2]


def test_prep_threads_default_to_the_usable_cpus_and_follow_the_environment(monkeypatch):
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 2)
    assert pipeline.prep_threads() == 2
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 64)
    assert pipeline.prep_threads() == 4
    monkeypatch.setenv("I2I_PREP_THREADS", "1")
    assert pipeline.prep_threads() == 1
    pipeline.configure_pipeline(prep_threads=3)  # the explicit setting beats the environment
    assert pipeline.prep_threads() == 3
    for bad in ("0", "two"):
        pipeline.reset_pipeline()
        monkeypatch.setenv("I2I_PREP_THREADS", bad)
        with pytest.raises(I2IInputError, match="I2I_PREP_THREADS"):
            pipeline.prep_threads()
    with pytest.raises(I2IInputError, match="prep_threads"):
        pipeline.configure_pipeline(prep_threads=0)


def test_each_batch_is_prepared_by_the_threads_before_the_caller_sees_its_first_image(photo_folders):
    """The caller's work on a batch (the forward pass on all cores) never overlaps the threads."""
    import threading

    images = load_images(photo_folders[1], name="fake")
    prepared: list[int] = []
    real_getitem = type(images).__getitem__

    def recording(self, i):
        out = real_getitem(self, i)
        prepared.append(i)
        assert threading.current_thread() is not threading.main_thread()
        return out

    pipeline.configure_pipeline(prep_threads=2)
    try:
        type(images).__getitem__ = recording
        seen = []
        for item in images.iter_prepared(Preprocess((16, 16)), batch_size=3):
            seen.append(item.index)
            batch_start = item.index // 3 * 3
            assert set(range(batch_start, min(batch_start + 3, len(images)))) <= set(prepared)
            assert max(prepared) < batch_start + 3  # and nothing of the next batch yet
    finally:
        type(images).__getitem__ = real_getitem
    assert seen == list(range(len(images)))


def test_pair_metrics_decode_each_chunk_in_the_prep_threads_once(photo_folders, monkeypatch):
    """Pair metrics look at the decoded images (their sizes) before the backbone hashes and prepares
    them: each chunk's files are decoded by the prep threads (``ImageSet.decoded``), each once, and
    the result equals the one with every file decoded in the calling thread."""
    import threading

    from pytest_i2i.images import imageset

    a = load_images(photo_folders[0], name="a").subset(range(5))  # chunks of 3 and 2 pairs
    b = load_images(photo_folders[1], name="b").subset(range(5))
    bb = pytest_i2i.backbone("dino-vits16", weights="random", seed=0)
    decoded_by: list[str] = []
    real_call = imageset._FileLoader.__call__

    def recording(self):
        decoded_by.append(threading.current_thread().name)
        return real_call(self)

    monkeypatch.setattr(imageset._FileLoader, "__call__", recording)
    pipeline.configure_pipeline(prep_threads=2)
    threaded = pytest_i2i.dino_image(a, b, backbone=bb, batch_size=3)
    assert len(decoded_by) == len(a) + len(b)
    assert all(name.startswith("i2i-prep") for name in decoded_by), decoded_by
    chunk = b.decoded([4, 1])
    assert chunk.names == [b.names[4], b.names[1]] and chunk.label == "b"
    assert torch.equal(chunk[0], real_call(b._loaders[4])) and len(decoded_by) == len(a) + len(b) + 2

    pipeline.configure_pipeline(prep_threads=1)
    bb.memo.clear()
    decoded_by.clear()
    serial = pytest_i2i.dino_image(a, b, backbone=bb, batch_size=3)
    assert set(decoded_by) == {threading.main_thread().name}
    assert serial.per_sample == threaded.per_sample and serial.warnings == threaded.warnings


def test_reuse_memory_setting_decides_whether_cpu_forward_passes_tune_malloc(monkeypatch, inception_weights_file):
    from pytest_i2i import allocator

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    bb = pytest_i2i.backbone("inception-fid", weights=inception_weights_file)
    x = torch.zeros(1, 3, 299, 299)
    pipeline.configure_pipeline(reuse_memory=False)
    bb(x)
    assert calls == []
    monkeypatch.setenv("I2I_REUSE_MEMORY", "0")
    pipeline.reset_pipeline()
    assert pipeline.reuse_memory() is False
    monkeypatch.setenv("I2I_REUSE_MEMORY", "1")
    assert pipeline.reuse_memory() is True
    bb(x)
    assert calls == [1]


def test_num_workers_default_is_zero_under_pytest_and_follows_the_environment(monkeypatch):
    assert pipeline.num_workers() == 0
    monkeypatch.setenv("I2I_NUM_WORKERS", "3")
    assert pipeline.num_workers() == 3
    monkeypatch.setenv("I2I_NUM_WORKERS", "two")
    with pytest.raises(I2IInputError, match="I2I_NUM_WORKERS"):
        pipeline.num_workers()
    with pytest.raises(I2IInputError, match="num_workers"):
        pipeline.configure_pipeline(num_workers=-1)
    monkeypatch.setattr(pipeline, "under_pytest", lambda: False)
    monkeypatch.delenv("I2I_NUM_WORKERS")
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 2)
    assert pipeline.num_workers() == 0
    monkeypatch.setattr(pipeline, "usable_cpus", lambda: 16)
    assert pipeline.num_workers() == 4


def test_progress_is_quiet_under_pytest_and_shown_when_asked(capfd, monkeypatch):
    images = load_images(torch.rand(5, 3, 8, 8), name="fake")
    monkeypatch.setattr(pipeline, "PROGRESS_DELAY_S", 0.0)
    assert not pipeline.progress_enabled()
    _batches(images, 0)
    assert "fake" not in capfd.readouterr().err
    monkeypatch.setenv("I2I_PROGRESS", "1")
    assert pipeline.progress_enabled()
    _batches(images, 0)
    assert "fake" in capfd.readouterr().err
    pipeline.configure_pipeline(progress=False)  # explicit beats the environment
    _batches(images, 0)
    assert "fake" not in capfd.readouterr().err


@pytest.mark.parametrize("tty", [True, False])
def test_outside_pytest_progress_follows_the_terminal(monkeypatch, tty):
    monkeypatch.setattr(pipeline, "under_pytest", lambda: False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    assert pipeline.progress_enabled() is tty


def test_plugin_option_turns_progress_on(pytester):
    pytester.makepyfile("""
        from pytest_i2i import pipeline

        def test_show():
            print(f"PROGRESS={pipeline.progress_enabled()}")
    """)
    pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider").stdout.fnmatch_lines(["*PROGRESS=False*"])
    pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "--i2i-progress").stdout.fnmatch_lines(
        ["*PROGRESS=True*"])


def test_autocast_is_refused_on_cpu_with_a_clear_message(monkeypatch):
    bb = pytest_i2i.backbone("inception-fid", weights="random")
    assert pipeline.autocast_dtype(bb.device) is None and pipeline.autocast_note() is None
    pipeline.configure_pipeline(autocast="float16")
    with pytest.raises(I2IInputError, match="autocast='float16' needs a CUDA device.*cpu"):
        bb(torch.rand(1, 3, 299, 299))
    pipeline.reset_pipeline()
    monkeypatch.setenv("I2I_AUTOCAST", "bfloat16")
    with pytest.raises(I2IInputError, match="needs a CUDA device"):
        pipeline.autocast_dtype("cpu")
    with pytest.raises(I2IInputError, match="float16, bfloat16"):
        pipeline.configure_pipeline(autocast="int8")


def test_autocast_is_recorded_in_results_on_cuda_only():
    from pytest_i2i.metrics.base import backbone_fields

    bb = pytest_i2i.backbone("inception-fid", weights="random")
    pipeline.configure_pipeline(autocast="float16")
    assert pipeline.autocast_note() is not None and "autocast(float16)" in pipeline.autocast_note()
    assert not any("autocast" in w for w in backbone_fields(bb)["warnings"])  # CPU backbones never autocast
