"""The per-sequence feature cache: what to process, when saved work is reusable, the worker.

A job is one sequence of a split. Its fingerprint hashes the native files' names, sizes and
modification times, the `data` and `features` params and the code that turns raw files into
features; the manifest (`<cache.dir>/.cache-manifest*.json`) maps each job to the fingerprint its
saved result was made with. A re-run (after a crash, or of one shard) skips jobs whose fingerprint is
unchanged, so killed runs resume and DVC's `persist: true` cache is safe across param changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from flowmimic.cache.catalog import DOMAINS, SPLITS, split_path
from flowmimic.errors import DataError
from flowmimic.features.humanml3d import joints_to_features
from flowmimic.io import read_json, read_lines, save_npy, write_json
from flowmimic.params import Params

log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parent.parent   # src/flowmimic
# The code a cached feature file depends on (mirrors the cache stage's code deps in dvc.yaml).
CODE_DEPS = ("body", "features", "sources", "cache/jobs.py", "io.py", "taxonomy.py")


@dataclass(frozen=True)
class Job:
    domain: str
    id: str
    source: str          # native file (AIST++) or smpl_param folder (MVHumanNet)
    genre_id: int
    performer: str

    @property
    def key(self) -> str:
        return f"{self.domain}/{self.id}"

    @property
    def relpath(self) -> str:
        return f"{self.domain}/{self.id}.npy"


def list_jobs(params: Params) -> list[Job]:
    """Every sequence named in a split file, sorted by (domain, id)."""
    from flowmimic.sources import aist, mvhumannet

    jobs = []
    for domain in DOMAINS:
        ids = sorted({i for split in SPLITS for i in read_lines(split_path(params.split.dir, domain, split))})
        for seq_id in ids:
            if domain == "aist":
                try:
                    name = aist.parse_name(seq_id)
                    gid, performer = name.genre_id, name.dancer
                except ValueError:
                    gid, performer = 0, ""
                source = str(aist.motion_path(params.data.aist_root, seq_id))
            else:
                try:
                    performer = mvhumannet.performer_of(seq_id, params.data.mvh.performer_regex)
                except DataError:
                    performer = ""
                gid, source = 0, str(mvhumannet.sequence_dir(params.data.mvh_root, seq_id))
            jobs.append(Job(domain, seq_id, source, gid, performer))
    return jobs


def shard_jobs(jobs: list[Job], shard: tuple[int, int] | None) -> list[Job]:
    if shard is None:
        return jobs
    i, n = shard
    return [j for k, j in enumerate(jobs) if k % n == i]


def code_fingerprint() -> str:
    h = hashlib.sha256()
    for dep in CODE_DEPS:
        p = PACKAGE_DIR / dep
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.relative_to(PACKAGE_DIR).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def config_fingerprint(params: Params) -> str:
    blob = json.dumps({"data": params.data.fingerprint(), "features": params.features.fingerprint(),
                       "code": code_fingerprint()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _stat_key(path: str | Path) -> str:
    """Size and mtime of a file (following symlinks), or why it cannot be followed (a loop, dangling)."""
    try:
        st = os.stat(path)
    except OSError as e:
        return f"error-{e.errno}"
    return f"{st.st_size}:{st.st_mtime_ns}"


def source_fingerprint(source: str | Path) -> str:
    """Names, sizes and mtimes of the native file(s); 'missing' when absent.

    Never raises on a broken input (a symlink loop, an unreadable folder): the reader reports those.
    """
    p = Path(source)
    try:
        if p.is_dir():
            items = sorted((e.name, _stat_key(e.path)) for e in os.scandir(p))
        elif p.exists() or p.is_symlink():
            items = [(p.name, _stat_key(p))]
        else:
            return "missing"
    except OSError as e:
        return f"error-{e.errno}"
    h = hashlib.sha256()
    for name, key in items:
        h.update(f"{name}:{key};".encode())
    return h.hexdigest()[:16]


def job_fingerprint(job: Job, config_fp: str) -> str:
    return f"{config_fp}-{source_fingerprint(job.source)}"


# ----------------------------------------------------------------------------- manifest
# The manifest holds machine-specific state (file mtimes), so `.dvcignore` keeps it out of the
# cache output's DVC hash: the hash then depends on the features alone, and re-running the stage
# with unchanged results does not invalidate validate/stats/train downstream.
MANIFEST = ".cache-manifest"


def manifest_name(shard: tuple[int, int] | None) -> str:
    return f"{MANIFEST}.json" if shard is None else f"{MANIFEST}.shard-{shard[0]}-of-{shard[1]}.json"


def read_manifests(cache_dir: str | Path) -> dict[str, dict]:
    """Union of every manifest in the cache folder: key -> {"fingerprint", "row"}."""
    merged: dict[str, dict] = {}
    for f in sorted(Path(cache_dir).glob(f"{MANIFEST}*.json")):
        try:
            merged.update(read_json(f).get("jobs", {}))
        except (DataError, AttributeError):
            log.warning("cache: ignoring unreadable manifest %s (its jobs will be redone)", f)
    return merged


def write_manifest(cache_dir: str | Path, shard: tuple[int, int] | None, jobs: dict[str, dict]) -> None:
    write_json(Path(cache_dir) / manifest_name(shard), {"version": 1, "jobs": jobs})


def is_reusable(entry: dict | None, fingerprint: str, cache_dir: str | Path) -> bool:
    """Whether a saved result still holds: same fingerprint, its file present; internal errors are redone."""
    if entry is None or entry.get("fingerprint") != fingerprint:
        return False
    row = entry["row"]
    if row["status"] == "error":
        return False
    return row["status"] != "ok" or (Path(cache_dir) / row["path"]).is_file()


# ----------------------------------------------------------------------------- the work


def fingerprinted(job: Job, work: Callable[[Job], dict], config_fp: str) -> dict:
    """`work(job)`'s row, with the job's fingerprint under "fingerprint" (for the manifest, not the
    index). It is taken before the files are read: a file that changes during the read leaves an old
    fingerprint, so the next run redoes the job rather than keeping a stale result."""
    fingerprint = job_fingerprint(job, config_fp)
    row = work(job)
    row["fingerprint"] = fingerprint
    return row


def process_job(job: Job, params: Params, reader_args: dict) -> dict:
    """Read, align, featurise and save one sequence; returns its index row (skips and errors are rows too).

    A bad input (`DataError`) gives status "skipped" with its reason. Any other exception is a bug
    of ours: status "error", reason "internal_error", and the traceback under the row's
    "traceback" key, which the stage logs and drops (it never reaches the index); the other
    jobs carry on and the stage fails at its end.
    """
    try:
        return _featurise(job, params, reader_args)
    except Exception as e:  # a bug of ours on this input: counted and failed loudly, never a skip
        return error_row(job, "internal_error", f"{job.source}: internal error ({type(e).__name__}: {e})",
                         traceback=traceback.format_exc())


def error_row(job: Job, reason: str, message: str, **fields) -> dict:
    """The row of a job that failed for a reason of ours, not its data: never saved as done (a re-run retries it)."""
    return _row(job, status="error", reason=reason, message=message, **fields)


def _row(job: Job, **fields) -> dict:
    """The job's index row (a skip until filled in)."""
    row = {"id": job.id, "domain": job.domain, "genre_id": job.genre_id, "performer": job.performer,
           "frames": 0, "seconds": 0.0, "source": job.source, "status": "skipped", "reason": None,
           "message": None, "path": job.relpath, "notes": []}
    row.update(fields)
    return row


