"""`flowmimic <command>`: the entry point DVC stages and users call.

Parses only what a command needs (`--params`, a shard, file paths), loads params once, and calls
the stage's `main`. Stage modules are imported lazily so `flowmimic --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from flowmimic.errors import FlowMimicError
from flowmimic.params import DEFAULT_PARAMS, load_params

# command -> (module, function, help)
STAGES: dict[str, tuple[str, str, str]] = {
    "demo-data": ("flowmimic.stages.demo_data", "main", "write the procedural demo dataset (both raw layouts)"),
    "split": ("flowmimic.stages.split", "main", "AIST++ official splits, MVHumanNet split by performer"),
    "cache": ("flowmimic.stages.cache", "main", "raw -> aligned joints -> 263-D features, one .npy per sequence"),
    "cache-merge": ("flowmimic.stages.cache", "merge", "merge the shard indexes of a sharded cache run"),
    "validate": ("flowmimic.stages.validate", "main", "scan the cache, write metrics/data.json and bad lists"),
    "stats": ("flowmimic.stages.stats", "main", "blended train mean/std of the 263-D features"),
    "train": ("flowmimic.training.launch", "main",
              "train the motion VAE (in-process; DDP workers via torchrun when train.nproc_per_node > 1)"),
    "evaluate": ("flowmimic.stages.evaluate", "main", "metrics with intervals, plots: test split (and val)"),
}


def _setup_logging() -> None:
    rank = int(os.environ.get("RANK", "0"))
    level = os.environ.get("FLOWMIMIC_LOG", "INFO").upper()
    logging.basicConfig(level=level if rank == 0 else "WARNING",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowmimic", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, _, help_text) in STAGES.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--params", default=DEFAULT_PARAMS, help="params file (default: params.yaml)")
        if name == "cache":
            p.add_argument("--shard", type=_parse_shard, default=None, metavar="I/N",
                           help="process a deterministic 1/N of the sequences (cluster job arrays)")
        if name == "evaluate":
            p.add_argument("--checkpoint", default=None, help="checkpoint to evaluate (default: train.model_path)")

    p = sub.add_parser("features", help="convert a joints .npy (T,22,3) or (N,T,22,3) to 263-D features")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--params", default=DEFAULT_PARAMS, help="params file: features.feet_threshold (default: params.yaml)")
    p = sub.add_parser("joints", help="convert a 263-D features .npy (N,263) or (B,N,263) to joints")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)

    p = sub.add_parser("plot-sequence", help="plot a sequence's frames and pelvis trajectory (PNG)")
    p.add_argument("input", type=Path, help="a joints .npy (T,22,3), a features .npy (T,263) or a raw sequence")
    p.add_argument("output", type=Path, help="PNG (or GIF to animate)")
    p.add_argument("--params", default=DEFAULT_PARAMS)
    p.add_argument("--fps", type=float, default=None, help="frame rate of a .npy input (default: data.fps)")

    p = sub.add_parser("export", help="write a joints (T,22,3) or features (N,263) .npy as BVH or as "
                       "SMPL poses in AIST++'s .pkl format (see README: Export motion)")
    p.add_argument("input", type=Path, help="joints .npy (T,22,3), metres, y-up; or 263-D features .npy")
    p.add_argument("output", type=Path, help="OUT.bvh (SMPL-22 hierarchy, Euler ZXY degrees) or OUT.pkl "
                   "(AIST++ motion: smpl_poses/smpl_trans at 60 fps)")
    p.add_argument("--params", default=DEFAULT_PARAMS)
    p.add_argument("--fps", type=float, default=None, help="frame rate of IN (default: data.fps)")
    p.add_argument("--skeleton", choices=("median", "target"), default="median",
                   help="BVH bone lengths: the motion's median ones or HumanML3D's target skeleton")
    p.add_argument("--units", choices=("m", "cm"), default="m", help="BVH length unit (default: m)")

    p = sub.add_parser("unpack-mvh", help="unpack MVHumanNet .tar.gz archives (parallel, resumable, verified)")
    p.add_argument("archives", type=Path, help="folder holding the .tar.gz archives")
    p.add_argument("dest", type=Path, help="MVHumanNet root to unpack into")
    p.add_argument("--workers", type=int, default=2)
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command in STAGES:
        module, func, _ = STAGES[args.command]
        params = load_params(args.params)
        fn = getattr(importlib.import_module(module), func)
        kwargs = {}
        if args.command == "cache" and args.shard is not None:
            kwargs["shard"] = args.shard
        if args.command == "evaluate" and args.checkpoint is not None:
            kwargs["checkpoint"] = args.checkpoint
        if args.command == "train":
            kwargs["params_path"] = args.params          # DDP workers re-read the same file
        fn(params, **kwargs)
        return 0
    if args.command in ("features", "joints"):
        from flowmimic.features.convert import convert_file

        threshold = load_params(args.params).features.feet_threshold if args.command == "features" else None
        convert_file(args.input, args.output, to=args.command, feet_threshold=threshold)
        print(f"wrote {args.output}")
        return 0
    if args.command == "plot-sequence":
        from flowmimic.viz import plot_sequence_file

        plot_sequence_file(args.input, args.output, load_params(args.params), fps=args.fps)
        print(f"wrote {args.output}")
        return 0
    if args.command == "export":
        from flowmimic.export.command import export_file

        export_file(args.input, args.output, load_params(args.params), fps=args.fps,
                    skeleton=args.skeleton, units=args.units)
        print(f"wrote {args.output}")
        return 0
    if args.command == "unpack-mvh":
        from flowmimic.sources.unpack import unpack_archives

        report = unpack_archives(args.archives, args.dest, workers=args.workers)
        print(report.summary())
        return 0 if report.ok else 1
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging()
    try:
        return _run(args)
    except FlowMimicError as e:
        logging.getLogger("flowmimic").error("%s", e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
