"""
Where and how the networks run: the device, the precisions, native bfloat16 and torch's CPU threads.

One concept, one room: `resolve_device` (which device), `PRECISIONS` and `bf16_is_native` (which arithmetic), and
the package's one thread policy (`apply_thread_policy`, `choose_threads`, `threads_per_task`, `configure_threads`)
are needed by the tiled runner (`sunpy_nn.nn.runner`), the optimised networks (`sunpy_nn.nn.optimize`), the batch
runner (`sunpy_nn.batch`) and the demo alike. They live here, below all of them, so that none imports another for
them. Nothing here imports sunpy or astropy.

**The thread policy.** torch's intra-op threads wait for each other actively: on CPUs that other processes keep
busy, a thread that loses its core stalls all the others: on a 2-core machine at load 4, two threads ran the
Noise2Noise training step 4.7x slower than one (the performance guide's measurement). So, unless the user has
chosen, the package picks the count itself, once per process, when a network first runs:

1. **The user's choice wins, always.** A count set with ``configure_threads(n)``, with ``torch.set_num_threads`` (a
   count other than torch's own default, or other than the one this package set last), or through the
   ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` environment variables is never changed (``torch.set_num_threads``
   in the thread that set it: see rule 4 for the others).
2. **Else the usable CPUs**: the physical cores in this process's affinity mask (``os.sched_getaffinity``; torch's
   own default counts the cores of the whole machine), capped by the cgroup CPU quota of a container
   (``cpu.max`` or ``cpu.cfs_quota_us``, rounded to the nearest whole CPU).
3. **minus the CPUs other processes keep busy**, measured over 0.1 s on the CPUs of the affinity mask from
   ``/proc/stat``, less this process's own CPU time (so that the package's own threads, or a training loop of the
   caller, do not count): ``floor(cpus - busy + 0.3)`` threads, at least one (others' use below 0.3 of a CPU leaves
   it free). Where ``/proc/stat`` is missing (macOS), the 1-minute load average (``os.getloadavg``) stands for the
   others' load.
4. **One thread in other threads.** A network that runs in a thread other than the main thread (a block of a lazy
   prediction on dask's threaded scheduler, a thread pool of your own) runs on one torch thread, unless the user
   chose a count (``configure_threads(n)`` or the environment variables, which hold in every thread) or a batch
   split the count (`~sunpy_nn.batch.run_batch`). Each such thread keeps an OpenMP team of its own for its life,
   and once the teams outnumber the CPUs, GNU OpenMP sleeps at barriers instead of spinning, in every team: the
   main thread's training stayed several times slower for the rest of the process (`_pool_thread_count`). So that
   a lazy image of fewer chunks than CPUs does not leave CPUs idle, Enhance and denoising without MC dropout cut it
   into one block per CPU (`_pool_blocks`, `~sunpy_nn.nn.lazy.lazy_tiled`), down to blocks of 256 px and 8 x the
   network's overlap, while half the available memory holds them; ``configure_threads(n)`` gives every thread ``n``.

The choice is cached per process (a forked worker decides again) and logged at debug level on the
``sunpy_nn.nn.device`` logger. ``configure_threads()`` without an argument decides again now (the machine got busy
or idle), and hands a count set earlier by ``configure_threads(n)`` or ``torch.set_num_threads`` back to the policy.
The batch runner (`sunpy_nn.batch.run_batch`) splits the same count (or the user's) between the tasks that run at
once on a host: `threads_per_task`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

__all__ = [
    "PRECISIONS",
    "THREAD_ENV_VARS",
    "apply_thread_policy",
    "bf16_is_native",
    "choose_threads",
    "configure_threads",
    "resolve_device",
    "threads_per_task",
    "user_threads",
]

log = logging.getLogger(__name__)

#: Accepted values of ``precision``.
PRECISIONS = ("float32", "bfloat16", "auto")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """
    Turn a user's ``device`` argument into a `torch.device`.

    Parameters
    ----------
    device : str or `torch.device`, optional
        E.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``. `None` picks the best available device: CUDA when a
        GPU is present, else Apple's MPS, else the CPU.

    Returns
    -------
    `torch.device`
        The device to run on.

    Raises
    ------
    ValueError
        ``device`` is not a device torch knows (e.g. ``"gpu"``): the message lists the usual names.
    RuntimeError
        A CUDA device is asked for on a machine where torch sees no usable GPU (the message says so).

    Examples
    --------
    >>> from sunpy_nn.nn import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:  # torch's own message lists a dozen backends: name the usual ones
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a device torch knows: use 'cpu', 'cuda', 'mps' or None") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but torch sees no CUDA GPU (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda}). Use device='cpu' or device=None to pick what is available."
        )
    return dev


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    return frozenset()


