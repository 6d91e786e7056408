"""Making task manifests (``i2i judge make``): the images are copied into ``OUT/images/`` and listed
with their sha256, so a study is a frozen, self-contained folder whatever happens to the sources.

- :func:`make_pairwise`: two models' outputs on the same dataset (A/B, with the input, instruction and
  target shown);
- :func:`make_2afc`: a reference and two candidates (BAPPS / NIGHTS style);
- :func:`make_rating`: single outputs rated on a scale the user declares;
- :func:`make_perturbation_2afc`: 2AFC triplets from :mod:`pytest_i2i.perturb` whose answer is known (the
  weaker of two edits of one kind, placed in the same region, is closer to the original): a study of
  its own, or mixed into the others as gold / attention items with ``gold=N``.

Which candidate is shown on the left is drawn per item with ``seed`` and recorded (``left``); the
repeated items (``repeats``, default 10% of the items) are drawn with it too.
"""

from __future__ import annotations

import io
import math
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_i2i.errors import DatasetError, I2IInputError
from pytest_i2i.judge.tasks import (
    DEFAULT_QUESTIONS,
    FORMAT,
    ROLES,
    TASKS_NAME,
    VERSION,
    WEB_IMAGE_SUFFIXES,
    Scale,
    check_name,
    load_tasks,
)

#: operations of gold items: clearly visible at their strongest level, barely at their weakest
DEFAULT_GOLD_OPS = ("gaussian_blur", "gaussian_noise", "jpeg", "colour_shift", "patch_shuffle")
DEFAULT_GOLD_AREA = 0.1
IMAGES_DIR = "images"


def default_repeats(n_items: int) -> int:
    """10% of the items, rounded up (0 for fewer than 5 items)."""
    return 0 if n_items < 5 else math.ceil(0.1 * n_items)


class TaskBuilder:
    """Collects images and items, then writes ``OUT/tasks.json`` (used by every ``make_*`` function)."""

    def __init__(self, out: str | os.PathLike, *, name: str, kind: str, question: str | None = None, seed: int = 0,
                 description: str = "", created_by: str | None = None):
        self.out = Path(out).expanduser()
        if (self.out / TASKS_NAME).exists():
            raise DatasetError(f"{self.out}: already holds a task manifest ({TASKS_NAME}); choose a new folder")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise I2IInputError(f"seed must be an integer, got {seed!r}")
        self.name, self.kind, self.seed = name, kind, seed
        self.question = question or DEFAULT_QUESTIONS[kind]
        self.description, self.created_by = description, created_by
        self.rng = random.Random(seed)
        self.images: dict[str, str] = {}
        self._by_hash: dict[str, str] = {}
        self.items: list[dict[str, Any]] = []

    def image(self, folder: str, stem: str, source: Any) -> str:
        """Store one image under ``images/<folder>/`` and return its path relative to ``images/``.

        ``source`` is an image file (copied byte for byte when browsers show its format, else converted
        to PNG) or an in-memory image (array, tensor, PIL image; written as PNG).
        """
        import hashlib

        from pytest_i2i.files import write_bytes_atomic

        if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() in WEB_IMAGE_SUFFIXES:
            from pytest_i2i.images.convert import load_image_file

            p = Path(source)
            load_image_file(p)  # a corrupt or unreadable file is refused now, naming it, not shown broken later
            data = p.read_bytes()
            suffix = p.suffix.lower()
        else:
            data, suffix = png_bytes(source), ".png"
        digest = hashlib.sha256(data).hexdigest()
        if digest in self._by_hash:  # the same picture twice (a reference of several triplets): stored once
            return self._by_hash[digest]
        rel = f"{folder}/{stem}{suffix}"
        if rel in self.images:
            raise DatasetError(f"{self.out}: two images would be stored as {rel!r}")
        write_bytes_atomic(self.out / IMAGES_DIR / rel, data)
        self.images[rel] = digest
        self._by_hash[digest] = rel
        return rel

    def add(self, item: dict[str, Any]) -> None:
        if self.kind in ROLES:
            item["left"] = self.rng.choice(ROLES[self.kind])
        self.items.append(item)

    def write(self, *, repeats: int | None = None, scale: Scale | None = None,
              models: dict[str, str] | None = None) -> Path:
        """Draw the repeated items, write ``tasks.json`` (atomically) and load it back (checks everything)."""
        from pytest_i2i.files import write_json_atomic

        if not self.items:
            raise DatasetError(f"{self.out}: no items to write")
        n = len(self.items)
        k = default_repeats(n) if repeats is None else repeats
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
            raise I2IInputError(f"repeats must be an integer in [0, {n}] (the number of items), got {repeats!r}")
        data: dict[str, Any] = {
            "format": FORMAT, "version": VERSION, "name": self.name, "kind": self.kind, "question": self.question,
            "images_root": IMAGES_DIR, "seed": self.seed,
            "repeats": sorted(self.rng.sample([it["id"] for it in self.items], k)),
            "images": dict(sorted(self.images.items())), "items": self.items,
        }
        if self.description:
            data["description"] = self.description
        if self.created_by:
            data["created_by"] = self.created_by
        if scale is not None:
            data["scale"] = scale.to_json()
        if models:
            data["models"] = models
        path = self.out / TASKS_NAME
        write_json_atomic(path, data)
        load_tasks(path)
        return path


