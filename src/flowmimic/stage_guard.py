"""Stops a stage whose `dvc repro` is gone, so no stage outlives the run that started it.

Ctrl-C, or killing `dvc repro`'s process group, reaches every stage process. But `kill <dvc pid>`
(a scheduler's timeout, a closed tmux pane, `pkill -f "dvc repro"`) ends DVC alone: it does not
forward the signal, so the stage's command -- reparented to init -- kept training for minutes,
competing for the CPU with the next run and writing `models/last.pt` behind its back.

Under DVC (which sets `DVC_STAGE` in every stage command's environment) `watch_dvc` starts a daemon
thread that polls the nearest ancestor that is not a shell (`dvc` itself: the stage command runs
through `sh -c`, which may or may not exec). When that process is gone it interrupts the main
thread with a real SIGINT sent to this process (a signal, unlike `_thread.interrupt_main`, also
breaks a blocking wait such as the DDP launcher's on torchrun; it becomes a `KeyboardInterrupt`, so
`finally` blocks run and the cache's worker pool is terminated, or the launcher's handler forwards
it to torchrun, which stops its workers) and, if the stage has not exited after `GRACE_S`, ends the
process.
Outside DVC it does nothing: `nohup flowmimic train &` from a shell that then exits keeps training.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

DVC_STAGE_ENV = "DVC_STAGE"          # set by DVC for every stage command (dvc/stage/run.py)
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "busybox"})
POLL_S = 0.5
GRACE_S = 20.0


def _stat(pid: int) -> tuple[str, str, int, str] | None:
    """(name, state, ppid, start time) of a live process, None when it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1:raw.rindex(")")]
    rest = raw.rpartition(")")[2].split()              # fields 3.. (the name may hold spaces)
    state, ppid, start = rest[0], int(rest[1]), rest[19]
    return None if state in ("Z", "X") else (name, state, ppid, start)


def dvc_ancestor() -> tuple[int, str] | None:
    """(pid, start time) of the nearest ancestor that is not a shell, or None if there is none."""
    pid = os.getppid()
    for _ in range(8):
        st = _stat(pid)
        if st is None or pid <= 1:
            return None
        if st[0] not in SHELLS:
            return pid, st[3]
        pid = st[2]
    return None


def watch_dvc(poll_s: float = POLL_S, grace_s: float = GRACE_S) -> int | None:
    """Under DVC, stop this process when `dvc` dies; returns the watched pid (None: not watching)."""
    if DVC_STAGE_ENV not in os.environ or not Path("/proc").is_dir():
        return None
    found = dvc_ancestor()
    if found is None:
        return None
    pid, start = found

    def watch() -> None:
        while True:
            st = _stat(pid)
            if st is None or st[3] != start:                  # gone (or its pid reused)
                break
            time.sleep(poll_s)
        log.error("the process that ran this stage (pid %d, dvc) is gone: stopping stage %s",
                  pid, os.environ.get(DVC_STAGE_ENV))
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(grace_s)
        os._exit(1)                                           # the main thread did not stop in time

    threading.Thread(target=watch, name="watch-dvc", daemon=True).start()
    return pid
