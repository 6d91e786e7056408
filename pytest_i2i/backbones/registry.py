"""One registry for every feature backbone (timm / open_clip style): name → :class:`BackboneSpec`.

>>> import pytest_i2i
>>> pytest_i2i.list_backbones()            # doctest: +SKIP
['clip-vit-b-32', 'clip-vit-l-14-336', 'dino-vits16', 'dinov2-vits14', 'inception-fid']

Backbones register themselves where they are defined (:mod:`pytest_i2i.backbones.builtin`,
:mod:`~pytest_i2i.backbones.vit`, :mod:`~pytest_i2i.backbones.clip`), imported by
``pytest_i2i.backbones`` itself; this module never imports its registrants, and nothing here
imports torch. Name families such as ``"timm:<model>"`` are resolved on demand. The factory
that builds a loaded backbone from a name is :func:`pytest_i2i.backbones.factory.backbone`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.errors import UnknownNameError

_REGISTRY: dict[str, BackboneSpec] = {}
_FAMILIES: dict[str, tuple[Callable[[str], BackboneSpec], str]] = {}


def register_backbone(spec: BackboneSpec, *, overwrite: bool = False) -> BackboneSpec:
    """Add a backbone to the registry (used by the built-ins and by users' own backbones).

    Raises:
        ValueError: the name is taken and ``overwrite`` is false.
    """
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(f"backbone {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def register_backbone_family(prefix: str, resolver: Callable[[str], BackboneSpec], help: str) -> None:
    """Names ``"<prefix>:<rest>"`` are built on demand by ``resolver(rest)`` (e.g. ``"timm:<model>"``).

    ``resolver`` raises :class:`UnknownNameError` for a ``rest`` it does not know.
    """
    _FAMILIES[prefix] = (resolver, help)


def list_backbones(pattern: str | None = None) -> list[str]:
    """Sorted names of registered backbones, optionally filtered by a shell-style ``pattern``."""
    return [n for n in sorted(_REGISTRY) if pattern is None or fnmatch.fnmatch(n, pattern)]


def list_backbone_families() -> dict[str, str]:
    """``{prefix: usage}`` of the name families built on demand, e.g. ``{"timm": "timm:<model name>"}``."""
    return {prefix: help for prefix, (_, help) in sorted(_FAMILIES.items())}


def get_spec(name: str) -> BackboneSpec:
    """The spec of a registered name, or of a family name such as ``"timm:<model>"``.

    Raises:
        UnknownNameError: neither registered nor in a family (the message lists the known names).
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _FAMILIES:
        return _FAMILIES[prefix][0](rest)
    known = list(_REGISTRY) + [help for _, help in _FAMILIES.values()]
    raise UnknownNameError("backbone", name, known)