def png_bytes(source: Any) -> bytes:
    """An image file or in-memory image as 8-bit RGB PNG bytes (decoded by the project's image loader)."""
    from PIL import Image

    from pytest_i2i.images import load_images

    img = load_images([source] if not isinstance(source, (str, os.PathLike)) else source, name="image")[0]
    arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def images_by_stem(folder: str | os.PathLike, what: str) -> dict[str, Path]:
    """The image files of ``folder`` by file stem (not recursive; hidden files ignored)."""
    from pytest_i2i.images import IMAGE_EXTENSIONS

    p = Path(folder).expanduser()
    if not p.is_dir():
        raise DatasetError(f"{what}: {p} is not a folder")
    found: dict[str, Path] = {}
    for f in sorted(p.iterdir()):
        if f.name.startswith(".") or not f.is_file() or f.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if f.stem in found:
            raise DatasetError(f"{what}: two files with the stem {f.stem!r} in {p} ({found[f.stem].name}, {f.name})")
        found[f.stem] = f
    if not found:
        raise DatasetError(f"{what}: {p} holds no image files")
    return found


def _match(named: dict[str, dict[str, Any]], *, need: Sequence[str] | None = None) -> list[str]:
    """The stems every source has; any stem missing from one of them is an error naming both."""
    sets = {what: set(d) for what, d in named.items()}
    keys = set(need) if need is not None else set.union(*sets.values())
    problems = [f"{what} lacks {len(keys - s)} of them, e.g. {sorted(keys - s)[:5]}" for what, s in sets.items()
                if keys - s]
    if problems:
        raise DatasetError("the image sets do not match by file stem: " + "; ".join(problems))
    return sorted(keys)


def _task_id(prefix: str, k: int, n: int) -> str:
    return f"{prefix}{k + 1:0{max(4, len(str(n)))}d}"


def _gold_images(image: Any, op: str, *, area: float, region: str, seed: int) -> tuple[Any, Any, dict[str, Any]]:
    """``(weak, strong, note)``: the op at its weakest and strongest level, in the same region."""
    from pytest_i2i.perturb import get_op, local_edit

    spec = get_op(op)
    weak = local_edit(image, op, area=area, region=region, magnitude=spec.levels[0], seed=seed)
    strong = local_edit(image, op, area=area, region=region, magnitude=spec.levels[-1], seed=seed)
    note = {"op": op, "area": area, "region": region, "seed": seed, "magnitude": spec.magnitude,
            "weak": spec.levels[0], "strong": spec.levels[-1]}
    return weak.image, strong.image, note


def _check_gold_args(ops: Sequence[str], area: float) -> list[str]:
    from pytest_i2i.perturb import get_op
    from pytest_i2i.perturb.base import check_area

    ops = list(ops)
    if not ops:
        raise I2IInputError("give at least one perturbation operation")
    for op in ops:
        get_op(op)
    check_area(area)
    return ops


