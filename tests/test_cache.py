"""Cache stage: features per sequence, the index, skips with reasons, resume, shards, orphans."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from flowmimic.cache import jobs as feature_cache
from flowmimic.cache import pool as feature_pool
from flowmimic.cache.catalog import read_index
from flowmimic.errors import DataError
from flowmimic.features import layout
from flowmimic.stages import cache, split

from raw_fixtures import REPO, make_tiny_tree


@pytest.fixture()
def tree(tmp_path):
    params = make_tiny_tree(tmp_path)
    split.main(params)
    return params


def _rows(params):
    return {(r["domain"], r["id"]): r for r in read_index(params.cache.dir)}


def test_cache_writes_features_and_index(tree):
    cache.main(tree)
    rows = _rows(tree)
    assert len(rows) == 4 + 5 and all(r["status"] == "ok" for r in rows.values())
    r = rows[("aist", "gBR_sBM_cAll_d01_mBR0_ch01")]
    arr = np.load(f"{tree.cache.dir}/{r['path']}")
    assert arr.shape == (r["frames"], layout.DIM) == (39, 263) and arr.dtype == np.float32
    assert r["genre_id"] == 1 and r["performer"] == "d01" and r["seconds"] == pytest.approx(2.0)
    m = rows[("mvh", "part_01/100001_02")]
    assert m["path"] == "mvh/part_01/100001_02.npy" and m["performer"] == "100001" and m["genre_id"] == 0


def test_bad_sequences_are_counted_not_dropped(tree):
    bad = next((Path(tree.data.aist_root) / "motions").glob("gPO_sBM*.pkl"))
    bad.write_bytes(bad.read_bytes()[:100])
    cache.main(tree)
    row = _rows(tree)[("aist", bad.stem)]
    assert row["status"] == "skipped" and row["reason"] == "unreadable" and str(bad) in row["message"]
    assert not (Path(tree.cache.dir) / row["path"]).exists()


def test_too_many_skips_fail_after_writing_the_index(tmp_path):
    params = make_tiny_tree(tmp_path, **{"cache.max_skip_fraction": 0.0, "features.min_frames": 1000})
    split.main(params)
    with pytest.raises(DataError, match="max_skip_fraction"):
        cache.main(params)
    assert {r["reason"] for r in read_index(params.cache.dir)} == {"too_short"}


def test_killed_run_resumes_and_unchanged_jobs_are_skipped(tree, monkeypatch):
    calls = []
    real = feature_cache.process_job

    def dying(job, params, reader_args):
        if len(calls) == 3:
            raise KeyboardInterrupt          # the run is killed after three sequences
        calls.append(job.key)
        return real(job, params, reader_args)

    monkeypatch.setattr(cache, "process_job", dying)
    with pytest.raises(KeyboardInterrupt):
        cache.main(tree)
    done_first = list(calls)
    calls.clear()
    monkeypatch.setattr(cache, "process_job", lambda job, params, reader_args: calls.append(job.key) or real(job, params, reader_args))
    cache.main(tree)
    assert len(done_first) == 3 and not set(done_first) & set(calls) and len(calls) == 9 - 3
    calls.clear()
    cache.main(tree)                       # nothing changed: nothing recomputed
    assert calls == []
    changed = tree.model_copy(update={"features": tree.features.model_copy(update={"feet_threshold": 0.003})})
    cache.main(changed)                    # a feature param changed: everything recomputed
    assert len(calls) == 9


def test_shards_then_merge_equal_one_run(tree, monkeypatch):
    cache.main(tree, shard=(0, 2))
    with pytest.raises(DataError, match=r"missing shard index\(es\) \[1\] of 2"):
        cache.merge(tree)
    cache.main(tree, shard=(1, 2))
    cache.merge(tree)
    merged = _rows(tree)
    assert not list(Path(tree.cache.dir).glob("*shard*"))
    calls = []
    real = feature_cache.process_job
    monkeypatch.setattr(cache, "process_job", lambda job, params, reader_args: calls.append(job) or real(job, params, reader_args))
    cache.main(tree)                        # reuses every shard's work
    assert calls == []
    single = _rows(tree)
    assert merged == single and len(single) == 9


def test_sequences_leaving_the_splits_are_removed(tree):
    cache.main(tree)
    split_file = Path(tree.split.dir) / "mvh_train.txt"
    ids = split_file.read_text().split()
    split_file.write_text("\n".join(ids[1:]) + "\n")
    cache.main(tree)
    assert not (Path(tree.cache.dir) / "mvh" / f"{ids[0]}.npy").exists()
    assert ("mvh", ids[0]) not in _rows(tree)


_KILLED_RUN = """
import os, signal, sys
from flowmimic.cache import jobs
from flowmimic.io import atomic_path
from flowmimic.params import params_from_dict
from flowmimic.stages import cache
import yaml

