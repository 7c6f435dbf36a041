"""Latents stage: every usable train/val/test sequence encoded by the frozen VAE -- the flow prior's data.

Each sequence's features are encoded with its own domain through the generation library's
`encode_features` (the model's windows, overlapping by half, posterior means blended per frame), so
the prior learns exactly the latents that `flowmimic transfer` / `inbetween` / `continue` encode;
every window of every sequence is covered.

Writes `<latents.dir>/<domain>/<id>.npy` ((frames, d_z) float32) and `<latents.dir>/index.json`:
version, the VAE checkpoint's path and sha256, d_z, and one row per sequence (id, domain, split,
genre_id, frames, path, source digest of its cached features). Files are written atomically and the
index is saved every few sequences, so a killed run resumes: a row whose VAE hash, source digest and
file still match is reused, anything else is encoded again; files no row refers to are removed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from flowmimic.cache.catalog import SPLITS, CachedSequence, usable_sequences
from flowmimic.errors import DataError
from flowmimic.generation.checkpoint import load_generation_model
from flowmimic.generation.core import encode_features
from flowmimic.io import read_json, remove_temp_files, save_npy, write_json
from flowmimic.params import Params
from flowmimic.taxonomy import DOMAINS

log = logging.getLogger(__name__)
LATENTS_VERSION = 1
FLUSH_EVERY_N = 20


@dataclass(frozen=True)
class LatentSequence:
    """One encoded sequence (a row of the index)."""

    id: str
    domain: str
    domain_id: int
    genre_id: int
    split: str
    frames: int
    path: Path

    def load(self) -> np.ndarray:
        try:
            return np.load(self.path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(self.path, f"unreadable latents ({e})", "unreadable") from e


def index_path(latents_dir: str | Path) -> Path:
    return Path(latents_dir) / "index.json"


def read_latent_index(latents_dir: str | Path) -> dict:
    """The latents index; `DataError` naming it when missing or of another version."""
    path = index_path(latents_dir)
    index = read_json(path)
    if not isinstance(index, dict) or index.get("version") != LATENTS_VERSION or "sequences" not in index:
        raise DataError(path, f"not a version-{LATENTS_VERSION} latents index (re-run `flowmimic latents`)", "invalid")
    return index


def latent_sequences(latents_dir: str | Path, split: str, min_frames: int = 1) -> list[LatentSequence]:
    """The encoded sequences of `split` with at least `min_frames` frames, in index order."""
    out = []
    for r in read_latent_index(latents_dir)["sequences"]:
        if r["split"] == split and int(r["frames"]) >= min_frames:
            out.append(LatentSequence(r["id"], r["domain"], DOMAINS.index(r["domain"]), int(r["genre_id"]), split,
                                      int(r["frames"]), Path(latents_dir) / r["path"]))
    return out


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def _write_index(path: Path, gm, d_z: int, rows: dict[str, dict]) -> None:
    write_json(path, {"version": LATENTS_VERSION, "vae_path": gm.path, "vae_sha256": gm.sha256, "d_z": d_z,
                      "sequences": list(rows.values())})


def main(params: Params) -> dict:
    """Encode every usable sequence (resuming a killed run); returns the index written."""
    torch.set_num_threads(params.latents.threads)
    started = time.perf_counter()
    out_dir = Path(params.latents.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_temp_files(out_dir)
    gm = load_generation_model(params.train.model_path)
    d_z = gm.model.config.d_z
    paths = (params.cache.dir, params.split.dir, params.validate_.dir)
    todo: list[tuple[str, CachedSequence]] = [(split, s) for split in SPLITS for s in usable_sequences(*paths, split)]
    if not any(split == "train" for split, _ in todo):
        raise DataError(params.split.dir, "no usable train sequence to encode", "empty")

    old: dict[str, dict] = {}
    try:
        previous = read_latent_index(out_dir)
        if previous.get("vae_sha256") == gm.sha256:
            old = {f"{r['domain']}/{r['id']}": r for r in previous["sequences"]}
    except DataError:
        pass                                            # no index yet (or unusable): start over
    rows: dict[str, dict] = {}
    encoded = 0
    for split, seq in todo:
        key = f"{seq.domain}/{seq.id}"
        digest = _digest(seq.path)
        rel = f"{seq.domain}/{seq.id}.npy"
        prev = old.get(key)
        if (prev is not None and prev["source_digest"] == digest and prev["split"] == split
                and (out_dir / rel).is_file()):
            rows[key] = prev
            continue
        feats = torch.from_numpy(np.asarray(seq.load(), dtype=np.float32))[None]
        z = encode_features(gm, feats, seq.domain)[0].float().cpu().numpy()          # (frames, Z)
        if not np.isfinite(z).all():
            raise DataError(seq.path, "the VAE encoded it to NaN/Inf latents", "nan")
        save_npy(out_dir / rel, z.astype(np.float32))
        rows[key] = {"id": seq.id, "domain": seq.domain, "split": split, "genre_id": seq.genre_id,
                     "frames": int(z.shape[0]), "path": rel, "source_digest": digest}
        encoded += 1
        if encoded % FLUSH_EVERY_N == 0:
            _write_index(index_path(out_dir), gm, d_z, rows)
    _write_index(index_path(out_dir), gm, d_z, rows)
    keep = {(out_dir / r["path"]).resolve() for r in rows.values()}
    removed = 0
    for f in out_dir.rglob("*.npy"):
        if f.resolve() not in keep:
            f.unlink()
            removed += 1
    log.info("latents: %d sequences (%d encoded, %d reused, %d stale files removed), d_z %d, %.1f s -> %s",
             len(rows), encoded, len(rows) - encoded, removed, d_z, time.perf_counter() - started, out_dir)
    return read_latent_index(out_dir)
