"""The workers' shared cache of views (geo/sharedcache.py), with real processes.

A value computed in one process is read by another; two processes asking at once build it
once; a new store version builds anew; a value that cannot be kept or read back is computed
as without the cache; nested builds do not wait on each other; the lock files do not pile up.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time
from pathlib import Path

import pytest

from geo import schema
from geo.settings import Settings
from geo.sharedcache import SharedCache
from geo.store import Store, bump_version, make_engine

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes need fork")
FORK = multiprocessing.get_context("fork") if hasattr(os, "fork") else None


def _build_logged(log: Path, value: object, pause: float = 0.0):  # noqa: ANN202
    def build() -> object:
        with log.open("a") as out:
            out.write(f"{os.getpid()}\n")
        time.sleep(pause)
        return value

    return build


def _builds(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _in_child(directory: Path, log: Path, key: object, value: object, pause: float,
              answers: multiprocessing.Queue) -> None:
    cache = SharedCache(directory)
    answers.put(cache.get_or_build(1, key, _build_logged(log, value, pause)))


def _run_children(directory: Path, log: Path, key: object, value: object, *, count: int,
                  pause: float = 0.0) -> list[object]:
    answers = FORK.Queue()
    children = [FORK.Process(target=_in_child, args=(directory, log, key, value, pause, answers))
                for _ in range(count)]
    for child in children:
        child.start()
    got = [answers.get(timeout=30) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    return got


def test_a_value_built_in_one_process_is_read_in_another(tmp_path):
    log = tmp_path / "builds"
    value = {"street": "440111017000", "rows": list(range(1000))}
    assert _run_children(tmp_path / "c", log, ("street_view", "440111017000"), value,
                         count=1) == [value]
    cache = SharedCache(tmp_path / "c")
    got = cache.get_or_build(1, ("street_view", "440111017000"), _build_logged(log, "other"))
    assert got == value and len(_builds(log)) == 1  # read back, not built here
    assert cache.get_or_build(2, ("street_view", "440111017000"),
                              _build_logged(log, "v2")) == "v2"  # a new version: built anew
    assert len(_builds(log)) == 2


def test_processes_asking_at_once_build_once_and_all_get_the_value(tmp_path):
    log = tmp_path / "builds"
    got = _run_children(tmp_path / "c", log, ("map_layer", "440100000000"), [1, 2, 3], count=4,
                        pause=0.5)
    assert got == [[1, 2, 3]] * 4
    assert len(_builds(log)) == 1  # the other three waited for the first one's value
    assert list((tmp_path / "c" / "locks").iterdir()) == []  # no lock file left behind


def test_a_nested_build_of_another_key_does_not_wait_for_itself(tmp_path):
    cache = SharedCache(tmp_path / "c")

    def outer() -> tuple:
        return ("outer", cache.get_or_build(1, ("metrics", "village"), lambda: "inner"))

    assert cache.get_or_build(1, ("street_view", "x"), outer) == ("outer", "inner")
    assert cache.get_or_build(1, ("metrics", "village"), lambda: "rebuilt") == "inner"


def test_none_is_a_value_and_what_cannot_be_kept_is_computed_each_time(tmp_path, caplog):
    cache = SharedCache(tmp_path / "c")
    calls = []
    assert cache.get_or_build(1, "none", lambda: calls.append(1)) is None
    assert cache.get_or_build(1, "none", lambda: calls.append(2) or "built") is None
    assert calls == [1]
    not_picklable = lambda: None  # noqa: E731 - a value pickle refuses
    values = tmp_path / "c" / "values"
    before = sorted(values.iterdir())
    assert cache.get_or_build(1, "fn", lambda: not_picklable) is not_picklable
    assert "cannot keep" in caplog.text
    assert sorted(values.iterdir()) == before  # no cut file, no temporary file left
    assert cache.get_or_build(1, "fn", lambda: "again") == "again"  # never kept, never an error


def test_an_unreadable_file_is_computed_again(tmp_path):
    cache = SharedCache(tmp_path / "c")
    values = tmp_path / "c" / "values"
    before = set(values.iterdir())  # cachelib's count file
    assert cache.get_or_build(1, "k", lambda: "first") == "first"
    assert cache.get_or_build(1, "k", lambda: "unused") == "first"  # kept, and read back
    (written,) = set(values.iterdir()) - before
    header = written.read_bytes()[:4]  # cachelib's expiry stamp
    written.write_bytes(written.read_bytes()[:-20])  # cut short, as by a full disk
    assert cache.get_or_build(1, "k", lambda: "second") == "second"
    assert cache.get_or_build(1, "k", lambda: "unused") == "second"  # the rebuilt value kept
    written.write_bytes(header + pickle.dumps(b"not a pickle"))  # whole file, bad value
    assert cache.get_or_build(1, "k", lambda: "third") == "third"


def test_the_store_shares_only_values_marked_shared_and_remove_deletes_the_directory(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    schema.store_version.create(engine)
    with engine.begin() as conn:
        bump_version(conn)
    shared = SharedCache(tmp_path / "c")
    one, two = Store(engine, Settings()), Store(engine, Settings())  # two worker processes
    one.share_cache(shared)
    two.share_cache(shared)
    assert one.cached(("view", 1), lambda: "from one", shared=True) == "from one"
    assert two.cached(("view", 1), lambda: "from two", shared=True) == "from one"
    assert one.cached(("own",), lambda: "one's") == "one's"
    assert two.cached(("own",), lambda: "two's") == "two's"  # not marked: each its own
    with engine.begin() as conn:
        bump_version(conn)
    assert two.cached(("view", 1), lambda: "after a write", shared=True) == "after a write"
    shared.remove()
    assert not (tmp_path / "c").exists()
    engine.dispose()
