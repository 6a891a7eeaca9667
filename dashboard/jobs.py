"""Background exports (我的导出): long files are written on the server, then fetched when ready.

A city-wide Excel takes most of a minute; as a plain link the browser waits with nothing to
show, and a click on the breadcrumb meanwhile loses it. Here an export is a job: the request
that starts it resolves the unit against the session (as the download routes do), audits it
and hands a writer to a small thread pool; the job reports rows written, and the file waits in
its own folder until the session fetches it (``/exports/<id>``) or it expires.

Jobs belong to one login session of one account (the owner: the account id and the session's
token, the one the store knows the session by), are listed only to it and are sent only to it,
after the account's scope is checked again. The token exists from the login on, so the first
export of a session is not lost to a request that raced it (a cookie written later without it).

Several server processes (gunicorn workers, :mod:`dashboard.workers`) serve one app, and a
session's next request may land on any of them. So a job is not kept in one process's memory
but in a folder all of them share (made before the fork): ``<root>/<job id>/job.json`` (what
it is and how far it got, replaced atomically as it moves) beside ``export`` (the file). The
process that runs a job writes its progress; any process lists and sends it. A job whose
process has died (a worker killed mid-export) shows as failed. The registry itself is one per
app, on the Flask config (no module state); the folder goes when the process that made it
ends (:meth:`ExportJobs.close`), never when a worker does.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import filelock
import flask
import flask_login

JOBS_KEY = "GRIDGOV_EXPORT_JOBS"
KEEP_SECONDS = 3600
"""A finished file is kept this long (the list offers it again within the hour)."""
KEEP_PER_OWNER = 8
"""A session's list holds at most this many jobs (the oldest finished ones go first)."""
PROGRESS_EVERY_S = 0.5
"""The running process rewrites a job's progress at most this often."""

Writer = Callable[[Path, Callable[[int], None]], None]
"""Writes the file at the path it is given, calling the progress function with rows done."""


@dataclass
class ExportJob:
    """One export of one session: what it is, how far it got, where its file is."""

    id: str
    owner: str
    """A hash of (account id, session token): the token itself never lies on disk."""
    key: tuple[str, str, str]
    """(page, kind, search): the same export of the same view is not started twice at once."""
    label: str
    filename: str
    mimetype: str
    unit_code: str
    total: int
    done: int = 0
    state: str = "running"
    """running 生成中, ready 已完成, failed 失败."""
    created: float = field(default_factory=time.time)
    finished: float | None = None
    delivered: bool = False
    pid: int = field(default_factory=os.getpid)
    """The process writing the file (a running job of a dead process has failed)."""
    folder: Path | None = None

    @property
    def path(self) -> Path | None:
        """The finished file (None until it is ready)."""
        return self.folder / "export" if self.folder and self.state == "ready" else None

    def progress_zh(self) -> str:
        """How far the job is, as the list shows it."""
        if self.state == "ready":
            return f"已完成 · {self.total:,} 行"
        if self.state == "failed":
            return "失败，请重试"
        share = f"{100 * self.done / self.total:.0f}%" if self.total else "0%"
        return f"生成中 {share}（{self.done:,} / {self.total:,} 行）"


