"""``gridgov warnings run`` and ``gridgov warnings export``: compute, store and export warnings.

The root group (gridgov/cli.py) puts the :class:`geo.store.Store` in ``ctx.obj["store"]``.
Exports go through :mod:`geo.tabular` (formulas neutralised, written atomically).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from geo.errors import GridgovError
from geo.store import require_store
from geo.tabular import csv_chunks, write_csv
from geo.vocab import CITY_CODE, WARNING_LEVELS
from layers.warnings.export import export_frame
from layers.warnings.run import run_warnings


@click.group("warnings")
def warnings_group() -> None:
    """预警：计算、保存与导出 / early warnings: compute, store and export."""


@warnings_group.command("run")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M:%S"]),
              help="Judge at this date (end of day); default the latest timestamp in the data.")
@click.option("--force", is_flag=True, help="Recompute even if an identical run exists.")
@click.pass_context
def run(ctx: click.Context, as_of: datetime | None, force: bool) -> None:
    """计算并保存全部预警（可重复运行）/ compute and store every warning (idempotent)."""
    store = ctx.obj["store"]
    require_store(store.engine)
    try:
        summary = run_warnings(store, as_of=as_of.date() if as_of and not (
            as_of.hour or as_of.minute or as_of.second) else as_of, force=force)
    except (GridgovError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(summary.line())
    for rule, count in sorted(summary.by_rule.items()):
        click.echo(f"  {rule}: {count}")


@warnings_group.command("export")
@click.option("--level", type=click.Choice(tuple(WARNING_LEVELS)), default=None,
              help="red (强信号) or yellow (弱信号); default both.")
@click.option("--unit", "unit", default=CITY_CODE, show_default=True,
              help="Only warnings of this unit and the units nested in it.")
@click.option("--all", "include_inactive", is_flag=True,
              help="Include warnings the latest run no longer found.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True, help="Output format.")
@click.option("-o", "--output", default="-", type=click.Path(dir_okay=False, allow_dash=True),
              help="Output file (default: standard output). CSV gets a BOM for Excel.")
@click.pass_context
def export(ctx: click.Context, level: str | None, unit: str, include_inactive: bool, fmt: str,
           output: str) -> None:
    """导出预警（每条一行）/ export warnings, one row per warning."""
    store = ctx.obj["store"]
    require_store(store.engine)
    try:
        frame = export_frame(store, scope=unit, level=level, active_only=not include_inactive)
    except (GridgovError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    if fmt == "json":
        text = json.dumps(frame.to_dict("records"), ensure_ascii=False, indent=1, default=str)
        if output == "-":
            click.echo(text)
        else:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
    elif output == "-":
        for chunk in csv_chunks([frame]):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    else:
        write_csv([frame], output)
    if output != "-":
        click.echo(f"已写出 {len(frame)} 条预警 / wrote {len(frame)} warnings to {output}", err=True)


commands = [warnings_group]
"""Commands for the root ``gridgov`` group."""