def _featurise(job: Job, params: Params, reader_args: dict) -> dict:
    """`process_job`'s work: the row of a cached sequence, or of a skip with the `DataError`'s reason."""
    from flowmimic.sources import aist, mvhumannet

    row = _row(job)
    try:
        if job.domain == "aist":
            seq = aist.read_sequence(job.source, params.data, **reader_args)
        else:
            seq = mvhumannet.read_sequence(params.data.mvh_root, job.id, params.data)
        n = seq.joints.shape[0]
        if n < params.features.min_frames:
            raise DataError(job.source, f"{n} frames at {seq.fps:g} fps, fewer than features.min_frames="
                            f"{params.features.min_frames}", "too_short")
        dtype = getattr(torch, params.features.dtype)
        feats = joints_to_features(seq.joints, feet_threshold=params.features.feet_threshold, dtype=dtype)
        if not bool(torch.isfinite(feats).all()):
            raise DataError(job.source, "features contain NaN/Inf (degenerate pose?)", "nan_features")
        save_npy(Path(params.cache.dir) / job.relpath, feats.numpy())
        row.update(status="ok", frames=int(feats.shape[0]), seconds=round(n / seq.fps, 3), notes=list(seq.notes),
                   performer=seq.performer, genre_id=seq.genre_id)
    except DataError as e:
        row.update(reason=e.reason, message=str(e))
    return row

