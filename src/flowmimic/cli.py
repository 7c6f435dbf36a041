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

from flowmimic.errors import ConfigError, DataError, FlowMimicError
from flowmimic.params import DEFAULT_PARAMS, load_params
from flowmimic.stage_guard import watch_dvc

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
    "classifier": ("flowmimic.stages.classifier", "main",
                   "train the independent genre classifier on real AIST++ train windows, score it on test"),
    "latents": ("flowmimic.stages.latents", "main",
                "encode every usable train/val/test sequence with the frozen VAE (the flow prior's data)"),
    "train-prior": ("flowmimic.training.launch_prior", "main",
                    "train the flow-matching prior over the VAE's latents (DDP when prior.nproc_per_node > 1)"),
    "generate": ("flowmimic.stages.generate", "main",
                 "transfers, VAE-prior vs flow samples, in-betweening and the label-matters check, judged "
                 "on test"),
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
    _add_generation_commands(sub)
    _add_flow_commands(sub)

    p = sub.add_parser("unpack-mvh", help="unpack MVHumanNet .tar.gz archives (parallel, resumable, verified)")
    p.add_argument("archives", type=Path, help="folder holding the .tar.gz archives")
    p.add_argument("dest", type=Path, help="MVHumanNet root to unpack into")
    p.add_argument("--workers", type=int, default=2)
    return parser


# ----------------------------------------------------------------------------- commands on a trained model

_GENERATION_EPILOG = """\
Outputs come from the model's 263-D HumanML3D features: the joints are on HumanML3D's target
skeleton (not the input's), in the features' canonical frame (frame 0's pelvis at x = z = 0, floor
y = 0, facing +Z), with one frame fewer than the input. Unless --canonical, an output made from
joints is put back where its input was (its first-frame pelvis position, floor and heading) and
gets the input's frame count (the missing last frame continues the last velocity). Outputs are at
data.fps.
OUT by extension: .npy joints (T,22,3); .npz joints, features (canonical), fps, domain, genre,
source, checkpoint_sha256; .gif stick figures; .bvh BVH; .pkl SMPL poses in AIST++'s format.
IN: a joints .npy (T,22,3) in metres, y-up (--fps), a 263-D features .npy (N,263) at data.fps, an
AIST++ motion .pkl, or a MVHumanNet sequence folder."""


