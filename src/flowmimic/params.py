"""`params.yaml` -> frozen, validated config objects (one class per stage section).

Every knob of the project lives in `params.yaml`; this module is the only place that reads it.
Unknown keys, wrong types and out-of-range values fail before any work starts, with a
`ConfigError` that names the file and the offending key (e.g. ``params.yaml: train.d_z: ...``).
There are no defaults in code: every field must be present in the file.

Types are strict: a quoted number (``lr: "0.001"``), a boolean where a number belongs
(``epochs: true``) or a number where a boolean belongs (``style_head: 1``) is refused; only an int
where a float is expected (``lr: 1``) is accepted. Floats must be finite. The file is read with
`read_yaml`, which refuses duplicate keys and resolves scalars as YAML 1.2 does (PyYAML follows
YAML 1.1, where ``1e-3`` is a string and ``yes`` a boolean).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from flowmimic.errors import ConfigError
from flowmimic.taxonomy import parse_genre

DEFAULT_PARAMS = "params.yaml"

PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Matrix3 = list[list[float]]


class Section(BaseModel):
    """Base of every section: immutable, no unknown keys, strict types (int -> float only), finite floats."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    def fingerprint(self) -> str:
        """Stable hash of the section's values (used to decide whether saved state is reusable)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_rotation(m: Matrix3, what: str) -> Matrix3:
    a = np.asarray(m, dtype=np.float64)
    if a.shape != (3, 3):
        raise ValueError(f"{what} must be a 3x3 matrix, got shape {a.shape}")
    if not np.allclose(a @ a.T, np.eye(3), atol=1e-6):
        raise ValueError(f"{what} must be orthonormal (a rotation), got {m}")
    if np.linalg.det(a) < 0:
        raise ValueError(f"{what} has determinant -1: it mirrors the body and swaps left and right; "
                         "use a proper rotation (negate one more axis)")
    return m


# ----------------------------------------------------------------------------- data (sources)


class AistSource(Section):
    fps: PosFloat                      # native frame rate of AIST++ motions (60)
    axis_remap: Matrix3                # seed: (x, y, z) -> (x, -z, y): native -> z-up
    gender: Literal["male", "female", "neutral"]   # SMPL model used for the fits (MALE)
    use_ignore_list: bool              # drop the 45 badly fitted sequences in ignore_list.txt

    @field_validator("axis_remap")
    @classmethod
    def _rotation(cls, v: Matrix3) -> Matrix3:
        return _check_rotation(v, "data.aist.axis_remap")


class MvhSource(Section):
    fps: PosFloat                      # released frames per second (every 5th frame of 25/30 fps video)
    axis_remap: Matrix3                # seed: (x, y, z) -> (-y, -x, -z): native -> z-up
    performer_regex: str               # applied to the sequence folder name; group 'performer'
    max_gap_s: PosFloat                # a hole longer than this (seconds) skips the sequence

    @field_validator("axis_remap")
    @classmethod
    def _rotation(cls, v: Matrix3) -> Matrix3:
        return _check_rotation(v, "data.mvh.axis_remap")

    @field_validator("performer_regex")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            rx = re.compile(v)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}") from e
        if "performer" not in rx.groupindex:
            raise ValueError("must define a named group (?P<performer>...)")
        return v


class DataParams(Section):
    fps: PosInt                        # common frame rate of every sequence (HumanML3D: 20)
    aist_root: str                     # folder with motions/, splits/, ignore_list.txt
    mvh_root: str                      # folder with <part>/<sequence>/smpl_param/*.pkl
    smpl_model_dir: str | None         # folder with SMPL_{MALE,FEMALE,NEUTRAL}.{pkl,npz}; null = built-in skeleton
    joints_backend: Literal["fk", "smplx"]   # SMPL joints by our FK (equal to smplx's, faster: README, Performance) or smplx
    zup_to_yup: Matrix3                # HumanML3D's AMASS z-up -> y-up: (x, y, z) -> (-x, z, y)
    aist: AistSource
    mvh: MvhSource

    @field_validator("zup_to_yup")
    @classmethod
    def _rotation(cls, v: Matrix3) -> Matrix3:
        return _check_rotation(v, "data.zup_to_yup")

    @model_validator(mode="after")
    def _backend(self) -> "DataParams":
        if self.joints_backend == "smplx" and not self.smpl_model_dir:
            raise ValueError("data.joints_backend 'smplx' needs data.smpl_model_dir (a folder with SMPL model files)")
        return self


# ----------------------------------------------------------------------------- demo data


class DemoParams(Section):
    root: str                          # where the demo writes aist/ and mvh/
    seed: NonNegInt
    aist_dancers: Annotated[int, Field(ge=2)]   # dancers per genre (ids d01.. unique across genres, as in AIST++)
    aist_sequences: PosInt             # sequences per dancer, alternating sBM (basic) and sFM (advanced)
    aist_seconds: Annotated[list[PosFloat], Field(min_length=2, max_length=2)]   # [min, max] length
    aist_val_dancers: PosInt           # dancers per genre in pose_val.txt (splits by dancer)
    aist_test_dancers: NonNegInt       # dancers per genre in pose_test.txt (disjoint from val)
    mvh_parts: PosInt
    mvh_performers: PosInt
    mvh_outfits: PosInt                # sequences per performer
    mvh_seconds: Annotated[list[PosFloat], Field(min_length=2, max_length=2)]
    mvh_video_fps: PosInt              # video rate whose every 5th frame is released
    inject_bad: bool                   # add a few broken sequences (NaN, truncated, too short, gap)

    @field_validator("aist_seconds", "mvh_seconds")
    @classmethod
    def _ordered(cls, v: list[float]) -> list[float]:
        if v[0] > v[1]:
            raise ValueError(f"[min, max] must be ordered, got {v}")
        return v

    @model_validator(mode="after")
    def _dancers(self) -> "DemoParams":
        held_out = self.aist_val_dancers + self.aist_test_dancers
        if held_out >= self.aist_dancers:
            raise ValueError(f"demo.aist_val_dancers + demo.aist_test_dancers ({held_out}) must be below "
                             f"demo.aist_dancers ({self.aist_dancers}): train needs a dancer per genre")
        return self


# ----------------------------------------------------------------------------- split / features / cache


class SplitParams(Section):
    dir: str                           # data/splits
    seed: NonNegInt
    mvh_val_fraction: Annotated[float, Field(gt=0, lt=1)]    # share of MVHumanNet performers in val
    mvh_test_fraction: Annotated[float, Field(ge=0, lt=1)]   # share in test (disjoint from val); 0: no test

    @model_validator(mode="after")
    def _shares(self) -> "SplitParams":
        if self.mvh_val_fraction + self.mvh_test_fraction >= 1:
            raise ValueError("split.mvh_val_fraction + split.mvh_test_fraction must be below 1 "
                             "(train needs performers)")
        return self


class FeatureParams(Section):
    feet_threshold: PosFloat           # squared per-frame displacement below which a foot is in contact
    min_frames: Annotated[int, Field(ge=2)]   # shorter sequences (at data.fps, before features) are skipped
    dtype: Literal["float32", "float64"]


class CacheParams(Section):
    dir: str                           # data/cache
    workers: PosInt                    # process pool size (1: the stage's own process does the work)
    threads_per_worker: PosInt         # torch intra-op threads of each worker (also of the stage's process with 1 worker)
    max_skip_fraction: Fraction        # fail the stage if more sequences than this are skipped


class ValidateParams(Section):
    dir: str                           # bad lists
    metrics: str                       # metrics/data.json
    max_bad_fraction: Fraction
    min_upright_fraction: Fraction     # head above pelvis in at least this share of frames
    bone_tolerance_m: PosFloat         # recovered bone lengths vs the HumanML3D target skeleton
    max_root_speed_mps: PosFloat
    max_joint_radius_m: PosFloat       # farthest a joint may sit from the root (ric)


class StatsParams(Section):
    path: str
    domain_weights: dict[Literal["aist", "mvh"], NonNegFloat]
    group_std: bool                    # HumanML3D's per-group std averaging
    min_std: PosFloat

    @model_validator(mode="after")
    def _weights(self) -> "StatsParams":
        if sum(self.domain_weights.values()) <= 0:
            raise ValueError("stats.domain_weights must have a positive sum")
        return self


# ----------------------------------------------------------------------------- model / training


class Transformer(Section):
    """What every trained transformer of the project has: the VAE (`train`), the flow prior (`prior`)
    and the genre classifier (`classifier`) -- its size, its training windows and optimiser, its seed,
    device and checkpoint."""

    section: ClassVar[str]             # the params.yaml section, for messages
    seed: NonNegInt
    device: Literal["auto", "cpu", "cuda"]
    # model
    d_model: PosInt
    n_layers: PosInt                   # the VAE: per encoder and per decoder
    n_heads: PosInt
    mlp_ratio: PosFloat
    dropout: Fraction
    # data
    seq_len: Annotated[int, Field(ge=4)]   # frames per training window (latent frames for the prior)
    batch_size: PosInt
    windows_per_sequence: PosInt       # random crops drawn from each train sequence per epoch
    # optimisation
    epochs: PosInt
    lr: PosFloat
    weight_decay: NonNegFloat
    model_path: str                    # the checkpoint the next stages read

    @model_validator(mode="after")
    def _heads(self) -> "Transformer":
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(f"{self.section}.d_model ({self.d_model}) must be divisible by {self.section}.n_heads "
                             f"({self.n_heads}) into even head sizes")
        return self


class TrainingRun(Transformer):
    """A transformer trained by a resumable stage of its own (`train`, `train_prior`): threads, DDP
    ranks, the learning-rate schedule, classifier-free-guidance dropout, logging and resuming."""

    nproc_per_node: PosInt             # 1: train in-process; > 1: DDP, one process per rank via torchrun
    threads: PosInt                    # torch intra-op CPU threads per process (they change float results)
    min_lr_ratio: Fraction
    warmup_steps: NonNegInt
    grad_clip: NonNegFloat             # 0 disables clipping
    cond_dropout: Annotated[float, Field(ge=0, lt=1)]   # share of labels replaced by the null one (CFG); 0 = off
    # bookkeeping
    val_every_epochs: PosInt
    log_every_steps: PosInt
    resume: bool                       # continue from last_path when it was made with these params
    last_path: str                     # resumable state
    live_dir: str                      # dvclive folder


class TrainParams(TrainingRun):
    """The motion VAE (`model/vae.py`, stage train); `cond_dropout` nulls the decoder's genre labels."""

    section: ClassVar[str] = "train"
    d_z: PosInt
    style_head: bool
    mvh_epoch_ratio: PosFloat          # MVHumanNet windows per epoch = ratio x AIST++ train windows
    num_workers: NonNegInt
    # losses
    w_recon: NonNegFloat
    w_contact: NonNegFloat
    w_smooth: NonNegFloat
    w_style: NonNegFloat
    w_joints: NonNegFloat              # joint-position loss (metres); 0 keeps the seed's loss
    w_genre_adv: NonNegFloat           # adversarial genre critic on z (gradient reversal); 0 = off, the seed's
    kl_weight: NonNegFloat             # final KL weight after warm-up
    kl_warmup_steps: NonNegInt


