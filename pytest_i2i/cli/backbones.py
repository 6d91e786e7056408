"""``i2i backbones``: list the registered backbones."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("backbones", help="list the registered backbones")
    b.set_defaults(run=_backbones)


def _backbones(args: argparse.Namespace) -> int:
    from pytest_i2i.backbones.registry import get_spec, list_backbone_families, list_backbones

    for name in list_backbones():
        spec = get_spec(name)
        print(f"{name}: {spec.description} [input {spec.input_size[0]}x{spec.input_size[1]}, "
              f"weights {spec.pretrained.files[0].filename}]")
    for usage in list_backbone_families().values():
        print(f"{usage}: built on demand")
    return 0
