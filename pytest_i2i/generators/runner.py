"""Running a loaded generator: the :class:`Generator` protocol and :func:`generate` over an image set.

A generator takes a batch of canonical images ((N, 3, H, W) float32 in [0, 1]) and, for
instruction-based editors, one text per image, and returns a batch of canonical images. The
wrapper converts to and from the model's own value ranges, runs it in eval mode (or, on request,
in train mode, see :data:`MODES`) without autograd and with a fixed seed, and validates every
output batch.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pytest_i2i.errors import GenerationTimeout, GeneratorCallError, GeneratorOutputError, I2IInputError
from pytest_i2i.checks import check_int, check_positive_seconds
from pytest_i2i.generators.options import MODES
from pytest_i2i.generators.registry import Range, check_range
from pytest_i2i.images import ImageSet, load_images
from pytest_i2i.texts import check_texts

#: Output values may leave the declared range by this much (round-off of tanh / sigmoid heads).
RANGE_TOLERANCE = 1e-3


def sample_seed(seed: int, key: str | int) -> int:
    """The seed of one sample: a 63-bit integer derived from the run's ``seed`` and the sample's
    name (its dataset uid) or index, so a sample's random draws do not depend on which other
    samples share its batch, on their order, or on the batch size."""
    digest = hashlib.sha256(f"pytest-i2i/{int(seed)}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class Generator:
    """A loaded image-to-image model behind one calling convention, with its provenance.

    ``generator(images, texts=None)`` takes (N, 3, H, W) float images in [0, 1] and returns
    (N, 3, H', W') float32 images in [0, 1] on the CPU (H', W' may differ from H, W).

    - Input images are mapped linearly from [0, 1] to ``input_range`` before the call.
    - ``output_range`` is the model's output range; when ``None`` it is detected from the first
      output batch with finite values: any value below ``-1e-3`` means ``(-1, 1)``, otherwise
      ``(0, 1)`` (recorded in ``output_range_detected`` and ``warnings``). Declare it to avoid
      mis-detection on a batch that happens to be all non-negative.
    - The model runs in eval mode under ``torch.inference_mode()`` with ``torch.manual_seed(seed)``
      inside ``torch.random.fork_rng()``: each call is repeatable and leaves the global RNG alone.
      With ``mode="train"`` it runs in train mode instead, one sample at a time, each seeded with
      :func:`sample_seed` (see :data:`MODES`).
    - A model whose call takes a keyword argument ``seeds`` (e.g. a diffusion pipeline) gets one
      seed per sample, :func:`sample_seed` of ``seed`` and the sample's name, and must draw each
      sample's noise from its own seed: its outputs are then independent of batch composition.
    - ``texts`` are passed (as the second positional argument) only to models whose forward
      takes a second positional parameter; otherwise they are dropped with a warning recorded.
      ``text_field`` names the dataset text column they come from (``"instruction"``,
      ``"source_caption"`` or ``"target_caption"``); callers pass that column.
    - A 1-channel output is replicated to RGB. A non-tensor, a non-4-D tensor, a wrong batch
      size or a channel count other than 1 or 3 raises :class:`GeneratorOutputError` for every
      sample; NaN/Inf or values outside ``output_range`` by more than 1e-3 raise it naming only
      the offending samples (``error.indices``). In-range outputs are clamped to [0, 1].

    Attributes:
        model: the wrapped ``nn.Module`` (TorchScript included) or plain callable.
        kind: how it was loaded: ``"torchscript"``, ``"state_dict"``, ``"factory"``, ``"pickle"``
            or ``"module"`` (wrapped directly).
        source: the file path or ``package.module:factory`` spec it came from.
        sha256: sha256 of the loaded file (``None`` for a factory or a wrapped module).
        arch: the registered architecture name for a state_dict checkpoint, else ``None``.
        options: the architecture options (state_dict) or generation options (pipelines) in use.
        mode: ``"eval"`` or ``"train"`` (:data:`MODES`).
        trusted: the file was unpickled with code execution because the user passed ``trust=True``.
        warnings: notes recorded while loading and running (assumed ranges, dropped texts, ...).
    """

    def __init__(
        self,
        model: nn.Module | Any,
        *,
        kind: str = "module",
        source: str = "<module>",
        sha256: str | None = None,
        arch: str | None = None,
        input_range: Range = (-1.0, 1.0),
        output_range: Range | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        trusted: bool = False,
        warnings: Sequence[str] = (),
        mode: str = "eval",
        text_field: str = "instruction",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(model):
            raise I2IInputError(f"generator {source}: a {type(model).__name__} is not callable")
        if mode not in MODES:
            raise I2IInputError(f"generator mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if isinstance(model, nn.Module):
            model = model.to(self.device).eval()
            for p in model.parameters():  # not requires_grad_(): ScriptModules do not support it
                p.requires_grad_(False)
        self.model = model
        self.kind = kind
        self.source = source
        self.sha256 = sha256
        self.arch = arch
        self.input_range = check_range(input_range, f"generator {source}: input_range")
        self.output_range = (None if output_range is None
                             else check_range(output_range, f"generator {source}: output_range"))
        self.output_range_detected = False
        self.seed = int(seed)
        self.trusted = trusted
        self.warnings: list[str] = list(warnings)
        self.mode = mode
        self.text_field = text_field
        self.options: dict[str, Any] = dict(options or {})
        self.takes_texts, self.requires_texts = _text_parameter(model)
        self.takes_seeds = _takes_seeds(model)
        self._input_dtype = _float_dtype(model)
        self._warned_texts_dropped = False
        #: why the generator must not be called again (a call that timed out is still running), else None
        self.abandoned: str | None = None

    def __repr__(self) -> str:
        sha = f", sha256={self.sha256[:12]}…" if self.sha256 else ""
        arch = f", arch={self.arch!r}" if self.arch else ""
        return f"Generator({self.kind}, {self.source!r}{arch}{sha})"

    def provenance(self) -> dict[str, Any]:
        """What was loaded and how it is run, as JSON-serialisable data (for reports)."""
        return {
            "source": self.source, "kind": self.kind, "sha256": self.sha256, "arch": self.arch,
            "trusted": self.trusted, "input_range": list(self.input_range),
            "output_range": list(self.output_range) if self.output_range else None,
            "output_range_detected": self.output_range_detected, "seed": self.seed,
            "device": str(self.device), "takes_texts": self.takes_texts, "text_field": self.text_field,
            "mode": self.mode, "options": dict(self.options), "warnings": list(self.warnings),
        }

    def __call__(
        self, images: torch.Tensor, texts: Sequence[str] | None = None, *, names: Sequence[str] | None = None
    ) -> torch.Tensor:
        """Run the model on ``images`` (N, 3, H, W) in [0, 1]; returns (N, 3, H', W') in [0, 1].

        ``names`` (one per image) are used in error messages instead of ``sample <i>``, and are
        what per-sample seeds derive from (else the index).

        Raises:
            I2IInputError: bad ``images`` or ``texts``, or texts missing for a model that requires them.
            GeneratorOutputError: the output is unusable (see the class docstring).
        """
        _check_images(images)
        n = images.shape[0]
        texts = None if texts is None else check_texts(texts, n=n, single=False, blank=True)
        labels = list(names) if names is not None else [f"sample {i}" for i in range(n)]
        if len(labels) != n:
            raise I2IInputError(f"names has {len(labels)} entries for {n} images")
        low, high = self.input_range
        x = (images.to(self.device, torch.float32) * (high - low) + low).to(self._input_dtype)
        args: tuple = (x,)
        if texts is not None and self.takes_texts:
            args = (x, texts)
        elif texts is None and self.requires_texts:
            raise I2IInputError(
                f"generator {self.source} takes instruction texts (its forward has a required second argument), "
                f"from the dataset's {self.text_field!r} column, which is missing; pass texts=, or choose another "
                "column with the generator option prompt_field"
            )
        elif texts is not None and not self._warned_texts_dropped:
            self._warned_texts_dropped = True
            self.warnings.append(f"generator {self.source} does not take texts (its forward has one input); "
                                 "the texts were not passed to it")
        seed_keys: list[str | int] = list(names) if names is not None else list(range(n))
        if self.mode == "train":
            out = self._run_train_mode(args, seed_keys)
        else:
            if isinstance(self.model, nn.Module):
                self.model.eval()
            kwargs = {"seeds": [sample_seed(self.seed, k) for k in seed_keys]} if self.takes_seeds else {}
            with torch.random.fork_rng(**_rng_devices(self.device)), torch.inference_mode():
                torch.manual_seed(self.seed)
                out = self._call_model(args, kwargs, labels)
        return self._to_unit(out, n, labels)

    def _call_model(self, args: tuple, kwargs: dict[str, Any], labels: list[str]) -> Any:
        """The model's own call; whatever it raises becomes a :class:`GeneratorCallError` naming the samples."""
        try:
            return self.model(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - a user's model may raise anything
            given = ", ".join(labels[:4]) + (", ..." if len(labels) > 4 else "")
            raise GeneratorCallError(f"generator {self.source} raised {type(e).__name__} on {given}: {_first_line(e)}",
                                     names=labels) from e

    def _run_train_mode(self, args: tuple, seed_keys: list[str | int]) -> Any:
        """One call per sample in train mode, each under its own seed; buffers restored afterwards."""
        if not isinstance(self.model, nn.Module):
            raise I2IInputError(f"generator {self.source}: mode='train' applies to torch modules, "
                                f"not to a {type(self.model).__name__}")
        outs = []
        with _buffers_restored(self.model), torch.inference_mode():
            self.model.train()
            try:
                for i, key in enumerate(seed_keys):
                    one = tuple(a[i:i + 1] for a in args)
                    with torch.random.fork_rng(**_rng_devices(self.device)):
                        torch.manual_seed(sample_seed(self.seed, key))
                        out = self._call_model(one, {}, [str(key)])
                    if not isinstance(out, torch.Tensor):
                        return out  # _to_unit reports it
                    outs.append(out)
            finally:
                self.model.eval()
        return torch.cat(outs)

    def _to_unit(self, out: Any, n: int, labels: list[str]) -> torch.Tensor:
        """Validate a raw output batch and map it from ``output_range`` to [0, 1] (float32, CPU)."""
        every = range(n)
        given = f"{n} input images ({', '.join(labels[:4])}{', ...' if n > 4 else ''})"
        if not isinstance(out, torch.Tensor):
            raise GeneratorOutputError(f"generator {self.source} returned a {type(out).__name__}, not an image "
                                       f"tensor, for {given}", indices=every)
        shape = tuple(out.shape)
        if out.ndim != 4 or shape[0] != n or shape[1] not in (1, 3):
            raise GeneratorOutputError(
                f"generator {self.source} returned shape {shape} for {given}; expected ({n}, 3, H, W) "
                "(or 1 channel, replicated to RGB)", indices=every)
        if out.is_complex() or out.dtype == torch.bool:
            raise GeneratorOutputError(f"generator {self.source} returned a {out.dtype} tensor, not real-valued "
                                       f"images, for {given}", indices=every)
        # Arithmetic outside inference mode gives an ordinary tensor (no inference-tensor surprises downstream).
        out = out.detach().to("cpu").float()
        if shape[1] == 1:
            out = out.expand(-1, 3, -1, -1)
        flat = out.flatten(1)
        finite = torch.isfinite(flat)
        nonfinite = ~finite.all(1)
        mins = torch.where(finite, flat, torch.inf).amin(1)
        maxs = torch.where(finite, flat, -torch.inf).amax(1)
        if self.output_range is None and finite.any():
            self.output_range = (-1.0, 1.0) if float(mins.min()) < -RANGE_TOLERANCE else (0.0, 1.0)
            self.output_range_detected = True
            self.warnings.append(f"output range of generator {self.source} detected as {list(self.output_range)} "
                                 "from its first output batch; pass output_range= to declare it")
        problems: list[tuple[int, str]] = [(i, "NaN or Inf values") for i in nonfinite.nonzero().flatten().tolist()]
        if self.output_range is not None:
            low, high = self.output_range
            outside = ~nonfinite & ((mins < low - RANGE_TOLERANCE) | (maxs > high + RANGE_TOLERANCE))
            how = "detected" if self.output_range_detected else "declared"
            problems += [
                (i, f"values in [{float(mins[i]):.4g}, {float(maxs[i]):.4g}] outside the {how} output range "
                    f"[{low:g}, {high:g}]")
                for i in outside.nonzero().flatten().tolist()
            ]
        if problems:
            problems.sort()
            detail = "; ".join(f"{labels[i]}: {why}" for i, why in problems)
            raise GeneratorOutputError(f"generator {self.source} produced invalid output for "
                                       f"{len(problems)} of {n} samples: {detail}", indices=[i for i, _ in problems])
        low, high = self.output_range  # type: ignore[misc]  # set above: every sample was finite
        return ((out - low) / (high - low)).clamp_(0.0, 1.0)


@dataclass
class GenerationResult:
    """Outputs of :func:`generate`, aligned with the input images.

    Attributes:
        names: the input images' names.
        outputs: per input image, its output (3, H', W') float32 in [0, 1], or ``None`` if it failed.
        errors: sample index -> message (naming the sample) for every sample without an output.
        wall_time_s: seconds spent.
        batches: the sample indices of each model call that produced outputs, in call order
            (samples read from the cache are in none). Kernels pick their algorithm by batch size,
            so an output's last bits can depend on which samples shared its call (measured: 2.4e-7
            on the demo U-Net between calls of 2 and 3 images on CPU); regenerating a batch with
            the same samples reproduces it bit for bit.
    """

    names: list[str]
    outputs: list[torch.Tensor | None]
    errors: dict[int, str] = field(default_factory=dict)
    wall_time_s: float = 0.0
    batches: list[list[int]] = field(default_factory=list)

    @property
    def ok_indices(self) -> list[int]:
        """Indices of the samples that have an output."""
        return [i for i, o in enumerate(self.outputs) if o is not None]

    def output_images(self, label: str = "generated") -> ImageSet:
        """The successful outputs as an :class:`ImageSet`, named like their inputs.

        Raises:
            I2IInputError: no sample has an output.
        """
        ok = self.ok_indices
        return ImageSet([self.names[i] for i in ok], [lambda t=self.outputs[i]: t for i in ok], label)


def generate(
    generator: Generator, images: ImageSet | Any, texts: Sequence[str] | None = None, *, batch_size: int = 8,
    timeout_s: float | None = None,
) -> GenerationResult:
    """Run ``generator`` on every image; per-sample failures become ``errors``, never exceptions.

    Consecutive images of equal size are batched. When a batch fails (the model raises, e.g. on
    an input size its architecture refuses, or its output fails validation), its samples are
    rerun one by one so that only the bad samples get an error and the others their output. An
    input image that cannot be decoded is an error of that sample too.

    With ``timeout_s``, each model call runs in a worker thread and may take at most that many
    seconds. A call that does not return in time cannot be stopped from outside: it is abandoned
    (left running in the background), its samples and every sample after it get an error saying
    so, and the generator is not called again (later ``generate`` calls on it fail every sample
    at once), because a model still busy in another thread is not safe to call.

    Args:
        generator: a loaded :class:`Generator`.
        images: an :class:`ImageSet` or anything :func:`pytest_i2i.load_images` accepts.
        texts: one instruction per image for instruction-based editors.
        batch_size: images per model call.
        timeout_s: seconds one model call may take (``None``: no limit).

    Raises:
        I2IInputError: bad ``texts``, ``batch_size`` or ``timeout_s``, or texts missing for a model
            that needs them.
    """
    start = time.perf_counter()
    if not isinstance(generator, Generator):
        raise I2IInputError(f"generate() needs a Generator (from load_generator() or Generator(model)), "
                            f"got {type(generator).__name__}")
    check_int("batch_size", batch_size, low=1, where="generate")
    timeout_s = check_positive_seconds("timeout_s", timeout_s, "generate")
    images = load_images(images, name="inputs")
    texts = None if texts is None else check_texts(texts, n=len(images), single=False, blank=True)
    result = GenerationResult(list(images.names), [None] * len(images))
    abandoned = generator.abandoned
    if abandoned is None:
        try:
            for idx, batch in _decoded_batches(images, batch_size, result.errors):
                _run_batch(generator, idx, batch, texts, result, timeout_s)
        except GenerationTimeout as e:
            generator.abandoned = str(e)
            for i in getattr(e, "indices", []):
                result.errors[i] = f"{result.names[i]}: {e}"
            abandoned = str(e)
    if abandoned is not None:
        for i in range(len(images)):
            if result.outputs[i] is None and i not in result.errors:
                result.errors[i] = (f"{result.names[i]}: not generated: generator {generator.source} was abandoned "
                                    f"after a call timed out ({_first_line(abandoned)})")
    result.wall_time_s = time.perf_counter() - start
    return result


def _decoded_batches(
    images: ImageSet, batch_size: int, errors: dict[int, str]
) -> Iterator[tuple[list[int], torch.Tensor]]:
    # Not ImageSet.iter_batches: a sample that fails to decode must become that sample's error,
    # whereas an exception inside iter_batches would end the whole run.
    idx: list[int] = []
    imgs: list[torch.Tensor] = []
    for i in range(len(images)):
        try:
            img = images[i]
        except I2IInputError as e:
            errors[i] = f"{images.names[i]}: input image unusable: {e}"
            continue
        if imgs and (img.shape != imgs[0].shape or len(imgs) == batch_size):
            yield idx, torch.stack(imgs)
            idx, imgs = [], []
        idx.append(i)
        imgs.append(img)
    if imgs:
        yield idx, torch.stack(imgs)


def _run_batch(generator: Generator, idx: list[int], batch: torch.Tensor, texts: list[str] | None,
               result: GenerationResult, timeout_s: float | None = None) -> None:
    names = [result.names[i] for i in idx]
    try:
        out = _within(timeout_s, names, generator.source,
                      lambda: generator(batch, None if texts is None else [texts[i] for i in idx], names=names))
    except GenerationTimeout as e:  # the model is still busy: no other call may start
        if getattr(e, "indices", None) is None:
            e.indices = list(idx)
        raise
    except (GeneratorCallError, GeneratorOutputError) as e:  # the model failed: that batch's failure
        if len(idx) > 1:
            for j, i in enumerate(idx):
                _run_batch(generator, [i], batch[j:j + 1], texts, result, timeout_s)
            return
        result.errors[idx[0]] = str(e)
        return
    # anything else (I2IInputError: texts missing, ...) is a usage problem, the same for every sample
    for j, i in enumerate(idx):
        result.outputs[i] = out[j]
    result.batches.append(list(idx))


def _within(timeout_s: float | None, names: list[str], source: str, call: Any) -> Any:
    """``call()``, or :class:`GenerationTimeout` when it takes longer than ``timeout_s`` (then it is left
    running in a daemon thread: Python cannot stop a thread from outside)."""
    if timeout_s is None:
        return call()
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = call()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    worker = threading.Thread(target=target, name=f"i2i-generator {source}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise GenerationTimeout(f"generator {source} did not return within {timeout_s:g} s on {len(names)} "
                                f"sample(s) ({shown}); the call was abandoned (generation timeout)",
                                names=names, seconds=timeout_s)
    if "error" in box:
        raise box["error"]
    return box["out"]


def _check_images(images: Any) -> None:
    if not isinstance(images, torch.Tensor):
        raise I2IInputError(f"images must be a (N, 3, H, W) tensor in [0, 1], got {type(images).__name__}")
    if images.ndim != 4 or images.shape[0] < 1 or images.shape[1] != 3 or not images.is_floating_point():
        raise I2IInputError(f"images must be a non-empty float (N, 3, H, W) tensor in [0, 1], got "
                            f"{images.dtype} of shape {tuple(images.shape)}")
    if not bool(torch.isfinite(images).all()) or float(images.min()) < 0.0 or float(images.max()) > 1.0:
        raise I2IInputError("images must be finite and in [0, 1] (see pytest_i2i.load_images for other ranges)")


def _text_parameter(model: Any) -> tuple[bool, bool]:
    """(whether ``model``'s forward takes a second positional argument, whether it is required)."""
    fn = model.forward if isinstance(model, nn.Module) else model
    schema = getattr(fn, "schema", None)
    if schema is not None:  # TorchScript method or function
        args = [a for a in schema.arguments if not a.kwarg_only]
        if args and args[0].name == "self":
            args = args[1:]
        return (len(args) >= 2, len(args) >= 2 and not args[1].has_default_value())
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: assume images only
        return (False, False)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        return (False, False)
    return (True, positional[1].default is inspect.Parameter.empty)


def _takes_seeds(model: Any) -> bool:
    """Whether ``model``'s call takes a keyword argument ``seeds`` (one seed per sample)."""
    fn = model.forward if isinstance(model, nn.Module) else model
    if getattr(fn, "schema", None) is not None:  # TorchScript: images and texts only
        return False
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    p = params.get("seeds")
    return p is not None and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)


@contextmanager
def _buffers_restored(model: nn.Module) -> Iterator[None]:
    """Put the module's buffers back as they were (train-mode batch norm updates its running statistics)."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, copy in saved:
                buf.copy_(copy)


def _float_dtype(model: Any) -> torch.dtype:
    if isinstance(model, nn.Module):
        for p in model.parameters():
            if p.is_floating_point():
                return p.dtype
    return torch.float32


def _rng_devices(device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return {"devices": []}
    index = device.index if device.index is not None else getattr(torch, device.type).current_device()
    return {"devices": [index], "device_type": device.type}


def _first_line(e: BaseException) -> str:
    return ((str(e).splitlines() or ["(no message)"])[0])[:300]

