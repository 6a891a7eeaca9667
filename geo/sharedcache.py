"""A cache that the server's worker processes share: computed views, on local disk.

Each gunicorn worker keeps its own in-memory cache (:meth:`geo.store.Store.cached`). Without a
shared layer, a street's view opened by its office was computed once in every worker its
requests reached, and more than once at the same time: a page sends its callbacks at once
(map, header, body, placement, warnings), they land on different workers, and each worker
computed the same street view for its own callback. With this layer one worker computes a
value and the others read it (at 1,000,000 cases and 6 views/s the 4 workers used 63-73
CPU-seconds where they used 83, docs/scaling.md "Stop 25").

Values live in pickled files in one directory made by the master for this server run
(cachelib's ``FileSystemCache``, from the Pallets project that maintains Flask: atomic writes
by rename, a bound on the number of files, oldest written pruned first). A value's name is
the store version and the cache key: a write to the store moves the version, so an old value
is never read again, and the bound removes it. Builders of one name take turns on an OS file
lock (``flock``, released by the OS if a worker dies), so a second worker waits for the first
one's value instead of computing it too. One lock file per name, not a few shared stripes: a
view's build asks for other cached values (a street view for the villages' metrics), and two
builders holding each other's stripe would wait for good. The builder deletes its lock file
before it lets go; a waiter that still holds the deleted file finds the value written, so
the directory does not grow with the keys and the worst a race costs is one build twice.

What lands on disk is what the views show: counts, rates, shapes and work lists whose
petitioner names were masked when the list was built (张**, :mod:`layers.lists`), never a
phone or an ID number; the files are readable by the server's user only (0600, in a
directory of mode 0700 from ``tempfile.mkdtemp``) and go when the server stops.

The key's ``repr`` names it, so a key must have a stable ``repr`` (strings, numbers, dates,
tuples and frozen dataclasses such as :class:`layers.filters.Filters`, whose fields are
sorted tuples). A failure to read or write here (a full disk, a value that cannot be
pickled) is logged and the value is computed as without the layer: never an error for the
user.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
from collections.abc import Callable, Hashable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

try:  # POSIX only; where it is missing there are no worker processes to share with
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms CI runs
    fcntl = None

from cachelib.file import FileSystemCache

T = TypeVar("T")
LOG = logging.getLogger(__name__)

MAX_FILES = 2048
"""Values kept at most. At 1,000,000 cases a street view pickles to 140-180 kB (2-4 ms to write
or read), a village view to 38 kB, a map layer to 13-67 kB, the villages' metrics table to
1.4 MB: a few hundred MB on disk for a day of views, 3 GB if every file were the largest."""
MAX_AGE_S = 24 * 3600
"""A value is not read after a day, and the oldest written go first when the files are many."""


class SharedCache:
    """Values computed by one worker process and read by the others (see the module).

    Parameters
    ----------
    directory
        An empty directory of this server run; :meth:`remove` deletes it.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        (self.directory / "locks").mkdir(parents=True, exist_ok=True)
        self._values = FileSystemCache(str(self.directory / "values"), threshold=MAX_FILES,
                                       default_timeout=MAX_AGE_S)

    def get_or_build(self, version: int, key: Hashable, build: Callable[[], T]) -> T:
        """Return the value of ``key`` at store ``version``: read, or built and written."""
        name = _name(version, key)
        with self._turn(name):
            found = self._read(name)
            if found is not None:
                return found[0]
            value = build()
            self._write(name, value)
            return value

    def remove(self) -> None:
        """Delete the directory (the master, when the server stops)."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def _read(self, name: str) -> tuple[Any] | None:
        data = self._values.get(name)
        if data is None:
            return None
        try:
            return (pickle.loads(data),)
        except Exception as error:  # noqa: BLE001 - any unreadable file: computed again
            LOG.warning("shared cache: unreadable value %s (%s); computing it", name, error)
            return None

    def _write(self, name: str, value: Any) -> None:  # noqa: ANN401 - any cached value
        # pickled here, not by cachelib: its serializer writes a cut file when pickling fails,
        # and leaves its temporary file when the error is not a PicklingError
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # noqa: BLE001 - whatever pickle refuses: not kept
            LOG.warning("shared cache: cannot keep %s (%s)", name, error)
            return
        if not self._values.set(name, data):  # a full disk: logged by cachelib
            LOG.warning("shared cache: cannot write %s", name)

    @contextmanager
    def _turn(self, name: str):  # noqa: ANN202 - a context manager
        if fcntl is None:  # pragma: no cover - not on the platforms CI runs
            yield
            return
        path = self.directory / "locks" / name
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by close, or by the OS if we die
            yield
        finally:
            try:
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)


def _name(version: int, key: Hashable) -> str:
    """The file name of ``key`` at ``version``: a digest of both (see the module on ``repr``)."""
    return hashlib.sha256(f"{version}\x00{key!r}".encode()).hexdigest()
