"""Background exports (我的导出) without a server: jobs of a session, progress, expiry, and
the folder several server processes share (a job started by one is listed and sent by another).
"""

from __future__ import annotations

import threading
import time

from dashboard.jobs import ExportJobs

A, B = (1, "a" * 16), (1, "b" * 16)
KEY = ("city", "cases.csv", "")


def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _submit(jobs: ExportJobs, owner=A, key=KEY, write=None):  # noqa: ANN001, ANN202
    def default(target, progress):  # noqa: ANN001
        progress(1)
        target.write_text("x,y\n", encoding="utf-8")

    return jobs.submit(owner, key, label="甲区 · 案件表", filename="甲区.csv", mimetype="text/csv",
                       unit_code="440103000000", total=2, write=write or default)


def test_a_job_reports_progress_and_its_file_belongs_to_its_session_only():
    jobs = ExportJobs(workers=1)
    gate = threading.Event()

    def slow(target, progress):  # noqa: ANN001
        progress(1)
        gate.wait(5)
        target.write_text("done", encoding="utf-8")

    try:
        job = _submit(jobs, write=slow)
        _until(lambda: job.done == 1)
        assert job.state == "running" and "50%" in job.progress_zh()
        again = _submit(jobs)  # the same export of the same view: not started twice
        assert again.id == job.id and [j.id for j in jobs.of(A)] == [job.id]
        assert jobs.get(B, job.id) is None and jobs.of(B) == []
        assert jobs.get(A, "../" + job.id) is None  # an id is never a path
        gate.set()
        _until(lambda: jobs.get(A, job.id).state == "ready")  # on disk, as any process reads it
        assert jobs.get(A, job.id).path.read_text(encoding="utf-8") == "done"
        assert job.progress_zh() == "已完成 · 2 行"
        folder = job.folder
    finally:
        jobs.close()
    assert not folder.exists() and not jobs.root.exists()


def test_a_failing_writer_marks_the_job_failed():
    jobs = ExportJobs(workers=1)

    def broken(target, progress):  # noqa: ANN001
        raise OSError("disk full")

    try:
        job = _submit(jobs, write=broken)
        _until(lambda: jobs.get(A, job.id).state != "running")
        assert job.state == "failed" and job.path is None and "失败" in job.progress_zh()
    finally:
        jobs.close()


def test_a_session_keeps_its_newest_jobs_only(monkeypatch):
    import dashboard.jobs as module

    monkeypatch.setattr(module, "KEEP_PER_OWNER", 2)
    jobs = ExportJobs(workers=1)
    try:
        made = []
        for n in range(3):
            made.append(_submit(jobs, key=("city", "cases.csv", f"?n={n}")))
            _until(lambda: jobs.get(A, made[-1].id).state == "ready")
        jobs.of(A)
        kept = jobs.of(A)
        assert [j.id for j in kept] == [made[2].id, made[1].id]
        assert not made[0].folder.exists()
    finally:
        jobs.close()


def test_another_process_lists_and_sends_a_job_and_a_dead_one_has_failed(tmp_path):
    import os
    import subprocess
    import sys

    first, second = ExportJobs(tmp_path / "exports"), ExportJobs(tmp_path / "exports")
    gate = threading.Event()
    try:  # two workers of one server: one registry folder
        job = _submit(first)
        _until(lambda: second.get(A, job.id).state == "ready")  # as the other process reads it
        seen = second.get(A, job.id)
        assert seen.path.read_text(encoding="utf-8") == "x,y\n" and not seen.delivered
        second.mark_delivered(seen)
        assert first.of(A)[0].delivered and second.get(B, job.id) is None
        # a job whose process died mid-export (a worker killed): failed, not running forever
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        stuck = _submit(second, key=("city", "cases.csv", "?stuck"),
                        write=lambda target, progress: gate.wait(10))
        record = stuck.folder / "job.json"
        text = record.read_text(encoding="utf-8").replace(f'"pid": {os.getpid()}',
                                                          f'"pid": {int(gone)}')
        record.write_text(text, encoding="utf-8")
        assert first.get(A, stuck.id).state == "failed"
        assert "失败" in first.get(A, stuck.id).progress_zh()
    finally:
        gate.set()
        second.close()  # not the folder's maker in a real server; here the same process
        first.close()