cache.FLUSH_EVERY_N, cache.FLUSH_EVERY_S = 2, 1e9      # flush by count only, deterministically
real, saved = jobs.save_npy, []

def save_then_die(path, array):
    if len(saved) == 5:                                  # SIGKILL in the middle of the 6th atomic write
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half a file")
            os.kill(os.getpid(), signal.SIGKILL)
    real(path, array)
    saved.append(path)

jobs.save_npy = save_then_die
cache.main(params_from_dict(yaml.safe_load(open(sys.argv[1])), "killed run"))
"""


def _dvc_files(folder: Path) -> dict[str, str]:
    """What DVC hashes of an output folder: every file not matched by the repo's .dvcignore, with its hash."""
    import hashlib

    import pathspec

    spec = pathspec.PathSpec.from_lines("gitignore", (REPO / ".dvcignore").read_text().splitlines())
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not spec.match_file(p.relative_to(folder).as_posix())}


def test_sigkill_mid_write_leaves_nothing_dvc_sees_and_keeps_finished_work(tree, tmp_path, monkeypatch):
    import subprocess
    import sys

    import yaml

    params_file = tmp_path / "killed.yaml"
    params_file.write_text(yaml.safe_dump(tree.model_dump(by_alias=True)))
    res = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(params_file)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == -9, res.stderr[-2000:]
    cache_dir = Path(tree.cache.dir)
    temps = list(cache_dir.rglob(".*.tmp"))
    assert len(temps) == 1                                # the write the kill interrupted
    assert not _dvc_files(cache_dir).keys() & {t.relative_to(cache_dir).as_posix() for t in temps}   # .dvcignore'd
    saved = feature_cache.read_manifests(cache_dir)
    assert len(saved) == 4                                # flushed after 2 and 4 sequences; the 5th was unsaved

    calls = []
    real = feature_cache.process_job
    monkeypatch.setattr(cache, "process_job", lambda job, params, reader_args: calls.append(job.key) or real(job, params, reader_args))
    cache.main(tree)                                      # the resume
    assert not list(cache_dir.rglob("*.tmp")) and len(calls) == 9 - 4 and not set(calls) & set(saved)
    resumed = _dvc_files(cache_dir)

    clean = tree.model_copy(update={"cache": tree.cache.model_copy(update={"dir": str(tmp_path / "clean")})})
    cache.main(clean)
    assert resumed == _dvc_files(tmp_path / "clean") and "index.json" in resumed


def _job_noting_threads(job, params, reader_args):
    """`process_job`, noting the torch thread count it ran with (module level: pool workers unpickle it)."""
    import torch

    row = feature_cache.process_job(job, params, reader_args)
    row["notes"] = [f"threads={torch.get_num_threads()}"]
    return row


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("threads", [1, 3])
def test_every_path_runs_the_configured_thread_count(tree, monkeypatch, workers, threads):
    import torch

    params = tree.model_copy(update={"cache": tree.cache.model_copy(update={"workers": workers,
                                                                             "threads_per_worker": threads})})
    monkeypatch.setattr(cache, "process_job", _job_noting_threads)
    before = torch.get_num_threads()
    cache.main(params)
    assert {n for r in _rows(params).values() for n in r["notes"]} == {f"threads={threads}"}
    assert torch.get_num_threads() == before              # the in-process path puts the caller's count back