def _add_generation_commands(sub) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--checkpoint", default=None, help="model checkpoint (default: train.model_path)")
        p.add_argument("--params", default=DEFAULT_PARAMS, help="params file (default: params.yaml)")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")

    def with_input(p: argparse.ArgumentParser) -> None:
        p.add_argument("input", type=Path, metavar="IN")
        p.add_argument("output", type=Path, metavar="OUT")
        p.add_argument("--fps", type=float, default=None, help="frame rate of a joints .npy (default: data.fps)")
        p.add_argument("--canonical", action="store_true",
                       help="keep the canonical frame and one frame fewer (do not put the output back)")

    def foot_lock(p: argparse.ArgumentParser) -> None:
        p.add_argument("--foot-lock", action=argparse.BooleanOptionalAction, default=None,
                       help="pin the feet the decoded contact labels plant (default: generate.foot_lock)")

    def guidance(p: argparse.ArgumentParser) -> None:
        p.add_argument("--guidance", type=float, default=1.0,
                       help="classifier-free guidance over the genre label (default 1: plain decoding; > 1 "
                       "for models trained with train.cond_dropout > 0)")

    kw = dict(formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_GENERATION_EPILOG)
    p = sub.add_parser("reconstruct", help="round-trip a motion through the VAE", **kw)
    with_input(p)
    p.add_argument("--domain", choices=("aist", "mvh"), default=None,
                   help="capture domain of IN (default: from its kind; a .npy counts as aist)")
    common(p)
    p = sub.add_parser("transfer", help="re-render a motion in a dance genre (encode IN's domain, decode the target's)",
                       **kw)
    with_input(p)
    p.add_argument("--genre", required=True, help="target genre: id 1..10, code (gKR) or name (Krump)")
    p.add_argument("--domain", choices=("aist", "mvh"), default="aist", help="target domain (default: aist)")
    p.add_argument("--source-domain", choices=("aist", "mvh"), default=None,
                   help="capture domain of IN (default: from its kind; a .npy counts as aist)")
    p.add_argument("--strength", type=float, default=None,
                   help="re-generate the latents through the flow prior from this noise level, 0..1 (default: "
                   "generate.transfer_strength; 0: a bare decoder label swap, needs no prior)")
    p.add_argument("--prior", default=None, help="flow prior checkpoint (default: prior.model_path)")
    p.add_argument("--steps", type=int, default=None, help="flow ODE steps (default: generate.transfer_steps)")
    p.add_argument("--prior-guidance", type=float, default=None,
                   help="the flow's classifier-free guidance towards the target genre (default: "
                   "generate.transfer_guidance)")
    p.add_argument("--seed", type=int, default=0, help="seed of the flow's noise (default: 0)")
    foot_lock(p)
    guidance(p)
    common(p)
    p = sub.add_parser("sample", help="generate new motions in a genre (the flow prior; or the VAE's own prior)", **kw)
    p.add_argument("output", type=Path, metavar="OUT")
    p.add_argument("--genre", required=True, help="genre: id 1..10, code (gKR) or name (Krump)")
    p.add_argument("--domain", choices=("aist", "mvh"), default="aist", help="domain to decode as (default: aist)")
    p.add_argument("--seconds", type=float, required=True, help="length of each motion")
    p.add_argument("-n", type=int, default=1, help="number of motions (n > 1 writes OUT_000.ext, ...)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents' noise (default: 0)")
    p.add_argument("--sampler", choices=("flow", "vae_prior"), default="flow",
                   help="flow: the flow prior (default); vae_prior: z ~ N(0, I) per frame (for comparison)")
    p.add_argument("--prior", default=None, help="flow prior checkpoint (default: prior.model_path)")
    p.add_argument("--steps", type=int, default=None, help="flow ODE steps (default: generate.steps)")
    p.add_argument("--solver", choices=("euler", "midpoint"), default=None, help="default: generate.solver")
    p.add_argument("--prior-guidance", type=float, default=None,
                   help="the flow's classifier-free guidance towards the genre (default: generate.guidance)")
    p.add_argument("--temperature", type=float, default=None,
                   help="scale of the flow's starting noise (default: generate.temperature; 1: as trained)")
    foot_lock(p)
    guidance(p)
    common(p)


_FLOW_EPILOG = """\
The gap / continuation is generated by the flow prior (prior.model_path, trained by `flowmimic
train-prior` on this VAE's latents: a prior of another VAE is refused) with the input's known latent
frames imposed along the flow's path, then decoded by the VAE. OUT holds the known context frames
(generate.context_frames at most) and the generated ones, in IN's frame (A's for inbetween; the gap's
trajectory is bent to end at B's first frame, position and heading). Kinds of IN and OUT as for
`transfer`."""


def _add_flow_commands(sub) -> None:
    def flow_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seconds", type=float, required=True, help="length of the generated part")
        p.add_argument("--steps", type=int, default=None, help="ODE steps (default: generate.steps)")
        p.add_argument("--solver", choices=("euler", "midpoint"), default=None, help="default: generate.solver")
        p.add_argument("--guidance", type=float, default=None,
                       help="the flow prior's classifier-free guidance (default: generate.guidance)")
        p.add_argument("--decoder-guidance", type=float, default=None,
                       help="the VAE decoder's guidance over the genre label (default: generate.decoder_guidance)")
        p.add_argument("--seed", type=int, default=0, help="seed of the flow's noise (default: 0)")
        p.add_argument("--foot-lock", action=argparse.BooleanOptionalAction, default=None,
                       help="pin the feet the decoded contact labels plant (default: generate.foot_lock)")
        p.add_argument("--fps", type=float, default=None, help="frame rate of a joints .npy input (default: data.fps)")
        p.add_argument("--checkpoint", default=None, help="VAE checkpoint (default: train.model_path)")
        p.add_argument("--prior", default=None, help="flow prior checkpoint (default: prior.model_path)")
        p.add_argument("--params", default=DEFAULT_PARAMS, help="params file (default: params.yaml)")
        p.add_argument("--device", default="cpu", help="torch device (default: cpu)")

    kw = dict(formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_FLOW_EPILOG)
    p = sub.add_parser("inbetween", help="generate the motion from the end of A to the start of B (flow prior)", **kw)
    p.add_argument("a", type=Path, metavar="A")
    p.add_argument("b", type=Path, metavar="B")
    p.add_argument("output", type=Path, metavar="OUT")
    p.add_argument("--genre", default=None, help="genre of the gap (default: A's or B's own, else unknown)")
    flow_options(p)
    p = sub.add_parser("continue", help="continue a motion in a genre (flow prior)", **kw)
    p.add_argument("prefix", type=Path, metavar="PREFIX")
    p.add_argument("output", type=Path, metavar="OUT")
    p.add_argument("--genre", required=True, help="genre: id 1..10, code (gKR) or name (Krump)")
    flow_options(p)


