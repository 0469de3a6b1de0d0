"""The stage-1 cache on a filesystem many processes share: one computation per entry, one intact file, and
readers that never see a partial one. The processes are real (spawned), as ranks and sweep jobs are."""
from __future__ import annotations

import io
import logging
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from stylex.cache import ArtifactCache, cache_key

PARTS = {"image": "0123abcd", "model": "tiny", "regions": {"max_k": 10}}
N = 3_000_000  # 24 MB of int64: long enough to write that a non-atomic write would be seen half done


def expected_value() -> dict:
    return {"labels": torch.arange(N), "k": 7}


def compute_worker(root: str, counter: str, barrier, results) -> None:
    """One process: wait for the others, then ask the cache for the same entry (slow to compute)."""
    torch.set_num_threads(1)

    def compute() -> dict:
        with open(counter, "a") as f:  # O_APPEND: one line per computation, from any process
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        return expected_value()

    barrier.wait()
    value = ArtifactCache(root).get_or_compute("stage1", PARTS, compute)
    results.put(bool(torch.equal(value["labels"], torch.arange(N)) and value["k"] == 7))


def read_worker(path: str, stop, results) -> None:
    """A reader polling the entry's file while writers race: every read it makes must be a whole entry."""
    torch.set_num_threads(1)
    reads, bad = 0, []
    while not stop.is_set():
        if os.path.exists(path):
            try:
                value = torch.load(path, map_location="cpu", weights_only=True)
                if not torch.equal(value["labels"], torch.arange(N)):
                    bad.append("wrong values")
                reads += 1
            except Exception as exc:  # noqa: BLE001 - any failure is what the test looks for
                bad.append(repr(exc)[:200])
        time.sleep(0.01)
    results.put((reads, bad))


def test_racing_processes_compute_one_entry_once_and_readers_never_see_a_partial_file(tmp_path: Path):
    ctx = mp.get_context("spawn")
    root, counter = tmp_path / "cache", tmp_path / "computed.txt"
    path = ArtifactCache(root).path("stage1", cache_key(PARTS))
    writers = 3
    barrier, stop = ctx.Barrier(writers), ctx.Event()
    results, reads = ctx.Queue(), ctx.Queue()
    reader = ctx.Process(target=read_worker, args=(str(path), stop, reads))
    reader.start()
    procs = [ctx.Process(target=compute_worker, args=(str(root), str(counter), barrier, results))
             for _ in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    stop.set()
    reader.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    assert [results.get(timeout=5) for _ in procs] == [True] * writers  # everyone got the whole value
    assert len(counter.read_text().split()) == 1  # one process computed; the others waited and read its entry
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")) == [path.name]  # no .part
    assert torch.equal(torch.load(path, weights_only=True)["labels"], torch.arange(N))
    n_reads, bad = reads.get(timeout=5)
    assert not bad, bad[:3]
    assert n_reads > 0  # the reader did see the entry


def test_a_lock_held_too_long_does_not_stop_the_run(tmp_path: Path, caplog):
    """A process that died or hangs while holding an entry's lock costs at most `lock_timeout`: the entry is then
    computed here, and written whole."""
    cache = ArtifactCache(tmp_path, lock_timeout=0.2)
    path = cache.path("stage1", cache_key(PARTS))
    path.parent.mkdir(parents=True)
    held = FileLock(str(path) + ".lock")
    with held, caplog.at_level(logging.WARNING, logger="stylex.cache"):
        value = cache.get_or_compute("stage1", PARTS, lambda: {"k": 3})
    assert value == {"k": 3} and cache.misses == 1
    assert torch.load(path, weights_only=True) == {"k": 3}
    assert "computing it here too" in caplog.text


def test_a_damaged_entry_is_recomputed_and_replaced(tmp_path: Path):
    cache = ArtifactCache(tmp_path)
    path = cache.path("stage1", cache_key(PARTS))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    assert cache.get_or_compute("stage1", PARTS, lambda: {"k": 5}) == {"k": 5}
    assert torch.load(path, weights_only=True) == {"k": 5}
    again = ArtifactCache(tmp_path)
    assert again.get_or_compute("stage1", PARTS, lambda: pytest.fail("recomputed")) == {"k": 5}
    assert again.hits == 1 and again.misses == 0


def test_an_entry_written_while_waiting_for_its_lock_counts_as_a_hit(tmp_path: Path):
    """The counts go into every sidecar: an entry another process finished while this one waited was not
    computed here."""
    import threading

    from stylex.data.outputs import atomic_write_bytes
    from stylex.methods.stylegallery import StyleGallery

    assert StyleGallery(cache_dir=str(tmp_path), cache_lock_timeout=7.5).cache.lock_timeout == 7.5
    cache = ArtifactCache(tmp_path, lock_timeout=60)
    path = cache.path("stage1", cache_key(PARTS))
    path.parent.mkdir(parents=True)
    held = FileLock(str(path) + ".lock")
    held.acquire()
    got: dict = {}
    waiting = threading.Thread(target=lambda: got.update(value=cache.get_or_compute("stage1", PARTS, dict)))
    waiting.start()
    time.sleep(0.5)  # it found no entry and waits for the lock
    buffer = io.BytesIO()
    torch.save({"k": 7}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    held.release()
    waiting.join(timeout=60)
    assert got["value"] == {"k": 7} and (cache.hits, cache.misses) == (1, 0)