def _tree_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_shards_and_merge_give_the_identical_index_and_files_as_one_run(tree):
    one = tree.model_copy(update={"cache": tree.cache.model_copy(update={"dir": f"{tree.cache.dir}-one"})})
    cache.main(one)
    cache.main(tree, shard=(0, 2))
    cache.main(tree, shard=(1, 2))
    cache.merge(tree)
    sharded, single = _tree_files(Path(tree.cache.dir)), _tree_files(Path(one.cache.dir))
    manifest = feature_cache.manifest_name(None)
    assert sharded.pop(manifest) and single.pop(manifest)    # machine state (mtimes), outside DVC's hash
    assert sharded == single and "index.json" in single and len(single) == 1 + 9


def test_pool_tasks_are_chunks_then_single_jobs_and_hold_every_job_once(monkeypatch):
    monkeypatch.setattr(feature_pool, "CHUNK", 3)
    todo = [feature_cache.Job("aist", f"s{i:02d}", "", 0, "") for i in range(23)]
    tasks = feature_pool.chunks(todo, workers=2)
    # the last 2 x CHUNK x workers = 12 jobs singly, the 11 before in tasks of 3 (the last of them shorter)
    assert [len(t) for t in tasks] == [3, 3, 3, 2] + [1] * 12
    assert [ij for t in tasks for ij in t] == list(enumerate(todo))
    assert [len(t) for t in feature_pool.chunks(todo[:5], workers=2)] == [1] * 5


def test_chunked_pool_tasks_give_the_one_worker_result(tree, monkeypatch):
    # tasks of 3 jobs (9 jobs are too few for CHUNK's tasks beside the single jobs at the end)
    pooled = tree.model_copy(update={"cache": tree.cache.model_copy(update={"workers": 2})})
    one = tree.model_copy(update={"cache": tree.cache.model_copy(update={"dir": f"{tree.cache.dir}-one",
                                                                          "workers": 1})})
    seen = []
    monkeypatch.setattr(feature_pool, "chunks", lambda todo, workers: seen.append(len(todo)) or
                        [list(enumerate(todo))[k:k + 3] for k in range(0, len(todo), 3)])
    cache.main(pooled)
    cache.main(one)
    pooled_files, single = _tree_files(Path(pooled.cache.dir)), _tree_files(Path(one.cache.dir))
    manifest = feature_cache.manifest_name(None)
    assert pooled_files.pop(manifest) and single.pop(manifest)    # machine state (mtimes)
    assert seen == [9] and pooled_files == single and len(single) == 1 + 9


@pytest.mark.parametrize("workers", [1, 2])
def test_fingerprints_taken_in_the_workers_are_the_stages_and_a_changed_file_is_redone(tree, monkeypatch, workers):
    params = tree.model_copy(update={"cache": tree.cache.model_copy(update={"workers": workers})})
    cache.main(params)
    saved = feature_cache.read_manifests(params.cache.dir)
    config_fp = feature_cache.config_fingerprint(params)
    jobs = feature_cache.list_jobs(params)
    assert {j.key: feature_cache.job_fingerprint(j, config_fp) for j in jobs} == \
        {k: e["fingerprint"] for k, e in saved.items()} and len(jobs) == 9
    assert all("fingerprint" not in r and "traceback" not in r for r in read_index(params.cache.dir))
    changed = next(j for j in jobs if j.domain == "aist")
    st = Path(changed.source).stat()
    os.utime(changed.source, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))      # touched: a new version
    calls = []
    real = feature_cache.process_job
    monkeypatch.setattr(cache, "process_job", lambda job, params, reader_args: calls.append(job.key) or real(job, params, reader_args))
    cache.main(params.model_copy(update={"cache": params.cache.model_copy(update={"workers": 1})}))   # calls seen here
    assert calls == [changed.key]


_WORKER_PLAN: dict = {}                      # what the patched job functions below do, set per test


