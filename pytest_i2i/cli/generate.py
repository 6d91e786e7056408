"""``i2i generate``: run a generator on a dataset and write its outputs as PNG files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="run a generator on a dataset and write its outputs as PNG files")
    g.add_argument("model", help="checkpoint (TorchScript, state_dict + --arch), package.module:factory, "
                                 "or diffusers:PATH_OR_HUB_ID (a diffusers pipeline)")
    g.add_argument("out", help="output folder (one <uid>.png per sample)")
    g.add_argument("--data", default=None, help="dataset folder or manifest (default: the built-in sample set)")
    g.add_argument("--arch", default=None, help="architecture of a bare state_dict")
    g.add_argument("--arch-option", action="append", default=[], metavar="KEY=VALUE",
                   help="architecture option (repeatable), e.g. norm=batch, use_dropout=false, ngf=32")
    g.add_argument("--generator-option", action="append", default=[], metavar="KEY=VALUE",
                   help="generation option (repeatable): num_inference_steps, guidance_scale, image_guidance_scale, "
                        "strength, negative_prompt, height, width, torch_dtype, variant, revision, prompt_field")
    g.add_argument("--generator-mode", choices=("eval", "train"), default="eval",
                   help="eval (default) or train (dropout on, per-image batch norm, as pix2pix's test.py without "
                        "--eval)")
    g.add_argument("--trust-checkpoint", action="store_true",
                   help="allow unpickling a full model object (runs code from the file)")
    g.add_argument("--device", default=None)
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(run=_generate)


def _generate(args: argparse.Namespace) -> int:
    from PIL import Image

    from pytest_i2i.data import load_dataset
    from pytest_i2i.generators import generate, load_generator, parse_pairs

    dataset = load_dataset(args.data)
    gen = load_generator(args.model, arch=args.arch, trust=args.trust_checkpoint, device=args.device, seed=args.seed,
                         arch_kwargs=parse_pairs(args.arch_option, "--arch-option"),
                         generator_options=parse_pairs(args.generator_option, "--generator-option"),
                         mode=args.generator_mode)
    result = generate(gen, dataset.inputs(), texts=dataset.texts(gen.text_field), batch_size=args.batch_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for uid, img in zip(dataset.uids, result.outputs):
        if img is not None:
            arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
            Image.fromarray(arr).save(out / f"{uid}.png")
    print(f"wrote {len(result.ok_indices)} of {len(dataset)} outputs to {out}")
    for note in gen.warnings:
        print(f"note: {note}", file=sys.stderr)
    for i, msg in sorted(result.errors.items()):
        print(f"failed: {dataset.uids[i]}: {msg}", file=sys.stderr)
    return 1 if result.errors else 0