class LatentsParams(Section):
    """The latents stage: every usable sequence encoded by the frozen VAE (posterior means per frame)."""

    dir: str                           # data/latents: <domain>/<id>.npy (frames, d_z) + index.json
    threads: PosInt                    # torch CPU threads (they change float results)


class PriorParams(TrainingRun):
    """The flow-matching prior over the VAE's latents (`model/prior.py`, stage train_prior); its
    model_path holds the EMA weights of the best validation checkpoint."""

    section: ClassVar[str] = "prior"
    kernel: Annotated[int, Field(ge=1, le=15)]   # frames the input embedding reads (odd; 1: per frame)
    out_kernel: Annotated[int, Field(ge=1, le=15)]   # frames the output velocity mixes (odd; 1: none)
    context_rate: Annotated[float, Field(ge=0, lt=1)]   # share of windows trained with known frames (0: no context input)
    time_sampling: Literal["uniform", "logit_normal"]
    ema_decay: Annotated[float, Field(ge=0, lt=1)]      # EMA of the weights (0: the raw weights); saved models are EMA

    @model_validator(mode="after")
    def _kernels(self) -> "PriorParams":
        if self.kernel % 2 == 0 or self.out_kernel % 2 == 0:
            raise ValueError(f"prior.kernel and prior.out_kernel must be odd (centred windows), got {self.kernel}, "
                             f"{self.out_kernel}")
        return self


