"""Process memory: give freed memory back to the operating system (glibc; no-op elsewhere).

A server holds a million-case table for its whole life, and builds and drops arrays of the
same size on every query. glibc keeps freed heap memory for reuse and raises its mmap
threshold after each large free, so without these two calls a served process would keep the
high-water mark of every transient array resident (hundreds of MB) on top of the data.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
"""mallopt parameter: allocations at least this large are mmapped (and unmapped on free)."""
M_ARENA_MAX = -8
"""mallopt parameter: at most this many malloc arenas (glibc's default is 8 per core)."""
SERVER_ARENAS = 2
LARGE_ARRAY_BYTES = 1 << 20


def release_free_memory() -> None:
    """Return free heap memory to the OS now (``malloc_trim(0)``, and Arrow's own pool).

    Arrow allocates through its own pool (mimalloc in the wheels), which keeps the pages of
    freed buffers (the million-row reads that built the case table) until asked to let go.
    """
    import sys

    arrow = sys.modules.get("pyarrow")  # only when loaded: never import it for this
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def unpool_large_arrays() -> None:
    """Map every allocation of 1 MB or more on its own, so freeing it unmaps it at once.

    Fixing the threshold also stops glibc from raising it dynamically (to 32 MB) after the
    first large free, which is what makes a long-running numpy process grow. Malloc arenas are
    capped at two: each request thread otherwise gets an arena of its own, and the free memory
    scattered over a dozen arenas stays resident in every gunicorn worker. Arrow is told to
    allocate through the same malloc (its wheels' default, mimalloc, keeps freed pages for
    reuse: some 30 MB more resident in a served process after the case table is read).
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_ARRAY_BYTES)
        libc.mallopt(M_ARENA_MAX, SERVER_ARENAS)
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def _libc():  # noqa: ANN202 - a ctypes library or None
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None
