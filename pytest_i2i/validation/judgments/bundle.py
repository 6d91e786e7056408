"""The built-in judgment sets: small real parts of public sets, bundled under ``human_judgments/``.

Each bundled set is a folder ``human_judgments/<name>/`` with ``bundle.toml`` (provenance, and for
every bundled data file its sha256, how it is made and the sha256 of the native file(s) it is made
from), ``SOURCE.md``, the source's ``LICENSE`` and the data files:

- ``viescore-imagenhub``: ImagenHub's rater TSVs for 7 tasks (copied unchanged), VIEScore's
  autometric scores (compact TSV per task) and the GPT-4o and LLaVA judges' sub-scores (compact
  TSV per task, no reasoning or prompts);
- ``genai-bench-image-edition``: GenAI-Bench's 919 human votes with three judges' votes;
- ``tifa-human``: TIFA's 800 ratings with the precomputed scores.

:func:`load_builtin` checks every file's sha256 against ``bundle.toml`` before reading (trust follows
content hashes) and returns the judgment sets and scores, exactly what the native files give
(``tests/test_bundle.py`` checks that). :func:`regenerate` rebuilds every bundled file from the
native files (``python human_judgments/regenerate.py --source NATIVE_DIR``), checks the native
files' sha256 and compares the result byte for byte with the bundle.

The folder is found through ``$I2I_HUMAN_JUDGMENTS`` or next to the package (a clone, an sdist or
``pip install -e .``); a wheel does not carry it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_i2i.errors import JudgmentError
from pytest_i2i.files import sha256_file, write_bytes_atomic, write_text_atomic
from pytest_i2i.validation.judgments import genaibench, imagenhub, tifa, viescore
from pytest_i2i.validation.judgments.format import JudgmentSet, _toml_value, read_toml
from pytest_i2i.validation.judgments.scores import MetricScores
from pytest_i2i.validation.names import BUILTIN

ENV = "I2I_HUMAN_JUDGMENTS"
MANIFEST = "bundle.toml"
VIESCORE_TASKS = ("Control-Guided_IG", "Mask-Guided_IE", "Multi-Concept_IC", "Subject-Driven_IE",
                  "Subject-Driven_IG", "Text-Guided_IE", "Text-Guided_IG")
VIESCORE_JUDGES = ("gpt4o_0shot", "llava_0shot")
_VS = "paper_implementation"
_RATERS = f"{_VS}/_human_annotations/ImagenHub_human_eval_results"


def bundle_dir() -> Path:
    """The ``human_judgments/`` folder (``$I2I_HUMAN_JUDGMENTS`` or next to the package).

    Raises:
        JudgmentError: not found (an installed wheel does not carry the bundle).
    """
    env = os.environ.get(ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3] / "human_judgments")
    for c in candidates:
        if (c / "viescore-imagenhub" / MANIFEST).is_file():
            return c
    raise JudgmentError(f"the built-in judgment sets were not found (looked in {', '.join(map(str, candidates))}): "
                        f"they ship in the repository's human_judgments/ folder (a clone, an sdist or pip install -e .); "
                        f"set ${ENV} to that folder")


# -- what each bundled file is made of ------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """One bundled file: ``path`` in the bundle, made by ``make`` from ``source`` (a native file or
    folder, relative to the native set's folder)."""

    path: str
    make: str
    source: str


MAKERS: dict[str, Callable[[Path], bytes]] = {
    "copy": lambda p: p.read_bytes(),
    "viescore-judge": viescore.write_judge_table,
    "viescore-autometrics": viescore.write_autometrics_table,
    "genai-bench-votes": genaibench.write_votes_table,
    "tifa-scores": tifa.write_table,
}


def parts(name: str, native: Path | None = None) -> list[Part]:
    """The files of bundled set ``name`` and what each is made from (the rater TSVs are found by
    listing ``native``'s task folders)."""
    if name == "viescore-imagenhub":
        out = [Part("LICENSE", "copy", "LICENSE")]
        for task in VIESCORE_TASKS:
            folder = f"ImagenHub_{task}"
            if native is not None:
                for f in imagenhub.rater_files(native / _RATERS / folder):
                    out.append(Part(f"{folder}/{f.name}", "copy", f"{_RATERS}/{folder}/{f.name}"))
            out.append(Part(f"autometrics/{folder}.tsv", "viescore-autometrics",
                            f"{_VS}/_answers/results_autometrics/{folder}"))
            for judge in VIESCORE_JUDGES:
                out.append(Part(f"{judge}/{folder}.tsv", "viescore-judge", f"{_VS}/_answers/results_{judge}/{folder}"))
        return out
    if name == "genai-bench-image-edition":
        return [Part("LICENSE", "copy", "LICENSE"), Part("votes.tsv", "genai-bench-votes", "results/image_edition")]
    if name == "tifa-human":
        return [Part("LICENSE", "copy", "LICENSE"),
                Part("scores.tsv", "tifa-scores", "human_annotations/human_annotations_with_scores.json")]
    raise JudgmentError(f"unknown built-in judgment set {name!r}; built-in sets: {', '.join(BUILTIN)}")


def tree_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder: of the lines ``<relative path>\\t<sha256>`` of its files, sorted."""
    if path.is_file():
        return sha256_file(path)
    lines = sorted(f"{f.relative_to(path).as_posix()}\t{sha256_file(f)}" for f in path.rglob("*") if f.is_file())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def read_manifest(folder: Path) -> dict[str, Any]:
    return read_toml(folder / MANIFEST)


def verify(folder: Path) -> dict[str, str]:
    """Check every bundled file's sha256 against ``bundle.toml``; returns ``{path: sha256}``.

    Raises:
        JudgmentError: a file is missing or differs (naming it and both hashes).
    """
    m = read_manifest(folder)
    out = {}
    for f in m.get("files", []):
        p = folder / f["path"]
        if not p.is_file():
            raise JudgmentError(f"{folder / MANIFEST}: bundled file {f['path']} is missing")
        digest = sha256_file(p)
        if digest != f["sha256"]:
            raise JudgmentError(f"{p}: sha256 {digest} differs from {MANIFEST}'s {f['sha256']}: the bundled file was "
                                "modified (regenerate it with human_judgments/regenerate.py)")
        out[f["path"]] = digest
    return out


# -- loading ----------------------------------------------------------------------------------------
def _viescore(folder: Path, tasks: Sequence[str] | None) -> tuple[list[JudgmentSet], list[MetricScores]]:
    chosen = list(VIESCORE_TASKS)
    if tasks:
        chosen = []
        for t in tasks:
            name = t[len(viescore.TASK_PREFIX):] if t.startswith(viescore.TASK_PREFIX) else t
            if name not in VIESCORE_TASKS:
                raise JudgmentError(f"{folder}: no task {t!r}; tasks: {', '.join(VIESCORE_TASKS)}")
            chosen.append(name)
    sets, scores = [], []
    for task in chosen:
        tf = f"ImagenHub_{task}"
        js = imagenhub.load(folder / tf, {"name": tf, "source": str(folder / MANIFEST)})
        sets.append(js)
        scores += viescore.load_autometrics_table(folder / "autometrics" / f"{tf}.tsv", binding=tf)
        for judge in VIESCORE_JUDGES:
            scores.append(viescore.load_judge_table(folder / judge / f"{tf}.tsv", name=judge, binding=tf))
    return sets, scores


def load_builtin(name: str, *, tasks: Sequence[str] | None = None) -> tuple[list[JudgmentSet], list[MetricScores]]:
    """The judgment sets and scores of built-in set ``name`` (``tasks`` narrows viescore-imagenhub).

    Raises:
        JudgmentError: unknown name (listing the built-in sets), a bundled file that was modified.
    """
    if name not in BUILTIN:
        raise JudgmentError(f"unknown built-in judgment set {name!r}; built-in sets: {', '.join(BUILTIN)}")
    folder = bundle_dir() / name
    verify(folder)
    m = read_manifest(folder)
    provenance = {k: m[k] for k in ("description", "source", "licence") if k in m}
    if name == "viescore-imagenhub":
        sets, scores = _viescore(folder, tasks)
    else:
        if tasks:
            raise JudgmentError(f"--task applies to viescore-imagenhub, not to {name}")
        if name == "genai-bench-image-edition":
            js = genaibench.load_votes_table(folder / "votes.tsv", name=name, manifest={"name": name, **provenance})
        else:
            js = tifa.load_table(folder / "scores.tsv", name=name, manifest={"name": name, **provenance})
        sets, scores = [js], []
    for js in sets:
        js.manifest.update(provenance)
        js.warnings = [w for w in js.warnings if "auto-detected" not in w]
        js.manifest["bundled"] = str(folder)
    return sets, scores


# -- regeneration -----------------------------------------------------------------------------------
def regenerate(source: Path, *, names: Sequence[str] = tuple(BUILTIN), write: bool = False,
               into: Path | None = None) -> list[dict[str, Any]]:
    """Rebuild every bundled file of ``names`` from the native sets under ``source`` (a folder
    holding the unchanged public sets named in each bundled set's SOURCE.md; nothing else needs it).

    Each native file's sha256 is compared with ``bundle.toml``'s (a different native version is an
    error), and the rebuilt bytes with the bundled file. With ``write`` the files and ``bundle.toml``
    are (re)written into ``into`` (default: the bundle itself); hand-written keys of ``bundle.toml``
    (description, source, licence) are kept.

    Returns:
        One ``{"set", "path", "sha256", "bundled_sha256", "source", "source_sha256", "equal"}`` per file.

    Raises:
        JudgmentError: a native file is missing or not the version the bundle was made from.
    """
    out = []
    root = bundle_dir() if (into is None or not write) else into
    for name in names:
        native = source / name
        if not native.is_dir():
            raise JudgmentError(f"{native}: the native {name} set is not there")
        folder = root / name
        manifest = read_manifest(bundle_dir() / name) if (bundle_dir() / name / MANIFEST).is_file() else {}
        recorded = {f["path"]: f for f in manifest.get("files", [])}
        files = []
        for part in parts(name, native):
            src = native / part.source
            if not src.exists():
                raise JudgmentError(f"{src}: missing (needed for {name}/{part.path})")
            src_sha = tree_sha256(src)
            rec = recorded.get(part.path)
            if rec and not write and rec.get("source_sha256") != src_sha:
                raise JudgmentError(f"{src}: sha256 {src_sha} differs from the {rec.get('source_sha256')} the bundle "
                                    f"was made from ({name}/{MANIFEST}): a different version of the native set")
            data = MAKERS[part.make](src)
            digest = hashlib.sha256(data).hexdigest()
            target = folder / part.path
            bundled = sha256_file(target) if target.is_file() else None
            if write:
                target.parent.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(target, data)
            files.append({"path": part.path, "sha256": digest, "make": part.make, "source": part.source,
                          "source_sha256": src_sha})
            out.append({"set": name, "path": part.path, "sha256": digest, "bundled_sha256": bundled,
                        "recorded_sha256": (rec or {}).get("sha256"), "source": str(src), "source_sha256": src_sha,
                        "equal": bundled == digest and (rec or {}).get("sha256") == digest})
        if write:
            keep = {k: v for k, v in manifest.items() if k != "files"}
            keep.setdefault("name", name)
            write_text_atomic(folder / MANIFEST, _manifest_text(keep, files))
    return out


def _manifest_text(head: dict[str, Any], files: list[dict[str, Any]]) -> str:
    lines = ["# Written by human_judgments/regenerate.py: every bundled file, its sha256, and the native",
             "# file (or folder: sha256 of its '<path>\\t<sha256>' lines) it is made from.", ""]
    lines += [f"{k} = {_toml_value(v)}" for k, v in head.items()]
    for f in files:
        lines += ["", "[[files]]", *(f"{k} = {_toml_value(v)}" for k, v in f.items())]
    return "\n".join(lines) + "\n"