class EvaluateParams(Section):
    metrics: str                       # metrics/eval.json
    plots_dir: str                     # metrics/plots
    batch_size: PosInt
    seed: NonNegInt                    # evaluation sampling and the bootstrap resampling
    window_frames: Annotated[int, Field(ge=4)]   # fixed evaluation window (frames at data.fps), not train.seq_len
    bootstrap: NonNegInt               # resamples (over sequences) for the 95 % intervals; 0: none
    gif_frames: PosInt
    gif_fps: PosInt


class ClassifierParams(Transformer):
    """The independent genre classifier (`model/classifier.py`): real AIST++ train windows only."""

    section: ClassVar[str] = "classifier"
    min_std: PosFloat                  # floor of the input std fitted on the training windows
    metrics: str
    plots_dir: str                     # the test confusion matrix (DVC plot)


class GenerateParams(Section):
    """The generate stage: transfers, prior samples and the label-matters check, judged on the test split."""

    seed: NonNegInt                    # sample latents, picks of windows, bootstrap
    sampler: Literal["vae_prior", "flow", "both"]   # which samplers to make and judge
    steps: PosInt                      # flow ODE steps
    solver: Literal["euler", "midpoint"]
    guidance: NonNegFloat              # the flow prior's classifier-free guidance; 1 = plain conditional velocity
    temperature: PosFloat              # scale of the flow samples' starting noise (1: as trained; docs/flow_temperature.md)
    decoder_guidance: NonNegFloat      # the VAE decoder's classifier-free guidance over the genre label; 1 = plain
    transfer_strength: Annotated[float, Field(ge=0.0, le=1.0)]   # SDEdit noise level of transfers through the
                                       # flow prior (generation.core.restyle_latents); 0 = a bare label swap
    transfer_guidance: NonNegFloat     # the flow's classifier-free guidance towards the target in transfers
    transfer_steps: PosInt             # ODE steps of a transfer's edit (from t = 1 - strength to 1)
    fid_steps: list[PosInt]            # extra flow step counts whose FID_k is reported (8, 16 in the demo)
    samples_per_genre: PosInt          # samples (one judging window each) per genre, per sampler
    mvh_samples: PosInt                # samples decoded as MVHumanNet, per sampler
    inbetween_frames: Annotated[int, Field(ge=2)]   # the in-betweening check: gap frames ...
    context_frames: Annotated[int, Field(ge=1)]     # ... between this many known frames on either side
    foot_lock: bool                    # sample, transfer, inbetween, continue: pin feet labelled planted (generation.footlock)
    seam_strength: Fraction            # ... and their joins re-generated from this noise level (0: off)
    seam_frames: NonNegInt             # ... which may change this many known frames next to each join
    memorisation_stride: PosInt        # start-frame stride of the train windows searched for nearest neighbours
    label_windows_per_genre: PosInt    # AIST++ test windows per genre re-decoded with every other label
    bootstrap: NonNegInt               # resamples for the 95 % intervals; 0: none
    gif_genres: Annotated[list[str], Field(min_length=1, max_length=5)]   # genres of the grid GIF's transfers
    gif_frames: PosInt
    gif_fps: PosInt
    metrics: str                       # metrics/generate.json
    plots_dir: str                     # grid GIF, transfer confusion
    grid: str                          # the grid GIF's joints (.npz, committed): the README picture's source

    @field_validator("gif_genres")
    @classmethod
    def _genres(cls, v: list[str]) -> list[str]:
        for g in v:
            parse_genre(g)             # ValueError listing the valid genres
        return v