class ExportJobs:
    """The app's background exports: jobs of every session in ``root``, a pool per process."""

    def __init__(self, root: Path | None = None, *, workers: int = 2) -> None:
        self.root = Path(root) if root is not None else Path(
            tempfile.mkdtemp(prefix="gridgov-exports-"))
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._made_by = os.getpid()
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._locks: dict[int, filelock.FileLock] = {}

    @property
    def _lock(self) -> filelock.FileLock:
        """Across processes, one change at a time (submit sees every running job).

        One lock object per process: filelock refuses one inherited across a fork.
        """
        pid = os.getpid()
        if pid not in self._locks:
            self._locks = {pid: filelock.FileLock(str(self.root / ".lock"))}
        return self._locks[pid]

    def submit(self, owner: tuple[int, str], key: tuple[str, str, str], *, label: str,
               filename: str, mimetype: str, unit_code: str, total: int,
               write: Writer) -> ExportJob:
        """Start an export, or return the same export of the same view still running."""
        who = _owner_hash(owner)
        with self._lock:
            self._expire(who)
            for job in self._all():
                if job.owner == who and job.key == key and job.state == "running":
                    return job
            job = ExportJob(id=secrets.token_urlsafe(12), owner=who, key=key, label=label,
                            filename=filename, mimetype=mimetype, unit_code=unit_code,
                            total=total)
            job.folder = self.root / job.id
            job.folder.mkdir(mode=0o700)
            _save(job)
        self._executor().submit(self._run, job, write)
        return job

    def of(self, owner: tuple[int, str]) -> list[ExportJob]:
        """The session's jobs, newest first."""
        who = _owner_hash(owner)
        with self._lock:
            self._expire(who)
            return sorted((j for j in self._all() if j.owner == who),
                          key=lambda j: j.created, reverse=True)

    def get(self, owner: tuple[int, str], job_id: str) -> ExportJob | None:
        """The session's job of that id (None for another session's or an unknown id)."""
        if not isinstance(job_id, str) or not job_id or not all(
                ch.isalnum() or ch in "-_" for ch in job_id):  # never a path outside root
            return None
        job = _load(self.root / job_id)
        return job if job is not None and job.owner == _owner_hash(owner) else None

    def mark_delivered(self, job: ExportJob) -> None:
        """The file was sent: the list stops offering to fetch it by itself."""
        with self._lock:
            current = _load(job.folder) if job.folder else None
            if current is not None:
                current.delivered = job.delivered = True
                _save(current)

    def close(self) -> None:
        """Stop taking jobs; the process that made the folder removes it with every file."""
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        if os.getpid() == self._made_by:
            shutil.rmtree(self.root, ignore_errors=True)

    def _executor(self) -> ThreadPoolExecutor:
        """This process's pool (a pool made before a fork has no threads in the child)."""
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=self._workers,
                                            thread_name_prefix="gridgov-export")
            self._pool_pid = os.getpid()
        return self._pool

    def _run(self, job: ExportJob, write: Writer) -> None:
        saved = [time.monotonic()]

        def progress(rows: int) -> None:
            job.done = min(rows, job.total)
            if time.monotonic() - saved[0] >= PROGRESS_EVERY_S:
                saved[0] = time.monotonic()
                _save(job)

        try:
            write(job.folder / "export", progress)
        except Exception:  # noqa: BLE001 - any failure is the job's: shown as 失败, logged
            logging.getLogger(__name__).exception("export %s failed", job.label)
            job.state = "failed"
        else:
            job.done = job.total
            job.state = "ready"
        job.finished = time.time()
        with self._lock:
            current = _load(job.folder)
            job.delivered = bool(current and current.delivered)
            if job.folder.exists():  # not expired meanwhile
                _save(job)

    def _all(self) -> list[ExportJob]:
        return [job for job in (_load(folder) for folder in self.root.iterdir()
                                if folder.is_dir()) if job is not None]

    def _expire(self, owner: str) -> None:
        """Drop finished jobs older than :data:`KEEP_SECONDS`, and the owner's oldest beyond
        :data:`KEEP_PER_OWNER` (called with the lock held)."""
        now = time.time()
        jobs = self._all()
        for job in jobs:
            if job.finished is not None and now - job.finished > KEEP_SECONDS:
                _remove(job)
        jobs = [j for j in jobs if j.folder.exists()]
        mine = sorted((j for j in jobs if j.owner == owner and j.finished),
                      key=lambda j: j.created, reverse=True)
        running = sum(1 for j in jobs if j.owner == owner and not j.finished)
        for job in mine[max(0, KEEP_PER_OWNER - running):]:
            _remove(job)


def install(server: flask.Flask, root: Path | None = None) -> ExportJobs:
    """Give the app its registry of background exports (removed when the process ends)."""
    jobs = ExportJobs(root)
    server.config[JOBS_KEY] = jobs
    atexit.register(jobs.close)
    return jobs


def registry() -> ExportJobs:
    """The registry of the app serving the current request."""
    return flask.current_app.config[JOBS_KEY]


def owner(account_id: int) -> tuple[int, str]:
    """The current login session's owner key: (account id, the session's token)."""
    token = getattr(flask_login.current_user, "token", None)
    if not isinstance(token, str) or not token:  # callers have checked the account already
        raise RuntimeError("no login session / 无登录会话")
    return account_id, token


def _owner_hash(owner: tuple[int, str]) -> str:
    return hashlib.sha256(f"{owner[0]}:{owner[1]}".encode()).hexdigest()


def _save(job: ExportJob) -> None:
    """Write ``job.json`` whole or not at all (a reader never sees half a file)."""
    record = {k: v for k, v in asdict(job).items() if k != "folder"}
    temp = job.folder / f".job.{os.getpid()}.{threading.get_ident()}.json"
    try:
        temp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        temp.replace(job.folder / "job.json")
    except FileNotFoundError:  # the job expired and its folder went meanwhile
        pass


def _load(folder: Path) -> ExportJob | None:
    try:
        record = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    job = ExportJob(**{**record, "key": tuple(record["key"])}, folder=folder)
    if job.state == "running" and not _alive(job.pid):
        job.state = "failed"  # its process died mid-export (a worker killed or restarted)
    return job


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that number: alive
        return True
    return True


def _remove(job: ExportJob) -> None:
    if job.folder is not None:
        shutil.rmtree(job.folder, ignore_errors=True)
