"""``i2i stats``: compute and save FID reference statistics."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("stats", help="compute and save FID reference statistics",
                       description="Compute the FID Inception statistics (n, sums, mu, sigma) of a folder of images and "
                                   "save them as .npz, readable by i2i score REAL.npz FAKE and by pytorch-fid.")
    t.add_argument("images", help="reference images: a folder or an image file")
    t.add_argument("out", help=".npz file to write")
    from pytest_i2i.cli.options import WEIGHTS_OPTIONS, add_options

    add_options(t, "weights", *WEIGHTS_OPTIONS, "resize", "device", "batch_size", "cache_dir",
                batch_size={"default": 32})
    t.set_defaults(run=_stats)


def _stats(args: argparse.Namespace) -> int:
    import pytest_i2i
    from pytest_i2i import distributed
    from pytest_i2i.cli.cache import apply_cache_dir
    from pytest_i2i.cli.options import apply_weights_options

    apply_weights_options(args)
    apply_cache_dir(args)
    # Under torchrun the ranks share the images and merge the sums; rank 0 writes the file.
    with distributed.torchrun_group(args.device):
        stats = pytest_i2i.compute_stats(args.images, weights=args.weights, device=distributed.rank_device(args.device),
                                         resize=args.resize, batch_size=args.batch_size)
        if distributed.is_main():
            path = stats.save(args.out)
            print(f"wrote statistics of {stats.n} images ({stats.dim}-d, {stats.meta}) to {path}")
    return 0