#: oneDNN's instruction-set caps (``ONEDNN_MAX_CPU_ISA``) below the first with native bfloat16 (AVX512_CORE_BF16).
_ISAS_WITHOUT_BF16 = frozenset(
    ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_MIC")
)


def bf16_is_native(device: str | torch.device = "cpu") -> bool:
    """
    Whether ``device`` computes bfloat16 convolutions natively (faster than float32).

    On the CPU: AVX512-BF16 or AMX-BF16, from ``torch.backends.cpu.get_cpu_capability()`` or ``/proc/cpuinfo``
    (oneDNN emulates bfloat16 elsewhere, which is slower than float32), unless ``ONEDNN_MAX_CPU_ISA`` (or
    ``DNNL_MAX_CPU_ISA``) caps oneDNN's kernels to an instruction set without it (e.g. ``AVX2``). On CUDA:
    compute capability 8.0 or newer.

    Parameters
    ----------
    device : str or `torch.device`
        The device asked about (e.g. ``"cpu"``, ``"cuda"``).

    Returns
    -------
    bool
        `True` if it runs bfloat16 natively; `False` otherwise, on any other device type (e.g. MPS), and for
        ``"cuda"`` on a machine without a GPU.

    Examples
    --------
    >>> from sunpy_nn.nn import bf16_is_native
    >>> bf16_is_native("cpu") in (True, False)  # depends on the CPU
    True
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))
    if dev.type != "cpu":
        return False
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", ""))
    if cap.strip().upper() in _ISAS_WITHOUT_BF16:  # the CPU may have it, but oneDNN is told not to use it
        return False
    capability = ""
    with contextlib.suppress(AttributeError, RuntimeError):
        capability = torch.backends.cpu.get_cpu_capability()
    if "AMX" in capability.upper() or "BF16" in capability.upper():
        return True
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


# ------------------------------------------------------------------------------------------------------- threads
#: Environment variables through which a user sets torch's thread count before it starts.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: Others' use of a CPU below this fraction leaves it free for a torch thread (a shell, a monitor, short bursts).
_IDLE_MARGIN = 0.3
#: How long the others' load is measured (once per process): 10 clock ticks per CPU at Linux's 100 Hz.
_PROBE_S = 0.1
_SYS_CPU = Path("/sys/devices/system/cpu")
_CGROUP = Path("/sys/fs/cgroup")
_PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass
class _ThreadState:
    explicit: int | None = None  # set by configure_threads(n)
    applied: int | None = None  # the count this package set last (its choice, or a batch's split)
    scoped: int | None = None  # a batch's split in force in this process (run_batch with dask threads)
    worker: int | None = None  # pid of a batch worker process given its share (run_batch: processes, distributed)
    pooled: bool = False  # a thread other than the main one was set to one torch thread (rule 4)
    choice: tuple[int, int] | None = None  # (pid, n): the policy's choice, made once per process


_STATE = _ThreadState()
_LOCK = threading.RLock()


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None


def _available_cpus() -> int:
    """The logical CPUs this process may run on (its affinity mask)."""
    cpus = _affinity()
    return len(cpus) if cpus else (os.cpu_count() or 1)


def _physical_cores(cpus: set[int]) -> int:
    """Distinct (package, core) pairs among ``cpus``: hyper-threads of one core count once."""
    cores = set()
    try:
        for cpu in cpus:
            topo = _SYS_CPU / f"cpu{cpu}" / "topology"
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
    except OSError:
        return len(cpus)
    return len(cores) or len(cpus)


def _cgroup_files(v2: str, controller: str, v1: str, roots: tuple[str, ...]) -> list[Path]:
    """Where this process's cgroup may keep a limit: v2's file ``v2``, v1's file ``v1`` of ``controller`` (its
    own cgroup first, then the hierarchy's ``roots``)."""
    candidates = [_CGROUP / v2]
    with contextlib.suppress(OSError):
        for line in _PROC_CGROUP.read_text().splitlines():
            hid, controllers, path = line.split(":", 2)
            if hid == "0":
                candidates.append(_CGROUP / path.lstrip("/") / v2)
            elif controller in controllers.split(","):
                candidates.append(_CGROUP / controllers / path.lstrip("/") / v1)
    return candidates + [_CGROUP / root / v1 for root in roots]


