"""``i2i stats``: compute and save FID reference statistics."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("stats", help="compute and save FID reference statistics")
    t.add_argument("images")
    t.add_argument("out", help=".npz file to write")
    t.add_argument("--weights", default=None)
    t.add_argument("--resize", choices=("clean", "legacy-pytorch"), default="clean")
    t.add_argument("--device", default=None)
    t.add_argument("--batch-size", type=int, default=32)
    from pytest_i2i.cli.cache import add_cache_dir_option

    add_cache_dir_option(t)
    t.set_defaults(run=_stats)


def _stats(args: argparse.Namespace) -> int:
    import pytest_i2i
    from pytest_i2i import distributed
    from pytest_i2i.cli.cache import apply_cache_dir

    apply_cache_dir(args)
    # Under torchrun the ranks share the images and merge the sums; rank 0 writes the file.
    with distributed.torchrun_group(args.device):
        stats = pytest_i2i.compute_stats(args.images, weights=args.weights, device=distributed.rank_device(args.device),
                                         resize=args.resize, batch_size=args.batch_size)
        if distributed.is_main():
            path = stats.save(args.out)
            print(f"wrote statistics of {stats.n} images ({stats.dim}-d, {stats.meta}) to {path}")
    return 0
