"""How the cache's jobs run: in the stage's own process, or in worker processes that may die.

`cache.workers` > 1 runs the jobs in a `concurrent.futures.ProcessPoolExecutor`, in tasks of CHUNK
jobs and singly at the end (so that no worker idles while another finishes a chunk). A worker can
die without raising: the out-of-memory killer, a crash in native code. `multiprocessing.Pool` then
loses that task and its iterator waits forever; an executor breaks instead. Each worker notes in
shared memory which job it is on, so the jobs that were running when the pool broke are known: each
is run again alone, in a process of its own. One that dies again gets an error row (reason
"worker_died", naming the file and how its process ended); the others get their rows, and the
remaining jobs go on in a new pool. (The executor also spends less of the stage's own CPU time per
task than `multiprocessing.Pool`, whose worker-handler thread wakes on every result.)
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch

from flowmimic.cache.heap import keep_freed_memory
from flowmimic.cache.jobs import Job, error_row
from flowmimic.errors import InternalError

# Jobs per task: each task is a round trip through the stage's process, which shares the cores with
# the workers; one job per task left them idle ~13 % of a demo run, 4 about 1 %.
CHUNK = 4
IDLE = -1                                        # a worker's slot between jobs

Work = Callable[[Job], dict]


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with `threads` torch intra-op threads (the stage's own process when it has one worker)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- in a worker
_work: Work | None = None     # the job function, `process_job` with the stage's params bound (sent once per worker)
_slots: Any = None            # shared array: the index of the job each worker is on, IDLE between tasks
_slot = IDLE                  # this worker's entry in `_slots`


def init_worker(threads: int, work: Work, slots: Any, counter: Any) -> None:
    """Executor initialiser: the process set-up, the job function, and a slot of its own in `slots`."""
    global _work, _slots, _slot
    _setup_process(threads)
    _work, _slots = work, slots
    with counter.get_lock():
        _slot = counter.value
        counter.value += 1


def run_chunk(chunk: list[tuple[int, Job]]) -> list[tuple[int, dict]]:
    """A task: each (index, job)'s row, noting the index in the worker's slot while the job runs."""
    rows = []
    for i, job in chunk:
        _slots[_slot] = i
        rows.append((i, _work(job)))
    _slots[_slot] = IDLE
    return rows


def _run_alone(conn: Any, threads: int, work: Work, job: Job) -> None:
    """Body of a one-job process: the row goes back through `conn`."""
    _setup_process(threads)
    conn.send(work(job))


def _setup_process(threads: int) -> None:
    """Every worker process: the heap setting (spawned ones lack it; forked ones have it from the stage
    already) and `cache.threads_per_worker` torch threads (one process per core; more would oversubscribe)."""
    keep_freed_memory()
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- in the stage's process


def chunks(todo: list[Job], workers: int) -> list[list[tuple[int, Job]]]:
    """(index, job) tasks: CHUNK jobs each, then single jobs for the last few per worker (guided
    scheduling). Fewer jobs than that: single jobs throughout."""
    indexed = list(enumerate(todo))
    split = max(0, len(todo) - 2 * CHUNK * workers)
    return [indexed[k:min(k + CHUNK, split)] for k in range(0, split, CHUNK)] + [[ij] for ij in indexed[split:]]


def pooled_rows(todo: list[Job], workers: int, threads: int, work: Work, context: str) -> Iterator[dict]:
    """Every job's row from `workers` processes of `context` ("fork" or "spawn"), as they finish; the
    jobs running when a worker dies are re-run alone (`run_alone`), the rest in a new pool."""
    ctx = mp.get_context(context)
    while todo:
        slots = ctx.RawArray("q", [IDLE] * workers)
        done: set[int] = set()
        with _executor(ctx, workers, (threads, work, slots, ctx.Value("i", 0))) as pool:
            try:
                for task in as_completed([pool.submit(run_chunk, c) for c in chunks(todo, workers)]):
                    for i, row in task.result():
                        done.add(i)
                        yield row
                return
            except BrokenProcessPool:
                running = sorted({i for i in slots if i != IDLE} - done)
        if not running:
            raise InternalError("a cache worker process died between jobs (the out-of-memory killer?); "
                                "the finished sequences are saved: run the stage again")
        for i in running:
            yield run_alone(ctx, todo[i], threads, work)
        todo = [job for i, job in enumerate(todo) if i not in done and i not in running]


@contextlib.contextmanager
def _executor(ctx: Any, workers: int, initargs: tuple) -> Iterator[ProcessPoolExecutor]:
    """An executor whose workers are terminated at once when the block raises (a crash, Ctrl-C, a
    consumer that stops): they must not outlive the stage nor finish their tasks first."""
    before = set(mp.active_children())
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=initargs)
    try:
        yield pool
    except BaseException:
        for p in set(mp.active_children()) - before:        # its workers, stopped mid-task
            p.terminate()
        # The executor's own thread sees them gone and reaps them (joining them here as well races
        # with it: a process reaped by the other thread stays listed as a live child).
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def run_alone(ctx: Any, job: Job, threads: int, work: Work) -> dict:
    """`work(job)` in a process of its own: its row, or an error row when that process dies too."""
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run_alone, args=(send, threads, work, job), name=f"cache-alone-{job.key}")
    proc.start()
    send.close()                                   # ours: EOF once the child's copy is gone
    try:
        row = receive.recv()
    except EOFError:
        row = None
    finally:
        receive.close()
        proc.join()
    if row is not None:
        return row
    return error_row(job, "worker_died", f"{job.source}: the process reading it died ({_how_it_ended(proc.exitcode)}); "
                     "re-run the stage to retry it")


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"killed by {name}" + (", often the out-of-memory killer" if name == "SIGKILL" else "")
    return f"exit code {exitcode}"
