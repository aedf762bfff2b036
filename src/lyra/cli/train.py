"""``lyra train {student,teacher,tokenizer,depth} ...``: the training entry points under one command.

Everything after the model name goes to that trainer unchanged (``lyra train student --help`` lists its
options). Multi-GPU: ``accelerate launch --config_file configs/accelerate/<ddp|fsdp|deepspeed_zero2>.yaml
--num_processes N -m lyra.train.recipes.student ...`` (the same options).
"""

from __future__ import annotations

import argparse
import importlib

#: Model name → (module with ``main(argv) -> int``, what it trains).
TRAINERS: dict[str, tuple[str, str]] = {
    "student": ("lyra.train.recipes.student", "the 3DGS decoder by self-distillation on SDG shards (lyra sdg)"),
    "teacher": ("lyra.train.recipes.teacher", "the teacher's video denoiser on procedural worlds"),
    "tokenizer": ("lyra.train.recipes.tokenizer", "the video tokenizer (Cosmos-style VAE) on procedural worlds"),
    "depth": ("lyra.train.recipes.depth", "the tiny monocular depth net on procedural worlds"),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model: student, teacher, tokenizer or depth",
        description="Train one of lyra's models. Each run checkpoints into --out, resumes with --resume, and "
        "exports fp16 weights with a training record. Options after the model name belong to its trainer: "
        "run 'lyra train MODEL --help'.",
        epilog="\n".join(f"  {k:<10} {v[1]}" for k, v in TRAINERS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", choices=list(TRAINERS), help="which model to train")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the trainer's options (see 'lyra train MODEL --help')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    module_name, _ = TRAINERS[args.model]
    module = importlib.import_module(module_name)
    return int(module.main(list(args.options)) or 0)
