"""Cache stage: raw sequences -> aligned joints -> 263-D features, one float32 .npy per sequence.

Writes `<cache.dir>/{aist,mvh}/<id>.npy` (frames, 263) and `<cache.dir>/index.json` (one row per
sequence of the splits: id, domain, genre, performer, frames, source, status, skip reason; see
`flowmimic.cache.catalog`). A process pool of `cache.workers` streams the sequences, so memory stays
bounded by one sequence per worker; every worker (and the stage's own process when `cache.workers`
is 1) runs `cache.threads_per_worker` torch threads. Every file is written atomically; the manifest makes a killed
run resumable, and a run (or a merge) first deletes the temp files a killed run left (`.dvcignore`
keeps them out of the output's hash meanwhile). For a cluster, run `flowmimic cache --shard i/N` for
i = 0..N-1 (a job array: one clone of the repo per job, or one shared folder), then
`flowmimic cache-merge` once.

A bad input is a skip with its reason; a bug of ours on one input (any other exception) is a row
with status "error" and reason "internal_error", its traceback logged; a sequence whose worker
process dies, twice (`flowmimic.cache.pool`), is a row with status "error" and reason "worker_died".
Either way the other sequences are cached and the stage then fails at its end, after writing the
index; a re-run retries only those.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections import Counter
from functools import partial
from pathlib import Path

from tqdm import tqdm

from flowmimic.cache.catalog import INDEX_VERSION, index_path
from flowmimic.cache.heap import keep_freed_memory
from flowmimic.errors import DataError, InternalError
from flowmimic.cache.jobs import (Job, config_fingerprint, fingerprinted, is_reusable, job_fingerprint, list_jobs,
                                  manifest_name, process_job, read_manifests, shard_jobs, write_manifest)
from flowmimic.cache.pool import pooled_rows, torch_threads
from flowmimic.io import read_json, remove_temp_files, write_json
from flowmimic.params import Params
from flowmimic.sources import aist_reader_args

log = logging.getLogger(__name__)
# The resume manifest is saved every FLUSH_EVERY_S seconds and every FLUSH_EVERY_N finished
# sequences, so a kill (SIGKILL, where no `finally` runs) loses at most that much finished work.
# Each save rewrites the whole manifest (the main process's time, which the workers wait on at the
# end): a small count would make the saves quadratic in the dataset's size and cost the demo ~8 %.
FLUSH_EVERY_N = 1000
FLUSH_EVERY_S = 5.0


def _index_name(shard: tuple[int, int] | None) -> str:
    return "index.json" if shard is None else f"index.shard-{shard[0]}-of-{shard[1]}.json"


def run_jobs(params: Params, jobs: list[Job], shard: tuple[int, int] | None) -> list[dict]:
    """Process the jobs whose saved result is stale; returns every job's row in job order."""
    cache_dir = Path(params.cache.dir)
    config_fp = config_fingerprint(params)
    manifest = read_manifests(cache_dir)
    # Only jobs with a saved result need their fingerprint here; the others' come back with their rows,
    # taken in the workers (stat-ing every native file is a serial cost that grows with the dataset).
    rows = {j.key: manifest[j.key]["row"] for j in jobs
            if j.key in manifest and is_reusable(manifest[j.key], job_fingerprint(j, config_fp), cache_dir)}
    todo = [j for j in jobs if j.key not in rows]
    log.info("cache: %d sequences, %d up to date, %d to process with %d worker(s)",
             len(jobs), len(rows), len(todo), params.cache.workers)
    mine = {k: manifest[k] for k in rows}            # this run's manifest keeps only its own jobs
    work = partial(fingerprinted, work=partial(process_job, params=params, reader_args=aist_reader_args(params.data)),
                   config_fp=config_fp)
    last_flush, unsaved = time.monotonic(), 0
    threads = params.cache.threads_per_worker
    # Forked workers are cheap, but GNU OpenMP is not fork-safe: a child forked after the parent used
    # torch's thread pool deadlocks in its first multi-threaded op. One thread per worker never
    # enters OpenMP; more get freshly spawned workers.
    context = "fork" if threads == 1 else "spawn"
    keep_freed_memory()                          # this process's jobs, and forked workers inherit it
    if params.cache.workers > 1:
        results = pooled_rows(todo, params.cache.workers, threads, work, context)
        in_process = contextlib.nullcontext()
    else:                                        # the one-worker path works in this process, with the workers' thread count
        results, in_process = (work(job) for job in todo), torch_threads(threads)
    try:
        with in_process, contextlib.closing(results):   # closed on any exit: a pool's workers stop at once
            for row in tqdm(results, total=len(todo), desc="cache", unit="seq", disable=not todo):
                key = f"{row['domain']}/{row['id']}"
                fingerprint = row.pop("fingerprint", None)       # a worker that died took it along
                trace = row.pop("traceback", None)
                if trace is not None:
                    log.error("cache: internal error (a bug, not bad data) on %s:\n%s", key, trace.rstrip())
                elif row["status"] == "error":
                    log.error("cache: %s", row["message"])           # its worker process died
                rows[key] = row
                if row["status"] == "error":
                    continue                             # never saved as done: a re-run retries it
                mine[key] = {"fingerprint": fingerprint, "row": row}
                unsaved += 1
                if unsaved >= FLUSH_EVERY_N or time.monotonic() - last_flush > FLUSH_EVERY_S:
                    write_manifest(cache_dir, shard, mine)
                    last_flush, unsaved = time.monotonic(), 0
    finally:
        write_manifest(cache_dir, shard, mine)       # whatever finished survives a crash
    return [rows[j.key] for j in jobs]


