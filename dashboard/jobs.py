"""Background exports (我的导出): long files are written on the server, then fetched when ready.

A city-wide Excel takes most of a minute; as a plain link the browser waits with nothing to
show, and a click on the breadcrumb meanwhile loses it. Here an export is a job: the request
that starts it resolves the unit against the session (as the download routes do), audits it
and hands a writer to a small thread pool; the job reports rows written, and the file waits in
its own temporary folder until the session fetches it (``/exports/<id>``) or it expires.

Jobs belong to one session of one account (the owner: the account id and a random token kept
in the session), are listed only to it and are sent only to it, after the account's scope is
checked again. One registry per app, kept on the Flask config (no module state); its threads
and folders go when the app's process ends (:meth:`ExportJobs.close`).
"""

from __future__ import annotations

import atexit
import logging
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import flask

JOBS_KEY = "GRIDGOV_EXPORT_JOBS"
SESSION_KEY = "gridgov_export_owner"
KEEP_SECONDS = 3600
"""A finished file is kept this long (the list offers it again within the hour)."""
KEEP_PER_OWNER = 8
"""A session's list holds at most this many jobs (the oldest finished ones go first)."""

Writer = Callable[[Path, Callable[[int], None]], None]
"""Writes the file at the path it is given, calling the progress function with rows done."""


@dataclass
class ExportJob:
    """One export of one session: what it is, how far it got, where its file is."""

    id: str
    owner: tuple[int, str]
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
    """The app's background exports: a small thread pool and the jobs of every session."""

    def __init__(self, *, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gridgov-export")
        self._jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()

    def submit(self, owner: tuple[int, str], key: tuple[str, str, str], *, label: str,
               filename: str, mimetype: str, unit_code: str, total: int,
               write: Writer) -> ExportJob:
        """Start an export, or return the same export of the same view still running."""
        with self._lock:
            self._expire(owner)
            for job in self._jobs.values():
                if job.owner == owner and job.key == key and job.state == "running":
                    return job
            job = ExportJob(id=secrets.token_urlsafe(12), owner=owner, key=key, label=label,
                            filename=filename, mimetype=mimetype, unit_code=unit_code,
                            total=total, folder=Path(tempfile.mkdtemp(prefix="gridgov-export-")))
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, write)
        return job

    def of(self, owner: tuple[int, str]) -> list[ExportJob]:
        """The session's jobs, newest first."""
        with self._lock:
            self._expire(owner)
            return sorted((j for j in self._jobs.values() if j.owner == owner),
                          key=lambda j: j.created, reverse=True)

    def get(self, owner: tuple[int, str], job_id: str) -> ExportJob | None:
        """The session's job of that id (None for another session's or an unknown id)."""
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, str) else None
            return job if job is not None and job.owner == owner else None

    def close(self) -> None:
        """Stop taking jobs and remove every file (the process is ending)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for job in self._jobs.values():
                _remove(job)
            self._jobs.clear()

    def _run(self, job: ExportJob, write: Writer) -> None:
        def progress(rows: int) -> None:
            job.done = min(rows, job.total)

        try:
            write(job.folder / "export", progress)
        except Exception:  # noqa: BLE001 - any failure is the job's: shown as 失败, logged
            logging.getLogger(__name__).exception("export %s failed", job.label)
            job.state = "failed"
        else:
            job.done = job.total
            job.state = "ready"
        job.finished = time.time()

    def _expire(self, owner: tuple[int, str]) -> None:
        """Drop finished jobs older than :data:`KEEP_SECONDS`, and the owner's oldest beyond
        :data:`KEEP_PER_OWNER` (called with the lock held)."""
        now = time.time()
        for job_id, job in list(self._jobs.items()):
            if job.finished is not None and now - job.finished > KEEP_SECONDS:
                _remove(job)
                del self._jobs[job_id]
        mine = sorted((j for j in self._jobs.values() if j.owner == owner and j.finished),
                      key=lambda j: j.created, reverse=True)
        running = sum(1 for j in self._jobs.values() if j.owner == owner and not j.finished)
        for job in mine[max(0, KEEP_PER_OWNER - running):]:
            _remove(job)
            del self._jobs[job.id]


def install(server: flask.Flask) -> ExportJobs:
    """Give the app its registry of background exports (closed when the process ends)."""
    jobs = ExportJobs()
    server.config[JOBS_KEY] = jobs
    atexit.register(jobs.close)
    return jobs


def registry() -> ExportJobs:
    """The registry of the app serving the current request."""
    return flask.current_app.config[JOBS_KEY]


def owner(account_id: int) -> tuple[int, str]:
    """The current session's owner key (a token kept in the session, made on first use)."""
    token = flask.session.get(SESSION_KEY)
    if not isinstance(token, str) or len(token) < 16:
        token = secrets.token_urlsafe(16)
        flask.session[SESSION_KEY] = token
    return account_id, token


def _remove(job: ExportJob) -> None:
    if job.folder is not None:
        shutil.rmtree(job.folder, ignore_errors=True)
