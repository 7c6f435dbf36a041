"""No orphan trainer: killing the train stage's command (as a killed `dvc repro` does) kills training.

The stage command is taken from dvc.yaml and run through a shell in its own process group, as DVC
runs it. Every process it starts inherits a marker in its environment; after the kill, /proc must
hold no process with that marker. (Before the fix, dvc.yaml ran `torchrun`, whose workers live in a
new session: they kept training and writing `last.pt` after `dvc repro` was killed.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from fake_cache import make_fake_cache, write_params

REPO = Path(__file__).resolve().parents[1]
MARK = "FLOWMIMIC_TEST_TRAINER_MARK"


def marked_pids(marker: str) -> list[int]:
    """Live (non-zombie) processes whose environment holds `MARK=marker`."""
    needle = f"{MARK}={marker}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:                                  # gone, or another user's process
            continue
        if state != "Z":
            pids.append(int(proc.name))
    return pids


def wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


# Stands in for `dvc repro`: runs the stage command through a shell with DVC_STAGE set, as DVC does.
FAKE_DVC = ("import os, subprocess, sys; "
            "sys.exit(subprocess.call(['sh', '-c', sys.argv[1]], env={**os.environ, 'DVC_STAGE': 'train'}))")


def start_stage(tmp_path: Path, nproc: int, under_dvc: bool = False) -> tuple[subprocess.Popen, str, Path]:
    params = make_fake_cache(tmp_path / "run", train=dict(epochs=10**6, val_every_epochs=10**6,
                                                          nproc_per_node=nproc, batch_size=2))
    write_params(params, tmp_path / "params.yaml")
    (tmp_path / "src").symlink_to(REPO / "src")      # the cmd's PYTHONPATH=src: this checkout's code, not the venv's
    cmd = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]["cmd"]
    cmd = cmd.replace("${train.nproc_per_node}", str(nproc))      # the only ${} a train cmd may use
    marker = uuid.uuid4().hex
    env = {**os.environ, MARK: marker, "OMP_NUM_THREADS": "1", "FLOWMIMIC_LOG": "INFO",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = tmp_path / "stage.log"
    with open(log, "wb") as out:
        argv = [sys.executable, "-c", FAKE_DVC, cmd] if under_dvc else ["sh", "-c", cmd]
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc, marker, log


def _check_no_survivor(tmp_path: Path, nproc: int, kill: str) -> None:
    proc, marker, log = start_stage(tmp_path, nproc, under_dvc=kill == "dvc")
    try:
        wait_for(lambda: "steps per epoch" in log.read_text() or proc.poll() is not None, 180, "training to start")
        assert proc.poll() is None, log.read_text()[-3000:]
        assert f"on {nproc} rank(s)" in log.read_text()
        assert len(marked_pids(marker)) >= 1 + nproc * (nproc > 1)
        if kill == "group":                          # `dvc repro` killed with its process group
            os.killpg(proc.pid, signal.SIGKILL)
        elif kill == "dvc":                          # `kill <dvc pid>`: DVC alone, nothing forwarded
            os.kill(proc.pid, signal.SIGKILL)
        else:                   # only the launcher (`flowmimic train`, or the shell that exec'ed it)
            children = [p for p in marked_pids(marker) if _parent(p) == proc.pid]
            for pid in children + [proc.pid]:
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        survivors: list[int] = []

        def gone() -> bool:
            survivors[:] = marked_pids(marker)
            return not survivors
        wait_for(gone, 20, "every trainer process to exit")
    finally:
        for pid in marked_pids(marker):              # never leave a trainer behind, even on failure
            os.kill(pid, signal.SIGKILL)


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except OSError:
        return None


def test_one_process_training_dies_with_the_stage_process_group(tmp_path):
    _check_no_survivor(tmp_path, nproc=1, kill="group")


def test_one_process_training_stops_when_dvc_alone_is_killed(tmp_path):
    # before stage_guard: the trainer, reparented to init, kept training after `kill <dvc pid>`
    _check_no_survivor(tmp_path, nproc=1, kill="dvc")


@pytest.mark.slow
@pytest.mark.parametrize("kill", ["group", "launcher", "dvc"])
def test_ddp_workers_die_with_the_launcher(tmp_path, kill):
    _check_no_survivor(tmp_path, nproc=2, kill=kill)


def test_die_with_parent_exits_when_the_expected_parent_is_gone():
    # a child asked to die with a parent that is not its parent exits at once (the parent died early)
    code = ("import os; from flowmimic.training.launch import die_with_parent; "
            "die_with_parent(os.getppid() + 10**7); print('survived')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "survived" not in res.stdout
    ok = subprocess.run([sys.executable, "-c", code.replace(" + 10**7", "")], capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == "survived"


def test_launcher_imports_no_torch():
    # the launcher forks torchrun with a preexec_fn: it must stay a small single-threaded process
    code = "import sys, flowmimic.training.launch; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "False", res.stderr