def _job_killing_its_process(job, params, reader_args):
    """`process_job`, except that the process given `_WORKER_PLAN["kill"]` is killed (SIGKILL, as by the OOM killer)."""
    if job.key == _WORKER_PLAN["kill"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return feature_cache.process_job(job, params, reader_args)


def _hangs(signum, frame):
    raise TimeoutError("the cache stage still waits for a job whose worker died")


@contextlib.contextmanager
def _fails_if_it_hangs(seconds: int = 120):
    """A stage waiting for a dead worker's task would block forever (multiprocessing.Pool did): fail instead."""
    previous = signal.signal(signal.SIGALRM, _hangs)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_worker_that_dies_gives_its_job_an_error_row_and_the_others_are_cached(tree, monkeypatch, caplog):
    import multiprocessing as mp

    from flowmimic.errors import InternalError

    params = tree.model_copy(update={"cache": tree.cache.model_copy(update={"workers": 2})})
    one = tree.model_copy(update={"cache": tree.cache.model_copy(update={"dir": f"{tree.cache.dir}-one", "workers": 1})})
    cache.main(one)
    victim = feature_cache.list_jobs(params)[4]
    monkeypatch.setitem(_WORKER_PLAN, "kill", victim.key)
    monkeypatch.setattr(cache, "process_job", _job_killing_its_process)
    with _fails_if_it_hangs(), pytest.raises(InternalError, match=rf"died \({victim.key}\), the first: {victim.source}: "
                                                                r"the process reading it died \(killed by SIGKILL, often "
                                                                r"the out-of-memory killer\)"):
        cache.main(params)
    assert mp.active_children() == []
    assert f"{victim.source}: the process reading it died (killed by SIGKILL" in caplog.text
    rows, expected = _rows(params), _rows(one)
    died = rows.pop((victim.domain, victim.id))
    assert died["status"] == "error" and died["reason"] == "worker_died"
    expected.pop((victim.domain, victim.id))
    assert rows == expected and len(rows) == 8                        # every other job as one worker does it
    assert set(feature_cache.read_manifests(params.cache.dir)) == {f"{d}/{i}" for d, i in expected}

    calls = []
    real = feature_cache.process_job
    monkeypatch.setattr(cache, "process_job", lambda job, params, reader_args: calls.append(job.key) or real(job, params, reader_args))
    cache.main(params.model_copy(update={"cache": params.cache.model_copy(update={"workers": 1})}))   # the re-run
    assert calls == [victim.key] and _rows(params) == _rows(one)


def _slow_after_two(job, params, reader_args):
    """`process_job`; from the third job on, it first sleeps a minute (a long sequence)."""
    import time

    if job.key not in _WORKER_PLAN["fast"]:
        time.sleep(60)
    return feature_cache.process_job(job, params, reader_args)


def test_an_interrupted_pooled_run_stops_its_workers_at_once_and_keeps_finished_work(tree, monkeypatch):
    import multiprocessing as mp
    import time

    params = tree.model_copy(update={"cache": tree.cache.model_copy(update={"workers": 2})})
    jobs = feature_cache.list_jobs(params)
    monkeypatch.setitem(_WORKER_PLAN, "fast", {j.key for j in jobs[:2]})
    monkeypatch.setattr(cache, "process_job", _slow_after_two)
    real_tqdm = cache.tqdm

    def interrupted(rows, **kw):                 # Ctrl-C (or the stage guard's SIGINT) after two sequences
        for k, row in enumerate(real_tqdm(rows, **kw)):
            yield row
            if k == 1:
                raise KeyboardInterrupt

    monkeypatch.setattr(cache, "tqdm", interrupted)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cache.main(params)
    assert time.monotonic() - t0 < 30 and mp.active_children() == []      # not after the sleeping jobs
    assert set(feature_cache.read_manifests(params.cache.dir)) == {j.key for j in jobs[:2]}


def _init_and_die(*args):
    """A pool initialiser whose process is killed before it takes any job."""
    import signal as sig

    os.kill(os.getpid(), sig.SIGKILL)


def test_a_worker_that_dies_outside_any_job_fails_the_stage_with_one_line_and_no_hang(tree, monkeypatch):
    import multiprocessing as mp

    from flowmimic.errors import InternalError

    params = tree.model_copy(update={"cache": tree.cache.model_copy(update={"workers": 2})})
    monkeypatch.setattr(feature_pool, "init_worker", _init_and_die)
    with _fails_if_it_hangs(), pytest.raises(InternalError, match=r"^a cache worker process died between jobs .*"
                                                                r"run the stage again$"):
        cache.main(params)
    assert mp.active_children() == [] and feature_cache.read_manifests(params.cache.dir) == {}