def remove_orphans(cache_dir: Path, rows: list[dict]) -> int:
    """Delete cached .npy files no row refers to (sequences dropped from the splits)."""
    # compared as normalised relative names: resolving every path costs a stat per path component
    keep = {os.path.normpath(r["path"]) for r in rows if r["status"] == "ok"}
    removed = 0
    for sub in ("aist", "mvh"):
        for f in (cache_dir / sub).rglob("*.npy") if (cache_dir / sub).is_dir() else []:
            if os.path.normpath(f.relative_to(cache_dir)) not in keep:
                f.unlink()
                removed += 1
    return removed


def _names(rows: list[dict]) -> str:
    return ", ".join(f"{r['domain']}/{r['id']}" for r in rows[:5]) + (" ..." if len(rows) > 5 else "")


def report(rows: list[dict], max_skip_fraction: float, where: Path) -> None:
    """Log the skips with their reasons; fail on internal errors, or when more than
    `cache.max_skip_fraction` were skipped (called after the index is written)."""
    skipped = [r for r in rows if r["status"] == "skipped"]
    errors = [r for r in rows if r["status"] == "error"]
    for r in skipped:
        log.warning("cache: skipped %s/%s (%s): %s", r["domain"], r["id"], r["reason"], r["message"])
    for r in rows:
        for note in r.get("notes", []):
            log.info("cache: %s/%s: %s", r["domain"], r["id"], note)
    reasons = Counter(r["reason"] for r in skipped)
    log.info("cache: %d ok, %d skipped %s, %d internal error(s)", len(rows) - len(skipped) - len(errors),
             len(skipped), dict(reasons), len(errors))
    if errors:
        bugs = [r for r in errors if r["reason"] != "worker_died"]
        died = [r for r in errors if r["reason"] == "worker_died"]
        parts = [f"{len(bugs)} sequence(s) hit an internal error, a bug in FlowMimic and not bad data "
                 f"({_names(bugs)}; the tracebacks are logged above)"] if bugs else []
        parts += [f"the process reading {len(died)} sequence(s) died ({_names(died)}), the first: "
                  f"{died[0]['message']}"] if died else []
        raise InternalError(f"{where}: {'; '.join(parts)}; the other sequences are cached")
    if rows and len(skipped) / len(rows) > max_skip_fraction:
        raise DataError(where, f"{len(skipped)} of {len(rows)} sequences skipped ({dict(reasons)}), more than "
                        f"cache.max_skip_fraction={max_skip_fraction}; see the index for each reason", "too_many_skips")


def main(params: Params, shard: tuple[int, int] | None = None) -> None:
    """Build (or bring up to date) the cache; with `shard=(i, n)` only that shard's sequences."""
    cache_dir = Path(params.cache.dir)
    if shard is None:                   # shards may share the folder with running shards: `merge` cleans
        _remove_temp_files(cache_dir)
    jobs = shard_jobs(list_jobs(params), shard)
    rows = run_jobs(params, jobs, shard)
    write_json(cache_dir / _index_name(shard), {"version": INDEX_VERSION, "sequences": rows})
    if shard is None:
        removed = remove_orphans(cache_dir, rows)
        if removed:
            log.info("cache: removed %d cached files of sequences no longer in the splits", removed)
    report(rows, params.cache.max_skip_fraction, cache_dir / _index_name(shard))


def _remove_temp_files(cache_dir: Path) -> None:
    removed = remove_temp_files(cache_dir)
    if removed:
        log.info("cache: removed %d temp file(s) a killed run left", removed)


def merge(params: Params) -> None:
    """Combine `index.shard-i-of-N.json` (all i present) into `index.json` and one manifest."""
    cache_dir = Path(params.cache.dir)
    found: dict[int, set[int]] = {}
    for f in cache_dir.glob("index.shard-*-of-*.json"):
        i, n = (int(x) for x in re.match(r"index\.shard-(\d+)-of-(\d+)\.json", f.name).groups())
        found.setdefault(n, set()).add(i)
    if len(found) != 1:
        raise DataError(cache_dir, f"need the shard indexes of exactly one sharded run, found runs with N = "
                        f"{sorted(found) or 'none'}; delete the stale index.shard-*-of-N.json files", "incomplete")
    n, got = next(iter(found.items()))
    if got != set(range(n)):
        raise DataError(cache_dir, f"missing shard index(es) {sorted(set(range(n)) - got)} of {n}; "
                        f"run `flowmimic cache --shard i/{n}` for them first", "incomplete")
    _remove_temp_files(cache_dir)                    # every shard has finished
    rows = [r for i in range(n) for r in read_json(cache_dir / _index_name((i, n)))["sequences"]]
    rows.sort(key=lambda r: (r["domain"], r["id"]))
    jobs = {}
    for i in range(n):
        shard_manifest = cache_dir / manifest_name((i, n))
        jobs.update(read_json(shard_manifest)["jobs"])
    write_manifest(cache_dir, None, jobs)
    write_json(index_path(cache_dir), {"version": INDEX_VERSION, "sequences": rows})
    for i in range(n):
        (cache_dir / _index_name((i, n))).unlink()
        (cache_dir / manifest_name((i, n))).unlink()
    log.info("cache-merge: %d shards, %d sequences", n, len(rows))
    report(rows, params.cache.max_skip_fraction, index_path(cache_dir))
