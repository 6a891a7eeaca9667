"""What every benchmark shares: the machine line and its own section of docs/benchmarks.md.

Each bench script rewrites only its section, between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``, so running one never clobbers another's results.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = ("# Benchmarks\n\nMeasured by the scripts in `bench/` (never by timed unit tests); each "
          "section says its machine, data size, the median of several runs and the baseline.\n")


def machine(*libraries: str) -> str:
    """One line describing the machine: CPU model, cores, load, Python and library versions."""
    model = "unknown CPU"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        found = re.search(r"Model name:\s*(.+)", lscpu)
        model = found.group(1).strip() if found else model
    except OSError:
        pass
    versions = []
    for name in libraries:
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except (ImportError, AttributeError):
            continue
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return ", ".join([f"{model}, {os.cpu_count()} cores (nproc)", f"load {load:.1f} at start",
                      f"Python {platform.python_version()}", *versions])


def write_section(name: str, text: str, *, docs: Path = DOCS) -> None:
    """Replace (or append) the section ``name`` of docs/benchmarks.md with ``text``."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{text.strip()}\n{end}"
    old = docs.read_text(encoding="utf-8") if docs.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    new = pattern.sub(lambda _: block, old) if pattern.search(old) else (
        old.rstrip("\n") + "\n\n" + block + "\n")
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def wait_http(url: str, *, timeout: float, process=None, log: Path | None = None) -> None:  # noqa: ANN001
    """Poll ``url`` until it answers; stop early with the server's log when ``process`` exits."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
            raise RuntimeError("server exited: " + tail)
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def process_memory(pid: int) -> dict:
    """RSS and PSS of one process in MB, from ``/proc/<pid>/smaps_rollup`` (Linux; 0 if gone)."""
    out = {"rss": 0.0, "pss": 0.0}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for key, name in (("Rss", "rss"), ("Pss", "pss")):
        found = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        if found:
            out[name] = int(found.group(1)) / 1024
    return out