def _cgroup_quota() -> float | None:
    """The CPU quota of this process's cgroup in CPUs (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), None if unlimited."""
    for path in _cgroup_files("cpu.max", "cpu", "cpu.cfs_quota_us", ("cpu", "cpu,cpuacct")):
        try:
            text = path.read_text().split()
            if path.name == "cpu.max":
                quota, period = text[0], text[1]
            else:
                quota, period = text[0], (path.parent / "cpu.cfs_period_us").read_text().split()[0]
        except (OSError, IndexError):
            continue
        if quota in ("max", "-1"):
            return None
        with contextlib.suppress(ValueError, ZeroDivisionError):
            return int(quota) / int(period)
    return None


def _usable_cpus() -> int:
    """Physical cores in the affinity mask, capped by the cgroup quota rounded to the nearest CPU; at least 1."""
    cpus = _affinity()
    n = _physical_cores(cpus) if cpus else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, math.floor(quota + 0.5))
    return max(1, n)


def _cpu_ticks(cpus: set[int] | None) -> tuple[int, int] | None:
    """(busy, total) clock ticks of ``cpus`` (all CPUs if None) since boot, from ``/proc/stat``."""
    busy = total = 0
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or (cpus is not None and int(name[3:]) not in cpus):
            continue
        # user nice system idle iowait irq softirq steal: idle and iowait are free; steal is taken by a neighbour VM
        v = [int(x) for x in fields[:8]]
        busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        total += sum(v)
    return (busy, total) if total else None