class Params(Section):
    data: DataParams
    demo: DemoParams
    split: SplitParams
    features: FeatureParams
    cache: CacheParams
    validate_: ValidateParams = Field(alias="validate")
    stats: StatsParams
    train: TrainParams
    evaluate: EvaluateParams
    classifier: ClassifierParams
    latents: LatentsParams
    prior: PriorParams
    generate: GenerateParams

    # `validate` would shadow a BaseModel method, so the attribute is `validate_`.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=True, allow_inf_nan=False)
    _source: str = PrivateAttr(default=DEFAULT_PARAMS)

    @property
    def source(self) -> str:
        """The params file these values came from (for error messages that name it)."""
        return self._source


# ----------------------------------------------------------------------------- loading


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader whose implicit scalars follow the YAML 1.2 core schema (bool, int, float, null).

    YAML 1.1 (PyYAML's default) reads ``1e-3`` as a string (it wants a dot), ``yes``/``on`` as
    booleans, ``010`` as octal 8 and ``1:30`` as 90; YAML 1.2 -- and DVC's own YAML library,
    which writes params.yaml on ``dvc exp run -S`` -- reads them as 0.001, strings, 10 and a string.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:int",       # before float: "1" is an int
                                    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)                          # decimal, leading zeros included (YAML 1.2)


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _check_duplicates(node: yaml.Node, path: Path, where: str = "") -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            name = f"{where}.{key}" if where else str(key)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(f"{path}: {name}: duplicate key (lines {seen[key]} and {line}); "
                                  "YAML would silently keep the last one")
            seen[key] = line
            _check_duplicates(value_node, path, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, path, f"{where}[{i}]")


def read_yaml(path: str | Path) -> Any:
    """Parse a params file: YAML 1.2 scalars, duplicate keys refused (`ConfigError` naming the key)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found (run from the project root or pass --params)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the params file ({e})") from None
    try:
        node = yaml.compose(text, Loader=_Yaml12Loader)
        if node is not None:
            _check_duplicates(node, path)
        return yaml.load(text, Loader=_Yaml12Loader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]).replace("validate_", "validate")
        msg = e["msg"]
        if "input" in e and e["type"] not in ("missing", "extra_forbidden") and not isinstance(e["input"], (dict, list)):
            msg = f"{msg} (got {e['input']!r})"
        if e["type"] == "extra_forbidden":
            msg = "unknown key (typo? every key must be one FlowMimic knows)"
        elif e["type"] == "missing":
            msg = "missing key (every knob must be set in the params file)"
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)


def params_from_dict(raw: Any, source: str | Path = "<dict>") -> Params:
    """Validate an already-parsed params mapping."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    try:
        params = Params.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_errors(Path(str(source)), e)) from None
    params._source = str(source)
    return params


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate `params.yaml`; raises `ConfigError` naming the file and key on any problem."""
    return params_from_dict(read_yaml(path), path)
