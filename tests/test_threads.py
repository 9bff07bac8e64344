"""The package's one thread policy (`sunpy_nn.nn.device`): its rule, the user's choice, and who uses it. No timing."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from sunpy_nn import batch, demo
from sunpy_nn.nn import configure_threads, device, run_tiled
from sunpy_nn.nn.device import apply_thread_policy, choose_threads, threads_per_task, user_threads

from .helpers import random_enhance_net

_CHOOSE = device.choose_threads  # the real rule, before the fixture replaces it


# ---------------------------------------------------------------------------------------------------------- rule
@pytest.mark.parametrize(
    ("cpus", "busy", "expected"),
    [(2, 0.0, 2), (2, 0.3, 2), (2, 0.5, 1), (2, 1.0, 1), (2, 7.0, 1), (8, 1.0, 7), (8, 2.6, 5), (1, 0.0, 1)],
)
def test_rule(cpus, busy, expected):
    # a CPU that others use more than 0.3 of is taken; at least one thread, at most the usable CPUs
    assert choose_threads(cpus=cpus, busy=busy) == expected


def _fake_topology(root, cores):
    for cpu, core in enumerate(cores):
        topo = root / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text("0\n")
        (topo / "core_id").write_text(f"{core}\n")


def test_usable_cpus_from_affinity_cores_and_quota(monkeypatch, tmp_path):
    _fake_topology(tmp_path / "cpu", [0, 0, 1, 1, 2, 2, 3, 3])  # 4 cores with 2 hyper-threads each
    monkeypatch.setattr(device, "_SYS_CPU", tmp_path / "cpu")
    monkeypatch.setattr(device, "_affinity", lambda: {0, 1, 2, 3, 4, 5})  # taskset: 3 of the cores
    monkeypatch.setattr(device, "_cgroup_quota", lambda: None)
    assert device._usable_cpus() == 3
    monkeypatch.setattr(device, "_cgroup_quota", lambda: 1.5)  # a container limited to 1.5 CPUs
    assert device._usable_cpus() == 2
    monkeypatch.setattr(device, "_cgroup_quota", lambda: 0.2)
    assert device._usable_cpus() == 1


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),  # cgroup v2
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4.0),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_quota(monkeypatch, tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(device, "_CGROUP", tmp_path)
    assert device._cgroup_quota() == expected


def test_busy_elsewhere_leaves_out_this_process(monkeypatch):
    monkeypatch.setattr(device, "_PROBE_S", 0)
    monkeypatch.setattr(device, "_affinity", lambda: {0, 1})
    # 2 CPUs, 40 ticks in the window (20 per CPU): 30 busy ticks, of which this process used 10 -> 1 CPU elsewhere
    ticks = iter([(1000, 5000), (1030, 5040)])
    own = iter([200, 210])
    monkeypatch.setattr(device, "_cpu_ticks", lambda cpus: next(ticks))
    monkeypatch.setattr(device, "_own_ticks", lambda: next(own))
    assert device._busy_elsewhere() == pytest.approx(1.0)
    ticks, own = iter([(1000, 5000), (1030, 5040)]), iter([200, 210])
    assert choose_threads(cpus=2) == 1  # the measured load feeds the rule


def test_busy_elsewhere_falls_back_to_the_load_average(monkeypatch):
    monkeypatch.setattr(device, "_cpu_ticks", lambda cpus: None)  # no /proc/stat (macOS)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 0.2, 0.1))
    assert device._busy_elsewhere() == 1.5
    assert choose_threads(cpus=2) == 1


def test_proc_stat_is_parsed(monkeypatch):
    # on Linux, the real files: busy ticks never exceed the total, and this process's own ticks are counted
    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc")
    busy, total = device._cpu_ticks(device._affinity())
    assert 0 <= busy <= total
    assert device._own_ticks() >= 0
    assert 0.0 <= device._busy_elsewhere() <= os.cpu_count() + 0.5


# ------------------------------------------------------------------------------------------- the user's choice
def test_policy_sets_its_choice_once_per_process(policy, monkeypatch, caplog):
    with caplog.at_level(logging.DEBUG, logger="sunpy_nn.nn.device"):
        assert user_threads() is None
        assert apply_thread_policy() == 3 == torch.get_num_threads()
        assert apply_thread_policy() == 3
    assert len(policy) == 1  # decided once per process
    monkeypatch.setattr(os, "getpid", lambda: -1)  # a forked worker decides again
    assert apply_thread_policy() == 3 and len(policy) == 2


def test_an_explicit_choice_wins(policy):
    assert configure_threads(2) == 2
    assert apply_thread_policy() == 2 == torch.get_num_threads()
    assert user_threads() == (2, "configure_threads")
    assert policy == []  # the rule was not even consulted
    assert threads_per_task(2) == 1  # the batch runner shares out the user's count
    assert configure_threads() == 3  # no argument: back to the policy
    assert user_threads() is None


def test_torch_set_num_threads_wins(policy):
    apply_thread_policy()
    torch.set_num_threads(1)  # the user, after the package set 3
    assert user_threads() == (1, "torch.set_num_threads")
    assert apply_thread_policy() == 1 == torch.get_num_threads()


def test_a_count_set_before_the_package_ran_wins(policy, monkeypatch):
    device._STATE.applied = None
    monkeypatch.setattr(device, "_torch_default_threads", lambda: 4)  # torch's own default on this "machine"
    torch.set_num_threads(2)
    assert user_threads() == (2, "torch.set_num_threads")
    assert apply_thread_policy() == 2
    torch.set_num_threads(4)  # torch's default: nobody chose
    assert user_threads() is None
    assert apply_thread_policy() == 3


@pytest.mark.parametrize("var", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_environment_variable_wins(policy, monkeypatch, var):
    torch.set_num_threads(2)
    device._STATE.applied = 1  # whatever the package set before
    monkeypatch.setenv(var, "2")
    assert user_threads() == (2, var)
    assert apply_thread_policy() == 2 == torch.get_num_threads()
    assert configure_threads() == 2 == torch.get_num_threads()  # asking the policy does not override it either
    assert policy == []


def test_configure_threads_without_a_count_fits_the_affinity_mask(policy, monkeypatch):
    # moved from test_performance (configure_threads used to set the affinity count): the real, measured choice
    monkeypatch.setattr(device, "choose_threads", _CHOOSE)
    n = configure_threads()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= n <= cpus and n == torch.get_num_threads()
    assert user_threads() is None


def test_configure_threads_checks_its_argument(policy):
    assert configure_threads(1) == 1 == torch.get_num_threads()
    with pytest.raises(ValueError, match="positive"):
        configure_threads(-2)


# ------------------------------------------------------------------------------------------------- its users
def test_run_tiled_applies_the_policy(policy):
    torch.set_num_threads(1)
    device._STATE.applied = 1
    net = random_enhance_net(depth=1, n_filters=4)
    run_tiled(net, np.zeros((16, 16), np.float32), scale=2, halo=net.receptive_radius, progress=False)
    assert torch.get_num_threads() == 3 and len(policy) == 1


def test_demo_and_batch_runner_use_the_same_policy(policy, monkeypatch, tmp_path):
    assert not hasattr(demo, "_torch_threads")  # the demo's own policy is gone
    monkeypatch.setattr(demo, "_run", lambda *args: {"threads": torch.get_num_threads()})
    assert demo.run_demo(tmp_path, quick=True, progress=False) == {"threads": 3}
    assert batch._threads_per_task("threads", None, 1) == {"local": 3}
    assert batch._threads_per_task("processes", None, 2) == {"local": 1}
    assert len(policy) == 1  # one decision, shared by the demo and the batch runner


class _FakeClient:
    def scheduler_info(self):
        workers = {
            "tcp://10.0.0.1:4001": {"nthreads": 1},
            "tcp://10.0.0.1:4002": {"nthreads": 2},
            "tls://10.0.0.2:4001": {"nthreads": 1},
        }
        return {"workers": workers}


def test_dask_thread_split(policy, monkeypatch):
    monkeypatch.setattr(device, "choose_threads", lambda: 8)
    assert batch._threads_per_task("serial", None, None) == {}
    assert batch._threads_per_task("threads", None, 4) == {"local": 2}
    assert batch._threads_per_task("threads", None, 16) == {"local": 1}  # at least one
    monkeypatch.setattr(device, "_available_cpus", lambda: 2)  # dask's default: a worker per logical CPU
    assert batch._threads_per_task("processes", None, None) == {"local": 4}
    # a cluster: the threads of the workers on one host share its budget; this host's is measured here
    monkeypatch.setattr(batch, "_is_this_host", lambda host: host == "10.0.0.1")
    split = batch._threads_per_task("client", _FakeClient(), None)
    assert split == {"10.0.0.1": 2, "10.0.0.2": ("tasks", 1)}
    # another host's workers share out that host's own usable CPUs
    monkeypatch.setattr(device, "_usable_cpus", lambda: 6)
    job = batch._Job(_report_threads, {"10.0.0.2": ("tasks", 3)}, client_pid=-1)
    monkeypatch.setattr(batch, "_worker_host", lambda: "10.0.0.2")
    assert batch._run_one(0, 0, job)[2] == (2, None)


def test_this_host_is_recognised():
    assert batch._is_this_host("127.0.0.1") and batch._is_this_host("localhost")
    assert not batch._is_this_host("192.0.2.1")  # TEST-NET-1, never assigned


def _report_threads(item, index):
    return torch.get_num_threads(), device.user_threads()


def test_threads_scheduler_shares_this_process_for_the_batch(policy):
    pytest.importorskip("dask")
    apply_thread_policy()
    out = batch.run_batch([0, 1], _report_threads, scheduler="threads", num_workers=3, progress=False)
    assert out == [(1, None), (1, None)]  # 3 // 3 threads per task, and the policy keeps the split
    assert torch.get_num_threads() == 3 and device._STATE.scoped is None  # then all as it was
    assert user_threads() is None


def test_a_worker_process_takes_its_share(policy):
    job = batch._Job(_report_threads, {"local": 2, "10.0.0.9": 1}, client_pid=-1)  # as in a worker process
    configure_threads(1)  # inherited from the parent: the batch shared it out
    _, status, value, _ = batch._run_one(0, 0, job)
    assert status == "ok" and value == (2, None)
    assert apply_thread_policy() == 2  # the policy's count of this worker from now on
    batch._set_threads({"local": 1}, os.getpid())  # in the caller's process: nothing
    assert torch.get_num_threads() == 2


def _in_a_pool_thread():
    with ThreadPoolExecutor(1) as pool:  # a thread other than the main thread, as dask's threaded scheduler runs
        return pool.submit(lambda: (apply_thread_policy(), torch.get_num_threads())).result()


def test_a_pool_thread_runs_torch_on_one_thread(policy, monkeypatch, caplog):
    # each thread that runs torch keeps its own OpenMP team: the process's count in every dask thread
    # oversubscribed the CPUs and slowed the main thread afterwards (benchmarks/thread_pools.py)
    assert apply_thread_policy() == 3
    with caplog.at_level(logging.DEBUG, logger="sunpy_nn.nn.device"):
        assert _in_a_pool_thread() == (1, 1)
    assert "1 torch thread in thread" in caplog.text  # a GUI or server thread's user can see why
    assert torch.get_num_threads() == 3 and user_threads() is None  # the main thread's count is its own
    assert apply_thread_policy() == 3 and len(policy) == 1
    configure_threads(2)  # the user's count, in every thread
    assert _in_a_pool_thread() == (2, 2)
    configure_threads()
    torch.set_num_threads(2)  # a new thread starts with the count set last
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the environment's count, where it is set
    assert _in_a_pool_thread() == (2, 2)


def test_a_main_thread_that_ran_no_network_yet_is_not_taken_for_the_users_choice(policy):
    device._STATE.applied = None  # nothing ran in the main thread yet
    assert _in_a_pool_thread() == (1, 1)
    torch.set_num_threads(1)  # what the main thread would start with now: the count set last, by rule 4
    assert user_threads() is None
    assert apply_thread_policy() == 3 == torch.get_num_threads()


def test_a_batch_worker_process_keeps_its_share_in_its_threads(policy):
    job = batch._Job(_report_threads, {"local": 2}, client_pid=-1)  # a dask.distributed worker process
    assert batch._run_one(0, 0, job)[2] == (2, None)
    assert _in_a_pool_thread() == (2, 2)  # its task threads take the share, not one
    device._STATE.worker = None
    with device._threads_during(2):  # run_batch on this process's dask threads: the batch's split, not one
        assert _in_a_pool_thread() == (2, 2)


def test_training_applies_the_policy(policy):
    from sunpy_nn.training import train_noise2noise

    from .test_noise2noise import pairs, unet

    torch.set_num_threads(1)
    device._STATE.applied = 1
    train_noise2noise(unet(), pairs(0), epochs=1, patches_per_epoch=10, progress=False, device="cpu")
    assert torch.get_num_threads() == 3 and len(policy) == 1