def _own_ticks() -> int | None:
    """CPU clock ticks (user + system) of all threads of this process."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)


def _busy_elsewhere() -> float:
    """CPUs that other processes keep busy now, on this process's CPUs (see the module's notes); 0 if unknown."""
    cpus = _affinity()
    before, own_before = _cpu_ticks(cpus), _own_ticks()
    if before is not None and own_before is not None:
        time.sleep(_PROBE_S)
        after, own_after = _cpu_ticks(cpus), _own_ticks()
        if after is not None and own_after is not None and after[1] > before[1]:
            n = len(cpus) if cpus else (os.cpu_count() or 1)
            ticks_per_cpu = (after[1] - before[1]) / n
            others = (after[0] - before[0]) - (own_after - own_before)
            return max(0.0, others / ticks_per_cpu)
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # Windows
        return 0.0


def choose_threads(cpus: int | None = None, busy: float | None = None) -> int:
    """
    The thread policy's rule: how many torch threads fit on the CPUs this process may use, now.

    Parameters
    ----------
    cpus : int, optional
        Usable CPUs (default: measured, the physical cores of the affinity mask capped by the cgroup quota).
    busy : float, optional
        CPUs kept busy by other processes (default: measured over 0.1 s; see the module's notes).

    Returns
    -------
    int
        ``floor(cpus - busy + 0.3)`` clipped to ``[1, cpus]``: a CPU that others use more than 0.3 of is taken.
        Not cached, and the user's choice is not consulted: see `apply_thread_policy`.

    Examples
    --------
    >>> from sunpy_nn.nn.device import choose_threads
    >>> choose_threads(cpus=8, busy=1.0), choose_threads(cpus=2, busy=0.2), choose_threads(cpus=2, busy=5.0)
    (7, 2, 1)
    """
    cpus = _usable_cpus() if cpus is None else int(cpus)
    busy = _busy_elsewhere() if busy is None else float(busy)
    n = max(1, min(cpus, math.floor(cpus - busy + _IDLE_MARGIN)))
    log.debug("thread policy: %d torch thread(s) (%d usable CPUs, %.2f busy elsewhere)", n, cpus, busy)
    return n


@lru_cache(maxsize=1)
def _torch_default_threads() -> int:
    """The count torch starts with when nobody sets it: the physical cores of the whole machine (cpuinfo's rule)."""
    logical = os.cpu_count() or 1
    cores = _physical_cores(set(range(logical)))
    return cores if 0 < cores < logical else logical


def _thread_env_var() -> str | None:
    """The first of `THREAD_ENV_VARS` set in the environment (the user's count), or None."""
    return next((var for var in THREAD_ENV_VARS if os.environ.get(var, "").strip()), None)


def user_threads() -> tuple[int, str] | None:
    """
    The thread count the user chose, and how, or None when the thread policy decides.

    Returns
    -------
    tuple of (int, str) or None
        torch's current count and ``"configure_threads"``, ``"OMP_NUM_THREADS"``/``"MKL_NUM_THREADS"`` or
        ``"torch.set_num_threads"``. A count set with ``torch.set_num_threads`` is recognised when it differs from
        the one this package set last or, before the package set any, from torch's own default.
    """
    current = torch.get_num_threads()
    if _STATE.explicit is not None:
        return current, "configure_threads" if current == _STATE.explicit else "torch.set_num_threads"
    if var := _thread_env_var():
        return current, var
    if _STATE.scoped is not None:
        return None if current == _STATE.scoped else (current, "torch.set_num_threads")
    expected = _STATE.applied if _STATE.applied is not None else _torch_default_threads()
    if current == 1 and _STATE.applied is None and _STATE.pooled:  # a new thread's count, set last by rule 4
        return None
    return None if current == expected else (current, "torch.set_num_threads")


def _set(n: int) -> None:
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    _STATE.applied = n


def _policy_choice(refresh: bool = False) -> int:
    """The policy's count for this process: decided once (again after a fork, or when ``refresh``)."""
    with _LOCK:
        pid = os.getpid()
        if refresh or _STATE.choice is None or _STATE.choice[0] != pid:
            _STATE.choice = (pid, choose_threads())
        return _STATE.choice[1]


def apply_thread_policy() -> int:
    """
    Give torch the package's thread count, unless the user chose one; return the count in force.

    Called where the networks run (`~sunpy_nn.nn.run_tiled`, the demo), so nobody has to. The first call in a
    process measures the others' load (0.1 s on Linux) and the choice is kept for the process; later calls cost a
    few microseconds. See the module's notes for the rule. While `~sunpy_nn.batch.run_batch` splits the threads
    of this process between dask tasks, the split is kept.

    Returns
    -------
    int
        torch's thread count after the call.
    """
    with _LOCK:
        in_pool = threading.current_thread() is not threading.main_thread()
        if in_pool and not _batch_split():
            return _pool_thread_count()
        chosen = user_threads()
        if chosen is not None:
            log.debug("thread policy: %d torch thread(s), the user's choice (%s)", *chosen)
            return chosen[0]
        if _STATE.scoped is not None:
            return _STATE.scoped
        n = _policy_choice()
        _set(n)
        return n


def _pool_thread_count() -> int:
    """
    The count in a thread other than the main thread (a dask task, a thread pool): the user's, else one.

    OpenMP gives every thread that runs torch its own team of worker threads, kept for the thread's life (dask's
    pool lives as long as the process). Once the teams hold more threads than there are CPUs, GNU OpenMP waits at
    each barrier by sleeping instead of spinning, in every team, the main thread's too: after a lazy prediction on
    dask's two threads with two torch threads each, the main thread's training ran 3.2x and its prediction 3.0x as
    long as before it, for the rest of the process; with one torch thread per pool thread 1.03x and 1.17x, and the
    lazy prediction took 3.9 s instead of 4.8 s (2-core Intel Xeon with AVX-512,
    ``python benchmarks/thread_pools.py --rounds 2``, medians of two rounds). dask's
    thread pools run one task per CPU, so one torch thread each fills the CPUs, as dask.distributed's workers do
    (``OMP_NUM_THREADS=1``).
    """
    n = _pool_threads()
    if torch.get_num_threads() != n:
        if n == 1:
            log.debug(
                "thread policy: 1 torch thread in thread %r, not the main thread (configure_threads(n) sets a count "
                "for every thread)",
                threading.current_thread().name,
            )
        torch.set_num_threads(n)  # also the count that threads started from now on begin with (not this one's)
    if n == 1:
        _STATE.pooled = True
    return n


def _pool_threads() -> int:
    """Rule 4's count for a thread other than the main one: ``configure_threads(n)``'s, the environment's, else 1."""
    if _STATE.explicit is not None:  # configure_threads(n): the user's count, in every thread
        return _STATE.explicit
    return torch.get_num_threads() if _thread_env_var() else 1  # a thread starts with the environment's count


def _batch_split() -> bool:
    """Whether a batch split this process's threads: `run_batch` on its dask threads, or a worker process's share."""
    return _STATE.scoped is not None or _STATE.worker == os.getpid()


def _pool_blocks() -> int:
    """
    Blocks a lazy array needs at once so that dask's pool threads fill the CPUs under rule 4: the policy's count for
    this process over each pool thread's torch threads (the user's count where the user chose one, else one).

    A lazy array of fewer chunks than that left CPUs idle (one torch thread per chunk): `~sunpy_nn.nn.lazy.lazy_tiled`
    cuts such an array finer. Giving the one pool thread more torch threads instead is no remedy: its team and the
    main thread's then outnumber the CPUs, and every team sleeps at its barriers.
    """
    with _LOCK:
        if _batch_split():
            return 1  # a batch's tasks already share the CPUs, each on more than one torch thread
        return max(1, _policy_choice() // _pool_threads())


def threads_per_task(n_tasks: int, cpus: int | None = None) -> int:
    """
    torch threads for each of ``n_tasks`` tasks that run at once on one host, so that together they fit it.

    The host's budget is the user's count when the user chose one (`user_threads`), else ``cpus`` when given
    (another host), else the thread policy's choice for this process; each task gets ``budget // n_tasks``, at
    least 1. Used by `~sunpy_nn.batch.run_batch`.

    Parameters
    ----------
    n_tasks : int
        Tasks that run at once on the host (values below 1 count as 1).
    cpus : int, optional
        The host's thread budget, for another host than this process's (default: the user's count, else the
        thread policy's choice for this process).

    Returns
    -------
    int
        torch threads per task, at least 1.

    Examples
    --------
    >>> from sunpy_nn.nn.device import threads_per_task
    >>> threads_per_task(3, cpus=8), threads_per_task(16, cpus=8)
    (2, 1)
    """
    if cpus is None:
        chosen = user_threads()
        cpus = chosen[0] if chosen is not None else _policy_choice()
    return max(1, int(cpus) // max(1, int(n_tasks)))


def _set_worker_threads(n: int) -> None:
    """A batch worker's share (`threads_per_task`): the policy's count of this (worker) process from now on."""
    with _LOCK:
        _STATE.explicit = None  # the batch split the user's budget (if any): its share is what the user asked for
        _STATE.choice = (os.getpid(), n)
        _STATE.worker = os.getpid()
        _set(n)


@contextlib.contextmanager
def _threads_during(n: int) -> Iterator[None]:
    """Run this process's torch on ``n`` threads for a while (a batch on dask threads); then restore all as it was."""
    with _LOCK:
        before = torch.get_num_threads()
        saved = (_STATE.applied, _STATE.scoped)
        if before != n:
            torch.set_num_threads(n)
        _STATE.scoped = n
    try:
        yield
    finally:
        with _LOCK:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)
            _STATE.applied, _STATE.scoped = saved


def _join_threads() -> None:
    """
    In a dask thread of a batch run by `_threads_during`: take the batch's count.

    OpenMP keeps a thread count per OS thread, and torch copies its own count into a thread only at the thread's
    first parallel operation: a pooled dask thread that ran torch before would keep its old count.
    """
    n = _STATE.scoped
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def configure_threads(n_threads: int | None = None) -> int:
    """
    Set torch's intra-op threads to ``n_threads``, or hand the choice back to the package's thread policy.

    Parameters
    ----------
    n_threads : int, optional
        The count to use from now on: the user's choice, which the package never changes. `None` (or 0) lets the
        thread policy decide again now, from the CPUs this process may use and the others' load (see
        `sunpy_nn.nn.device`), forgetting a count set earlier by ``configure_threads(n)`` or
        ``torch.set_num_threads``; a count set through ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` still wins.

    Returns
    -------
    int
        The number of threads in force.

    Raises
    ------
    ValueError
        ``n_threads`` is negative.

    Examples
    --------
    >>> from sunpy_nn.nn import configure_threads
    >>> configure_threads(1)  # doctest: +SKIP
    1
    """
    with _LOCK:
        if n_threads:
            n = int(n_threads)
            if n < 1:
                raise ValueError(f"n_threads must be positive, got {n_threads}")
            _STATE.explicit = n
            _set(n)
            log.debug("thread policy: %d torch thread(s), set by configure_threads", n)
            return n
        _STATE.explicit = _STATE.worker = None
        if var := _thread_env_var():
            log.debug("thread policy: %d torch thread(s), the user's choice (%s)", torch.get_num_threads(), var)
            return torch.get_num_threads()
        n = _policy_choice(refresh=True)
        _set(n)
        return n
