"""Sharded evaluation on torch.distributed: 2 gloo processes (torchrun) against one process.

The ranks and the reference run with one intra-op thread each (torchrun's default): CPU kernels
round differently with different thread counts, and the claim is equality, not closeness.
Random-weight backbones: the numbers are uncalibrated and only compared with each other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

import pytest_i2i  # noqa: E402
from pytest_i2i.distributed import map_shards, shard_range, world  # noqa: E402
from pytest_i2i.errors import I2IInputError  # noqa: E402

VOLATILE = ("wall_time_s",)

WORKER = textwrap.dedent("""
    import json, sys
    import pytest_i2i
    from pytest_i2i import distributed
    from pytest_i2i.errors import I2IInputError

    real, fake, bad, weights, out = sys.argv[1:6]
    assert distributed.init_from_env()
    rank, size = distributed.world()
    bb = pytest_i2i.backbone("inception-fid", weights=weights)
    res = {
        "world": size,
        "fid": pytest_i2i.fid(real, fake, backbone=bb, batch_size=3).to_dict(),
        "kid": pytest_i2i.kid(real, fake, backbone=bb, batch_size=3, subsets=5, subset_size=4).to_dict(),
        # batch_size 16 > 8 images: rank 1 gets an empty shard
        "inception_score": pytest_i2i.inception_score(fake, backbone=bb, batch_size=16, splits=2).to_dict(),
        "psnr": pytest_i2i.psnr(real, fake, batch_size=3).to_dict(),
        # a backbone per-sample metric (the same helper serves CLIP-I, DINO-I and the patch distance)
        "dino_image": pytest_i2i.dino_image(real, fake, weights="random", batch_size=3).to_dict(),
    }
    stats = pytest_i2i.compute_stats(real, backbone=bb, batch_size=3)
    res["stats"] = {"n": stats.n, "total": stats.total.tolist(), "outer_trace": float(stats.outer.trace())}
    try:  # the corrupt image is in rank 1's shard: every rank must raise it, none may hang
        pytest_i2i.psnr(real, bad, batch_size=3)
    except I2IInputError as e:
        res["error"] = str(e)
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(res, f)
    # the end of a torch.distributed script: wait for the other rank, then tear the group down
    # (a gloo group left to the interpreter's exit aborted ranks at random in torch 2.14)
    import torch.distributed as dist
    dist.barrier()
    dist.destroy_process_group()
    # Then leave without the interpreter's teardown: under load a rank still aborted now and then at
    # exit ("terminate called without an active exception", torch 2.14's gloo/c10d teardown); what
    # this test checks is the results, not torch's teardown.
    import os
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
""")


def _torchrun(args: list[str], cwd, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "I2I_NUM_WORKERS": "0", "I2I_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _strip(res: dict) -> dict:
    return {k: {kk: vv for kk, vv in v.items() if kk not in VOLATILE} if isinstance(v, dict) else v
            for k, v in res.items()}


def _same(single: dict, sharded: dict) -> None:
    a = {k: v for k, v in single.items() if k not in VOLATILE}
    b = {k: v for k, v in sharded.items() if k not in VOLATILE}
    assert a == b


@pytest.mark.parametrize("n, batch_size, size", [(10, 2, 2), (10, 3, 3), (7, 16, 2), (1, 1, 4), (100, 8, 3)])
def test_shards_partition_the_samples_on_batch_boundaries(n, batch_size, size):
    shards = [shard_range(n, batch_size, rank=r, world_size=size) for r in range(size)]
    assert [i for s in shards for i in s] == list(range(n))
    assert all(s.start % batch_size == 0 for s in shards if len(s))
    assert max(len(s) for s in shards) - min(len(s) for s in shards) <= batch_size * (1 + (n % batch_size > 0))


def test_single_process_calls_compute_once_on_everything():
    assert world() == (0, 1)
    calls = []
    assert map_shards(5, 2, lambda idx: calls.append(idx) or torch.arange(5)[idx.start:idx.stop]).tolist() == [0, 1, 2, 3, 4]
    assert calls == [range(0, 5)]


def test_api_metrics_on_two_gloo_ranks_equal_one_process(tmp_path, photo_folders, inception_weights_file, one_thread):
    real, fake = photo_folders
    bad = tmp_path / "bad"
    bad.mkdir()
    names = sorted(p.name for p in fake.iterdir())
    for name in names:
        (bad / name).write_bytes((fake / name).read_bytes())
    (bad / names[-1]).write_bytes(b"not a png")  # the last image: in rank 1's shard
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    _torchrun([str(script), str(real), str(fake), str(bad), str(inception_weights_file), str(tmp_path)], tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["world"] == 2
    assert _strip(ranks[0]) == _strip(ranks[1])  # every rank ends with the whole result

    bb = pytest_i2i.backbone("inception-fid", weights=inception_weights_file)
    for loaded in (bb, pytest_i2i.backbone("dino-vits16", weights="random")):
        loaded.memo.clear()  # features memoised by other tests may come from another thread count
    got = ranks[0]
    fid = pytest_i2i.fid(real, fake, backbone=bb, batch_size=3)
    assert got["fid"]["value"] == pytest.approx(fid.value, rel=1e-9, abs=0)
    _same({**fid.to_dict(), "value": got["fid"]["value"]}, got["fid"])
    _same(pytest_i2i.kid(real, fake, backbone=bb, batch_size=3, subsets=5, subset_size=4).to_dict(), got["kid"])
    _same(pytest_i2i.inception_score(fake, backbone=bb, batch_size=16, splits=2).to_dict(), got["inception_score"])
    _same(pytest_i2i.psnr(real, fake, batch_size=3).to_dict(), got["psnr"])
    _same(pytest_i2i.dino_image(real, fake, weights="random", batch_size=3).to_dict(), got["dino_image"])
    stats = pytest_i2i.compute_stats(real, backbone=bb, batch_size=3)
    assert got["stats"]["n"] == stats.n == 8
    assert got["stats"]["total"] == pytest.approx(stats.total.tolist(), rel=1e-12)
    assert got["stats"]["outer_trace"] == pytest.approx(float(stats.outer.trace()), rel=1e-12)

    with pytest.raises(I2IInputError) as single_error:
        pytest_i2i.psnr(real, bad, batch_size=3)
    assert names[-1] in got["error"] and ranks[1]["error"] == got["error"] == str(single_error.value)


def test_cli_score_under_torchrun_prints_once_and_equals_one_process(tmp_path, photo_folders, inception_weights_file,
                                                                     one_thread):
    real, fake = photo_folders
    out = tmp_path / "dist.json"
    args = ["-m", "pytest_i2i.cli", "score", str(real), str(fake), "--weights", str(inception_weights_file),
            "--metrics", "l1,ssim,fid,kid", "--batch-size", "3", "--json", str(out)]
    proc = _torchrun(args, tmp_path)
    assert proc.stdout.count("wrote ") == 1 and proc.stdout.count("fid ↓") == 1  # rank 0 only
    sharded = {r["name"]: r for r in json.loads(out.read_text())["results"]}

    from pytest_i2i.cli import main

    pytest_i2i.backbone("inception-fid", weights=inception_weights_file).memo.clear()
    single_out = tmp_path / "single.json"
    assert main(args[2:-1] + [str(single_out)]) == 0
    single = {r["name"]: r for r in json.loads(single_out.read_text())["results"]}
    assert sharded["fid"]["value"] == pytest.approx(single["fid"]["value"], rel=1e-9, abs=0)
    for name in ("l1", "ssim", "kid"):
        _same(single[name], sharded[name])


def test_parts_of_different_kinds_from_the_ranks_are_refused():
    from pytest_i2i.distributed import _concat

    with pytest.raises(I2IInputError, match="out of step"):
        _concat([torch.zeros(2), [1.0]])
    assert _concat([(torch.zeros(1), ["a"]), (torch.ones(2), ["b"])])[1] == ["a", "b"]


def test_plugin_creates_a_process_group_only_for_runs_that_use_it(tmp_path):
    """An unrelated test run launched by torchrun keeps control of torch.distributed; a run that sets
    any pytest-i2i option (command line, environment or ini) gets the group its metrics shard over."""
    (tmp_path / "test_group.py").write_text(textwrap.dedent("""
        import os
        import torch.distributed as dist

        def test_group_state():
            assert dist.is_initialized() == (os.environ["EXPECT_GROUP"] == "1")
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("I2I_")}  # no pytest-i2i option set
    for expect, extra in (("0", []), ("1", ["--i2i-seed=1"])):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "test_group.py", *extra]
        proc = subprocess.run(cmd, cwd=tmp_path, env={**env, "OMP_NUM_THREADS": "1", "EXPECT_GROUP": expect},
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
