"""sunpy_nn.batch: the generic batch runner, handed its task; and the one Enhance model cache it relies on."""

import os
import pickle
import warnings

import pytest
import torch

from sunpy_nn import enhance
from sunpy_nn.batch import BatchError, MapFailure, run_batch
from sunpy_nn.data import save_weights
from sunpy_nn.utils import SunpyNNUserWarning

from .helpers import random_enhance_net


class Halve:
    """A picklable task that knows nothing of Enhance: refuses odd numbers, warns about zeros."""

    def __call__(self, item, index):
        if item % 2:
            raise ValueError(f"{item} is odd")
        if item == 0:
            warnings.warn("zero", SunpyNNUserWarning, stacklevel=2)
        return (index, item // 2)


class DieOn:
    """A picklable task whose worker process dies (as killed for memory) on one item; the others take a moment."""

    def __init__(self, fatal):
        self.fatal = fatal

    def __call__(self, item, index):
        import time

        if item == self.fatal:
            time.sleep(2.0)  # dies after others finished, wherever dask runs it in the order
            os._exit(9)
        time.sleep(0.3)
        return item


def test_a_dying_worker_process_fails_its_items_not_the_batch():
    """A worker process that dies took the whole batch down with a bare BrokenProcessPool: the items that finished
    are kept and the others are failures that say what happened."""
    pytest.importorskip("dask")
    items = [10, 11, 12, 13, 14, 15, 99, 16]
    with pytest.raises(BatchError) as err:
        run_batch(items, DieOn(99), scheduler="processes", num_workers=2, progress=False, unit="item")
    failed = {f.index for f in err.value.failures}
    assert 6 in failed and len(failed) < len(items)  # the fatal item, and those not finished when the pool broke
    for f in err.value.failures:
        assert f.error.startswith("BrokenProcessPool") and "a worker died before this item finished" in f.error
    kept = [r for r in err.value.results if r is not None]
    assert kept and all(items[i] == r for i, r in enumerate(err.value.results) if r is not None)


@pytest.mark.parametrize("scheduler", ["serial", "threads"])
def test_run_batch_collects_results_failures_and_warnings(scheduler):
    if scheduler != "serial":
        pytest.importorskip("dask")
    with pytest.raises(BatchError, match=r"2 of 5 items failed") as err:
        run_batch([4, 3, 0, 5, 8], Halve(), scheduler=scheduler, num_workers=2, progress=False, unit="item")
    assert [(f.index, f.source, f.error) for f in err.value.failures] == [
        (1, "item 1 (int)", "ValueError: 3 is odd"),
        (3, "item 3 (int)", "ValueError: 5 is odd"),
    ]
    assert err.value.results == [(0, 2), None, (2, 0), None, (4, 4)]
    with pytest.warns(SunpyNNUserWarning) as caught:
        kept = run_batch([4, 3, 0], Halve(), scheduler=scheduler, errors="warn", progress=False, desc="halve")
    assert kept == [(0, 2), (2, 0)]
    messages = [str(w.message) for w in caught]
    assert "map 2 (int): zero" in messages  # a warning on a worker reaches the caller, naming the item
    assert "halve skipped map 1 (int): ValueError: 3 is odd" in messages
    assert all(w.filename == __file__ for w in caught)  # pointing at the caller of run_batch


class WarnSome:
    """Warns for the items named "warn...", at staggered times, so that tasks on threads overlap."""

    def __call__(self, item, index):
        import time

        time.sleep(0.02 * (index % 3))
        if item.startswith("warn"):
            warnings.warn(f"from {item}", SunpyNNUserWarning, stacklevel=2)
        time.sleep(0.1)
        return item


def test_warnings_of_tasks_on_threads_reach_the_caller_each_under_its_item():
    pytest.importorskip("dask")
    items = ["warnA", "quiet1", "warnB", "quiet2", "quiet3", "warnC"]
    filters, show = warnings.filters[:], warnings.showwarning
    with pytest.warns(SunpyNNUserWarning) as caught:
        run_batch(items, WarnSome(), scheduler="threads", num_workers=6, progress=False, unit="item")
    messages = sorted(str(w.message) for w in caught)
    # catch_warnings on each thread mixed them up (one item got another's) and lost them
    assert messages == [f"{items[i]}: from {items[i]}" for i in (0, 2, 5)]
    assert warnings.filters == filters and warnings.showwarning is show  # the caller's settings as they were
    with pytest.warns(UserWarning, match="after the batch"):
        warnings.warn("after the batch", UserWarning, stacklevel=2)


class Nested:
    """A task that runs a batch of its own, then warns: both warnings must reach the outer batch's caller."""

    def __call__(self, item, index):
        run_batch([0], Halve(), scheduler="serial", progress=False, unit="item", errors="warn")
        warnings.warn(f"after {item}", SunpyNNUserWarning, stacklevel=2)
        return item


def test_a_batch_inside_a_task_keeps_the_outer_tasks_warnings():
    with pytest.warns(SunpyNNUserWarning) as caught:
        run_batch(["A"], Nested(), scheduler="serial", progress=False, unit="item")
    assert sorted(str(w.message) for w in caught) == ["A: after A", "A: item 0 (int): zero"]


def test_run_batch_keeps_a_none_result():
    # a generic runner: a task that succeeds with None is a success, not a failure
    assert run_batch([1, 2], lambda item, index: None, progress=False) == [None, None]


def test_run_batch_checks_its_arguments_first():
    with pytest.raises(ValueError, match="errors must be"):
        run_batch([1], Halve(), errors="ignore")
    with pytest.raises(ValueError, match="scheduler must be"):
        run_batch([1], Halve(), scheduler="gpu")


def cached(weights):
    """The model cache's own network and provenance (`load_enhance_model` hands out copies)."""
    from sunpy_nn.enhance._models import _load, _resolve

    return _load(_resolve(weights, "blos"))


def test_one_model_cache_loads_a_weight_file_once(tmp_path):
    weights = save_weights(random_enhance_net(depth=1, n_filters=4), tmp_path / "cached.pt")
    enhance._MODELS.clear()
    before = enhance._MODEL_LOADS
    first = cached(weights)
    assert cached(weights)[0] is first[0]
    assert cached(str(weights))[0] is first[0]
    # the public function hands out copies of the cached network (found there: no second load)
    copy, _ = enhance.load_enhance_model(weights, "blos")
    assert copy is not first[0] and all(
        torch.equal(a, b) for a, b in zip(copy.state_dict().values(), first[0].state_dict().values(), strict=True)
    )
    assert enhance._MODEL_LOADS - before == 1
    # a path with "~" is the same file and the same cache entry
    home = tmp_path / "home"
    home.mkdir()
    (home / "cached.pt").symlink_to(weights)
    (home / "cached.json").symlink_to(weights.with_suffix(".json"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        cached("~/cached.pt")
        cached("~/cached.pt")
    assert enhance._MODEL_LOADS - before == 2  # one load for the "~" spelling, then cached
    before += 1
    # a rewritten file is loaded again (its modification time is set: a rewrite can fall in the same clock tick)
    save_weights(random_enhance_net(depth=1, n_filters=4, seed=1), weights)
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert cached(weights)[0] is not first[0]
    assert enhance._MODEL_LOADS - before == 2
    # the batch runner and the single-map path share this cache: parallel has none of its own
    from sunpy_nn import parallel

    assert not hasattr(parallel, "_MODELS") and not hasattr(parallel, "_worker_model")


def test_enhance_map_batch_warnings_point_at_the_caller(tmp_path):
    import astropy.units as u
    import numpy as np

    from sunpy_nn import enhance_map

    from .test_enhance_map import hmi_map

    smap = hmi_map(np.random.default_rng(0).normal(0, 300, (24, 24)), unit=u.G)
    with pytest.warns(SunpyNNUserWarning, match="missing.fits") as caught:
        out = enhance_map(
            [smap, tmp_path / "missing.fits"],
            weights=random_enhance_net(depth=1, n_filters=4),
            scheduler="serial",
            errors="warn",
            progress=False,
        )
    assert len(out) == 1 and out[0].data.shape == (48, 48)
    assert {w.filename for w in caught} == {__file__}


def test_batch_error_round_trips_through_pickle():
    # a batch run inside a dask worker, or a process pool of the caller, sends its error back pickled
    err = BatchError([1, None], [MapFailure(1, "a.fits", "OSError: gone")], unit="file")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is BatchError and str(back) == str(err) and back.args == err.args
    assert back.results == [1, None] and back.failures == err.failures and back.unit == "file"


def test_concurrent_batches_keep_their_own_results():
    """Outcomes came from dask's process-wide callbacks: two batches on threads at once could swap results."""
    pytest.importorskip("dask")
    import threading

    got = {}

    def batch(name):
        got[name] = run_batch(range(6), Tag(name), scheduler="threads", num_workers=2, progress=False)

    for _ in range(5):
        threads = [threading.Thread(target=batch, args=(n,)) for n in "AB"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == {n: [(n, i) for i in range(6)] for n in "AB"}


class Tag:
    def __init__(self, name):
        self.name = name

    def __call__(self, item, index):
        import time

        time.sleep(0.01)
        return (self.name, item)


class LockOn:
    """A picklable task whose result for one item cannot be pickled back from a worker process."""

    def __call__(self, item, index):
        import threading
        import time

        if item == 2:
            time.sleep(1.0)  # after others finished
            return threading.Lock()
        return item


def test_a_result_that_cannot_travel_fails_the_unfinished_items_not_the_batch():
    pytest.importorskip("dask")
    with pytest.raises(BatchError) as err:
        run_batch([0, 1, 2, 3], LockOn(), scheduler="processes", num_workers=2, progress=False, unit="item")
    failed = {f.index for f in err.value.failures}
    assert 2 in failed and len(failed) < 4
    for f in err.value.failures:
        assert "pickle" in f.error and "worker died" not in f.error


class HoldsALock:
    """A task that cannot be pickled: it holds a lock."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()

    def __call__(self, item, index):
        return item


def test_a_task_that_cannot_reach_worker_processes_is_refused_before_any_item_runs():
    pytest.importorskip("dask")
    with pytest.raises(TypeError, match=r"\(HoldsALock\) cannot be pickled.*module-level.*scheduler='threads'"):
        run_batch([0, 1], HoldsALock(), scheduler="processes", num_workers=2, progress=False)
    # threads share the task without pickling it: it runs
    assert run_batch([0, 1], HoldsALock(), scheduler="threads", progress=False) == [0, 1]


class RefusesToUnpickle:
    """A task that pickles, but whose unpickling fails (as a worker process would have to do it)."""

    def __call__(self, item, index):
        return item

    def __setstate__(self, state):
        raise RuntimeError("this task's state needs a resource the worker lacks")


def test_a_task_that_pickles_but_cannot_be_unpickled_is_refused_before_any_item_runs():
    pytest.importorskip("dask")
    task = RefusesToUnpickle()
    task.x = 1  # a non-empty state, so that unpickling calls __setstate__
    with pytest.raises(TypeError, match=r"\(RefusesToUnpickle\) pickles but cannot be unpickled.*the worker lacks"):
        run_batch([0, 1], task, scheduler="processes", num_workers=2, progress=False)
    assert run_batch([0, 1], task, scheduler="threads", progress=False) == [0, 1]