def _run_flow(args: argparse.Namespace) -> int:
    """`flowmimic inbetween` / `continue`: every argument checked before a model is loaded or a file written."""
    from flowmimic.generation import outputs
    from flowmimic.generation.checkpoint import load_generation_model
    from flowmimic.generation.flow import SOLVERS, load_prior
    from flowmimic.generation.inbetween import Seam, context_frames, continue_motion, inbetween
    from flowmimic.generation.inputs import read_input
    from flowmimic.taxonomy import genre_name, parse_genre

    params = load_params(args.params)
    g = params.generate
    genre = None
    if args.genre is not None:
        try:
            genre = parse_genre(args.genre)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    fps = float(params.data.fps)
    frames = int(round(args.seconds * fps))
    if not (args.seconds > 0 and frames >= 1):
        raise ConfigError(f"--seconds must give at least 1 frame at {fps:g} fps, got {args.seconds}")
    steps, solver = args.steps or g.steps, args.solver or g.solver
    guidance = g.guidance if args.guidance is None else args.guidance
    dguidance = g.decoder_guidance if args.decoder_guidance is None else args.decoder_guidance
    foot_lock = g.foot_lock if args.foot_lock is None else args.foot_lock
    seam = Seam(g.seam_strength, g.seam_frames)
    if steps < 1 or solver not in SOLVERS or guidance < 0 or dguidance < 0:
        raise ConfigError(f"--steps must be >= 1 and the guidance scales >= 0 (got {steps}, {guidance}, {dguidance})")
    inputs = [args.a, args.b] if args.command == "inbetween" else [args.prefix]
    outputs.check_writable(outputs.output_paths(args.output, 1)[0])
    for path in inputs:
        if not path.exists():
            raise DataError(path, "file not found", "missing")
    vae_path = args.checkpoint or params.train.model_path
    gm = load_generation_model(vae_path, args.device)
    prior = load_prior(args.prior or params.prior.model_path, gm.sha256, args.device, vae_path=vae_path)
    motions = [read_input(path, params, fps=args.fps) for path in inputs]
    if args.command == "inbetween":
        context_frames(prior.window, frames)                       # refuses a gap the window cannot hold
        motion, _ = inbetween(gm, prior, motions[0], motions[1], frames, genre=genre, steps=steps, solver=solver,
                              guidance=guidance, decoder_guidance=dguidance, seed=args.seed, foot_lock=foot_lock,
                              seam=seam)
        title = f"{args.a.name} -> {args.b.name}"
    else:
        prefix = motions[0]
        if prefix.features.shape[0] < gm.window:
            raise DataError(args.prefix, f"has {prefix.features.shape[0]} frames, shorter than one window of the "
                            f"model ({gm.window} frames at {fps:g} fps)", "too_short")
        motion = continue_motion(gm, prior, prefix, frames, genre=genre, context=g.context_frames, steps=steps,
                                 solver=solver, guidance=guidance, decoder_guidance=dguidance, seed=args.seed,
                                 foot_lock=foot_lock, seam=seam)
        title = f"{args.prefix.name} continued as {genre_name(genre)}"
    for path in outputs.write_motions(args.output, [motion], params, title):
        print(f"wrote {path}")
    return 0


