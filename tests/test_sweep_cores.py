"""bptt sweep --jobs: workers that use the cores. No timing here (the measured speed is in
the README's sweep paragraph); what makes two jobs fast is checked as what it is: one compute
thread in each worker, the command's workers forked from its own process (torch imported
once), and the same summary whatever the number of jobs, pinned options included."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch_reference.sweep as sweep  # noqa: E402

#: Long enough for a loaded machine to start two workers; a worker that waits for ever fails here.
WAIT_S = 120


def _threads_here(_=None) -> dict:
    """In a worker: the size of every compute pool it would use, after a garbage collection
    (a limit held by a dropped context manager would be undone by it)."""
    import torch
    from threadpoolctl import threadpool_info

    gc.collect()
    sizes = {"torch intra-op": torch.get_num_threads()}
    sizes.update({f"{pool['internal_api']} {pool['filepath']}": pool["num_threads"] for pool in threadpool_info()})
    return sizes


def says_its_parent(params, x, y, h0=None, **options):
    """A candidate that fails with the id of the process its worker was started from."""
    raise RuntimeError(f"worker's parent {os.getppid()}")


@pytest.mark.parametrize("start_method", [None, "fork"] if sys.platform.startswith("linux") else [None])
def test_each_worker_runs_one_compute_thread(start_method):
    """Two workers on two cores, each with its BLAS, OpenMP and torch pools at full size,
    ran 600 problems five times slower than one process. On a one-core machine every pool
    has one thread anyway, and this test cannot tell."""
    pytest.importorskip("threadpoolctl")
    pool = sweep._start_workers(2, None, start_method)
    try:
        per_worker = pool.map_async(_threads_here, range(4), chunksize=1).get(timeout=WAIT_S)
    finally:
        pool.terminate()
    for sizes in per_worker:
        assert sizes and all(threads == 1 for threads in sizes.values()), sizes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the command forks its workers on Linux alone")
def test_the_command_forks_its_workers_from_its_own_process_so_torch_is_imported_once():
    """Workers started from a forkserver imported torch a second time: 1.5 s before the first problem."""
    command = [sys.executable, "-m", "torch_reference.commands", "sweep", "-n", "4", "--jobs", "2", "--no-progress",
               "--manual", "tests.test_sweep_cores:says_its_parent"]
    proc = subprocess.Popen(command, cwd=Path(__file__).parent.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 1, err
    parents = re.findall(r"# RuntimeError: worker's parent (\d+)", out)
    assert len(parents) == 4 and set(parents) == {str(proc.pid)}, out


def test_run_sweep_refuses_an_unknown_start_method():
    with pytest.raises(ValueError, match=r"^start_method: expected one of .*fork.* or None, got 'thread'"):
        sweep.run_sweep(2, jobs=2, start_method="thread", progress=False)


@pytest.mark.parametrize("networks, pins", [
    (False, {"nonlinearity": ["tanh"], "layout": ["time_major", "batch_first"]}),
    (True, {"cell": ["gru", "rnn_relu"], "target": ["last"]}),
])
def test_two_workers_give_the_summary_of_one_process_with_pins(networks, pins):
    manual = "tests.wrong_bptt:reverse_direction_W_transposed" if networks else "tests.wrong_bptt:transposed_W"
    one = sweep.run_sweep(20, seed=8, jobs=1, manual=manual, progress=False, networks=networks, pins=pins)
    two = sweep.run_sweep(20, seed=8, jobs=2, manual=manual, progress=False, networks=networks, pins=pins)
    assert one.table() == two.table()
    assert one.count == two.count == 20 and one.pinned == two.pinned
