"""CLI commands of the ETL: ``ingest cases|stations``, ``reattach``, ``rejects export`` and
``runs`` (``cases export`` is the dashboard's export, in layers/cli.py).

Each command takes the engine and settings from ``ctx.obj`` (built by the root group in
gridgov/cli.py from ``--db`` / ``GRIDGOV_DATABASE_URL``) and delegates to one importable
function. A run with bad rows still succeeds (exit 0) and prints its reconciliation
line; only an unusable file or store exits non-zero.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from etl.corrections import correct_village
from etl.export import rejects_frame, runs_frame, write_table
from etl.ingest import ingest_cases
from etl.ledger import RunReport, abort_stale_runs
from etl.reattach import reattach as reattach_cases
from etl.stations import ingest_stations
from geo.errors import GridgovError
from geo.vocab import CRS_SYSTEMS

CRS_CHOICE = click.Choice(CRS_SYSTEMS)
_RUN_COLUMNS = ["run_id", "kind", "status", "started_at", "rows_read", "inserted", "updated",
                "unchanged", "rejected", "unassigned", "swapped_fixed", "moved", "duration_s",
                "source_file"]


def _guarded(ctx: click.Context, action: Callable[[], Any]) -> Any:
    """Run an action; print a gridgov error bilingually (no traceback) and exit 1."""
    try:
        return action()
    except GridgovError as err:
        click.echo(f"错误 / error: {err}", err=True)
        ctx.exit(1)


def _echo_report(report: RunReport) -> None:
    click.echo(f"运行 / run {report.run_id} ({report.kind}): {report.duration_s:.2f} s")
    click.echo(report.reconciliation_line())
    if report.kind == "cases":
        click.echo(report.address_line())
        if report.events:
            click.echo(f"流转记录新增 {report.events} 条 / {report.events} lifecycle events added")
    if report.rejected:
        click.echo(f"拒收明细：gridgov rejects export --run {report.run_id} / details of the "
                   f"rejected rows: gridgov rejects export --run {report.run_id}")


@click.group("ingest")
def ingest() -> None:
    """导入信访件或服务站点 / ingest a case or station file."""


@ingest.command("cases")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--crs", type=CRS_CHOICE, default="wgs84", show_default=True,
              help="坐标系 / coordinate system of 经度/纬度: wgs84, gcj02 (AMap), bd09 (Baidu).")
@click.option("--mapping", type=click.Path(path_type=Path), default=None,
              help='列名映射 JSON / header mapping file {"source header": "canonical"}.')
@click.pass_context
def ingest_cases_command(ctx: click.Context, file: Path, crs: str, mapping: Path | None) -> None:
    """导入信访件（CSV/XLSX/JSON/GeoJSON/Open311）/ ingest cases from FILE."""
    report = _guarded(ctx, lambda: ingest_cases(
        ctx.obj["store"], file, crs=crs, mapping=mapping, progress=sys.stderr.isatty()))
    _echo_report(report)


@ingest.command("stations")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--crs", type=CRS_CHOICE, default="wgs84", show_default=True,
              help="坐标系 / coordinate system of 经度/纬度.")
@click.pass_context
def ingest_stations_command(ctx: click.Context, file: Path, crs: str) -> None:
    """导入服务站点 / ingest service stations from FILE."""
    report = _guarded(ctx, lambda: ingest_stations(ctx.obj["store"], file, crs=crs))
    _echo_report(report)


@click.command("reattach")
@click.pass_context
def reattach(ctx: click.Context) -> None:
    """按当前边界重新落格 / re-attach every case to the current boundary version."""
    report = _guarded(ctx, lambda: reattach_cases(ctx.obj["store"]))
    click.echo(f"运行 / run {report.run_id} (reattach): {report.duration_s:.2f} s")
    click.echo(f"检查 {report.rows_read} 件，归属变化 {report.moved} 件，未落格 {report.unassigned} 件"
               f" / {report.rows_read} cases checked, {report.moved} moved, "
               f"{report.unassigned} unassigned")


@click.command("correct")
@click.argument("case_id")
@click.argument("village_code")
@click.option("--user", required=True, help="更正人 / who makes the correction.")
@click.option("--note", default=None, help="说明 / why (shown in the case's timeline).")
@click.pass_context
def cases_correct(ctx: click.Context, case_id: str, village_code: str, user: str,
                  note: str | None) -> None:
    """更正信访件所属村居 / place a case in a village (kept across later ingests)."""
    done = _guarded(ctx, lambda: correct_village(ctx.obj["store"], case_id, village_code,
                                                 user=user, note=note))
    click.echo(f"已更正 {done.case_id}：村居 {done.old_village or '未定'} → {done.village_code} / "
               f"corrected {done.case_id}: village {done.old_village or '-'} → {done.village_code}")


@click.group("rejects")
def rejects_group() -> None:
    """拒收记录 / rejected rows."""


@rejects_group.command("export")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("rejects.csv"),
              show_default=True, help="输出文件 / output file (.csv or .xlsx).")
@click.option("--run", "run_id", type=int, default=None, help="只导出某次运行 / one run only.")
@click.pass_context
def rejects_export(ctx: click.Context, output: Path, run_id: int | None) -> None:
    """导出拒收记录（行号、原始值、原因）/ export rejected rows with line, raw values, reason."""

    def run() -> int:
        frame = rejects_frame(ctx.obj["store"].engine, run_id=run_id)
        write_table(frame, output)
        return len(frame)

    n = _guarded(ctx, run)
    click.echo(f"已导出 {n} 条拒收记录到 {output} / exported {n} rejected rows to {output}")


@click.command("runs")
@click.option("--limit", type=int, default=20, show_default=True, help="最近几次 / newest N runs.")
@click.pass_context
def runs(ctx: click.Context, limit: int) -> None:
    """运行台账 / the run ledger: every ingest, reattach and demo run with its counts."""
    def run():  # noqa: ANN202
        engine = ctx.obj["store"].engine
        aborted = abort_stale_runs(engine)
        return aborted, runs_frame(engine, limit=limit)

    aborted, frame = _guarded(ctx, run)
    if aborted:
        click.echo(f"已将 {aborted} 次被中断的运行标为中断（aborted）/ marked {aborted} run(s) "
                   "left running by a killed process as aborted")
    if frame.empty:
        click.echo("尚无运行记录 / no runs yet")
        return
    frame = frame[[c for c in _RUN_COLUMNS if c in frame]]
    click.echo(frame.to_string(index=False))


commands = [ingest, reattach, cases_correct, rejects_group, runs]
"""Click commands for the lead's root group (gridgov/cli.py) to register."""