def _run_generation(args: argparse.Namespace) -> int:
    from flowmimic.generation import core, outputs
    from flowmimic.generation.checkpoint import load_generation_model
    from flowmimic.generation.flow import load_prior
    from flowmimic.taxonomy import genre_name, parse_genre

    params = load_params(args.params)
    # Everything the user typed is checked before the model is loaded.
    if getattr(args, "genre", None) is not None:
        try:
            parse_genre(args.genre)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    n = args.n if args.command == "sample" else 1
    strength = getattr(args, "strength", None)
    if strength is not None and not 0.0 <= strength <= 1.0:
        raise ConfigError(f"--strength must be in [0, 1], got {strength}")
    if getattr(args, "steps", None) is not None and args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {args.steps}")
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    for path in outputs.output_paths(args.output, n):
        outputs.check_writable(path)
    if args.command != "sample" and not args.input.exists():
        raise DataError(args.input, "file not found", "missing")
    model = load_generation_model(args.checkpoint or params.train.model_path, args.device)
    if args.command == "reconstruct":
        motions = [core.reconstruct(args.input, model, params, fps=args.fps, domain=args.domain,
                                    canonical=args.canonical)]
        title = f"reconstruction of {args.input.name}"
    elif args.command == "transfer":
        g = params.generate
        strength = g.transfer_strength if args.strength is None else args.strength
        prior = (load_prior(args.prior or params.prior.model_path, model.sha256, device=model.device,
                            vae_path=model.path) if strength > 0 else None)
        motions = [core.transfer(args.input, model, params, args.genre, args.domain, fps=args.fps,
                                 source_domain=args.source_domain, canonical=args.canonical,
                                 guidance=args.guidance, prior=prior, strength=strength,
                                 steps=args.steps or g.transfer_steps, solver=g.solver,
                                 prior_guidance=(g.transfer_guidance if args.prior_guidance is None
                                                 else args.prior_guidance),
                                 seed=args.seed, foot_lock=g.foot_lock if args.foot_lock is None else args.foot_lock)]
        title = f"{args.input.name} as {genre_name(motions[0].genre_id)}"
    else:
        g = params.generate
        flow = None
        if args.sampler == "flow":
            prior = load_prior(args.prior or params.prior.model_path, model.sha256, device=model.device,
                               vae_path=model.path)
            flow = core.FlowSampling(prior, args.steps or g.steps, args.solver or g.solver,
                                     g.guidance if args.prior_guidance is None else args.prior_guidance,
                                     g.temperature if args.temperature is None else args.temperature)
        motions = core.sample(model, params, args.genre, args.domain, seconds=args.seconds, n=args.n, seed=args.seed,
                              guidance=args.guidance, flow=flow,
                              foot_lock=g.foot_lock if args.foot_lock is None else args.foot_lock)
        title = f"sample: {genre_name(motions[0].genre_id)}"
    for path in outputs.write_motions(args.output, motions, params, title):
        print(f"wrote {path}")
    return 0


GENERATION_COMMANDS = ("reconstruct", "transfer", "sample")


def _run(args: argparse.Namespace) -> int:
    if args.command in STAGES:
        module, func, _ = STAGES[args.command]
        params = load_params(args.params)
        watch_dvc()                                      # a stage never outlives its `dvc repro`
        fn = getattr(importlib.import_module(module), func)
        kwargs = {}
        if args.command == "cache" and args.shard is not None:
            kwargs["shard"] = args.shard
        if args.command == "evaluate" and args.checkpoint is not None:
            kwargs["checkpoint"] = args.checkpoint
        if args.command in ("train", "train-prior"):
            kwargs["params_path"] = args.params          # DDP workers re-read the same file
        fn(params, **kwargs)
        return 0
    if args.command in GENERATION_COMMANDS:
        return _run_generation(args)
    if args.command in ("inbetween", "continue"):
        return _run_flow(args)
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
        logging.getLogger("flowmimic").error("%s", " ".join(str(e).splitlines()))   # one line
        return 2


if __name__ == "__main__":
    sys.exit(main())