def _add_gold_2afc(b: TaskBuilder, sources: Sequence[tuple[str, Any]], n: int, ops: Sequence[str], area: float,
                   region: str, seed: int, *, prefix: str = "g") -> None:
    """``n`` gold triplets cycling over ``sources`` ((name, image) pairs) and ``ops``."""
    from pytest_i2i.images import load_images

    ops = _check_gold_args(ops, area)
    for k in range(n):
        name, src = sources[k % len(sources)]
        op = ops[(k // len(sources)) % len(ops)] if n > len(sources) else ops[k % len(ops)]
        ref = load_images([src] if not isinstance(src, (str, os.PathLike)) else src, name="image")[0]
        weak, strong, note = _gold_images(ref, op, area=area, region=region, seed=seed + k)
        tid = _task_id(prefix, k, n)
        stem = f"{tid}-{name}"
        p0, p1 = (weak, strong) if b.rng.random() < 0.5 else (strong, weak)
        item = {"id": tid, "reference": b.image("gold/reference", stem, src if isinstance(src, (str, os.PathLike))
                                                else ref),
                "p0": b.image("gold/p0", stem, p0), "p1": b.image("gold/p1", stem, p1),
                "gold": "p0" if p0 is weak else "p1", "note": {**note, "source": name}}
        b.add(item)


def make_perturbation_2afc(
    out: str | os.PathLike, *, images: str | os.PathLike | None = None, n_images: int = 8, size: int = 128,
    ops: Sequence[str] = DEFAULT_GOLD_OPS, area: float = DEFAULT_GOLD_AREA, region: str = "ellipse", seed: int = 0,
    name: str | None = None, question: str | None = None, repeats: int | None = None, created_by: str | None = None,
) -> Path:
    """2AFC tasks with known answers: for each image and operation, the reference and the operation at its
    weakest and strongest level in the same region; the weaker edit is the gold answer.

    Args:
        images: a folder of images (default: the photos bundled with scikit-image at ``size`` pixels).
        n_images: how many images (the first ones by name).
        ops: operations of :data:`pytest_i2i.perturb.OPS`.
        area: the edited fraction of each image.

    Returns:
        The path of ``tasks.json``.
    """
    from pytest_i2i.images import sample_images

    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise I2IInputError(f"n_images must be a positive integer, got {n_images!r}")
    ops = _check_gold_args(ops, area)
    if images is None:
        iset = sample_images(size)
        sources = [(Path(nm).stem, iset[k]) for k, nm in enumerate(iset.names[:n_images])]
        origin = f"{len(sources)} photos bundled with scikit-image at {size} px"
    else:
        files = images_by_stem(images, "--images")
        sources = [(stem, files[stem]) for stem in sorted(files)[:n_images]]
        origin = f"{len(sources)} images of {images}"
    b = TaskBuilder(out, name=name or "perturbation-2afc", kind="2afc", question=question, seed=seed,
                    description=f"Controlled local edits ({', '.join(ops)}; {area:.0%} of the image, {region}) of "
                                f"{origin}: the weaker edit is the known answer.", created_by=created_by)
    _add_gold_2afc(b, sources, len(sources) * len(ops), ops, area, region, seed, prefix="t")
    return b.write(repeats=repeats)


def make_2afc(
    out: str | os.PathLike, *, reference: str | os.PathLike, p0: str | os.PathLike, p1: str | os.PathLike,
    gold: int = 0, gold_ops: Sequence[str] = DEFAULT_GOLD_OPS, gold_area: float = DEFAULT_GOLD_AREA, seed: int = 0,
    name: str | None = None, question: str | None = None, repeats: int | None = None, created_by: str | None = None,
) -> Path:
    """2AFC tasks from three folders matched by file stem: ``reference``, candidates ``p0`` and ``p1``;
    ``gold`` extra triplets with known answers made from the references."""
    refs, c0, c1 = (images_by_stem(reference, "--reference"), images_by_stem(p0, "--p0"), images_by_stem(p1, "--p1"))
    stems = _match({"--reference": refs, "--p0": c0, "--p1": c1})
    b = TaskBuilder(out, name=name or "2afc", kind="2afc", question=question, seed=seed, created_by=created_by,
                    description=f"2AFC: references {reference}, candidates {p0} (p0) and {p1} (p1).")
    for k, stem in enumerate(stems):
        b.add({"id": _task_id("t", k, len(stems)), "reference": b.image("reference", stem, refs[stem]),
               "p0": b.image("p0", stem, c0[stem]), "p1": b.image("p1", stem, c1[stem]), "note": {"stem": stem}})
    if gold:
        _add_gold_2afc(b, [(s, refs[s]) for s in stems], _count(gold, "gold"), gold_ops, gold_area, "ellipse", seed)
    return b.write(repeats=repeats)


def _count(n: Any, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise I2IInputError(f"{what} must be a non-negative integer, got {n!r}")
    return n


def _dataset_index(data: Any) -> tuple[Any, dict[str, Any]]:
    from pytest_i2i.data import load_dataset

    ds = load_dataset(data)
    return ds, {s.uid: s for s in ds}


def make_pairwise(
    out: str | os.PathLike, *, a: str | os.PathLike, b: str | os.PathLike, data: Any = None,
    a_name: str | None = None, b_name: str | None = None, gold: int = 0, gold_ops: Sequence[str] = DEFAULT_GOLD_OPS,
    gold_area: float = DEFAULT_GOLD_AREA, seed: int = 0, name: str | None = None, question: str | None = None,
    repeats: int | None = None, created_by: str | None = None,
) -> Path:
    """A/B tasks: two models' outputs (folders of ``<uid>.<ext>``, as ``i2i generate`` writes) on the
    dataset ``data`` (a folder or manifest; default the built-in sample set), shown with each sample's
    input, instruction and target.

    ``gold`` extra items with a known answer: model A's output against the same output with a clearly
    visible local edit (A is better).
    """
    ds, samples = _dataset_index(data)
    oa, ob = images_by_stem(a, "--a"), images_by_stem(b, "--b")
    uids = _match({"--a": oa, "--b": ob}, need=list(samples))
    names = {"a": a_name or Path(a).name, "b": b_name or Path(b).name}
    for role, nm in names.items():
        check_name(nm, f"model name of --{role}")
    if names["a"] == names["b"]:
        raise I2IInputError(f"the two models have the same name {names['a']!r}; give --a-name / --b-name")
    bld = TaskBuilder(out, name=name or f"{names['a']}-vs-{names['b']}", kind="pairwise", question=question,
                      seed=seed, created_by=created_by,
                      description=f"A/B: a = {names['a']} ({a}), b = {names['b']} ({b}) on {ds.source}.")
    shown: dict[str, dict[str, Any]] = {}
    for k, uid in enumerate(uids):
        s = samples[uid]
        item: dict[str, Any] = {"id": _task_id("t", k, len(uids)), "input": bld.image("input", uid, s.input)}
        if s.target is not None:
            item["reference"] = bld.image("target", uid, s.target)
        if s.instruction:
            item["instruction"] = s.instruction
        shown[uid] = {key: item[key] for key in ("input", "reference", "instruction") if key in item}
        item.update({"a": bld.image("a", uid, oa[uid]), "b": bld.image("b", uid, ob[uid]), "note": {"uid": uid}})
        bld.add(item)
    n_gold = _count(gold, "gold")
    if n_gold:
        from pytest_i2i.images import load_images

        ops = _check_gold_args(gold_ops, gold_area)
        for k in range(n_gold):
            uid = uids[k % len(uids)]
            op = ops[k % len(ops)]
            base = load_images(oa[uid], name="--a")[0]
            _, strong, note = _gold_images(base, op, area=gold_area, region="ellipse", seed=seed + k)
            tid = _task_id("g", k, n_gold)
            bld.add({"id": tid, **shown[uid], "a": bld.image("gold/a", f"{tid}-{uid}", oa[uid]),
                     "b": bld.image("gold/b", f"{tid}-{uid}", strong), "gold": "a",
                     "note": {**note, "uid": uid, "made_from": names["a"]}})
    return bld.write(repeats=repeats, models=names)


def make_rating(
    out: str | os.PathLike, *, images: Sequence[str | os.PathLike], scale: Scale,
    models: Sequence[str] | None = None, reference: str | os.PathLike | None = None, data: Any = None,
    seed: int = 0, name: str | None = None, question: str | None = None, repeats: int | None = None,
    created_by: str | None = None,
) -> Path:
    """Rating tasks: every image of each ``images`` folder (one folder per model, named by ``models`` or
    the folder names), shown alone, with its ``reference`` (a folder matched by stem), or with the input
    and instruction of the dataset ``data`` (uid = stem; its targets become the references)."""
    if not images:
        raise I2IInputError("give at least one folder of images to rate")
    if reference is not None and data is not None:
        raise I2IInputError("give a reference folder or a dataset, not both")
    model_names = list(models) if models else [Path(f).name for f in images]
    if len(model_names) != len(images):
        raise I2IInputError(f"{len(model_names)} model names for {len(images)} image folders")
    for nm in model_names:
        check_name(nm, "model name")
    if len(set(model_names)) != len(model_names):
        raise I2IInputError(f"model names must differ: {model_names}")
    folders = {nm: images_by_stem(f, f"--images {f}") for nm, f in zip(model_names, images)}
    refs = images_by_stem(reference, "--reference") if reference is not None else None
    samples = _dataset_index(data)[1] if data is not None else None
    b = TaskBuilder(out, name=name or "rating", kind="rating", question=question, seed=seed, created_by=created_by,
                    description=f"Ratings of {', '.join(f'{m} ({f})' for m, f in zip(model_names, images))} "
                                f"on the scale {scale.min:g}..{scale.max:g} ({scale.criterion}).")
    context: dict[str, dict[str, Any]] = {}
    n = sum(len(f) for f in folders.values())
    k = 0
    for model, files in folders.items():
        if refs is not None:
            _match({"--reference": refs}, need=list(files))
        if samples is not None:
            _match({"--data": samples}, need=list(files))
        for stem in sorted(files):
            if stem not in context:
                ctx: dict[str, Any] = {}
                if refs is not None:
                    ctx["reference"] = b.image("reference", stem, refs[stem])
                if samples is not None:
                    s = samples[stem]
                    ctx["input"] = b.image("input", stem, s.input)
                    if s.target is not None:
                        ctx["reference"] = b.image("target", stem, s.target)
                    if s.instruction:
                        ctx["instruction"] = s.instruction
                context[stem] = ctx
            b.add({"id": _task_id("t", k, n), "image": b.image(f"rated/{model}", stem, files[stem]),
                   "model": model, **context[stem], "note": {"stem": stem}})
            k += 1
    return b.write(repeats=repeats, scale=scale)
