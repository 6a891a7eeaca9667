"""``gridgov metrics``: every metric for every unit of a level, as CSV or JSON; ``gridgov cases
export``: the dashboard's case export (案件表) of any unit and filters, as CSV or XLSX.

The root group (gridgov/cli.py) puts the :class:`geo.store.Store` in ``ctx.obj["store"]``
and adds :data:`commands`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from geo.errors import GridgovError
from geo.tabular import write_csv, write_xlsx
from geo.vocab import CITY_CODE
from layers.exports import export_frames
from layers.filters import STATUS_VALUES, Filters
from layers.metrics import compute_metrics
from layers.units import unit_of

LEVEL_CHOICES = ("city", "district", "street", "village", "grid")


def attribute_options(command):  # noqa: ANN001, ANN201 - a click decorator
    """The attribute filters every command that selects cases takes, as the dashboard has them."""
    for option in reversed((
        click.option("--category", multiple=True, help="信访内容分类 to keep (repeatable)."),
        click.option("--purpose", multiple=True, help="信访目的 to keep (repeatable)."),
        click.option("--channel", multiple=True, help="信访渠道 to keep (repeatable)."),
        click.option("--status", multiple=True, type=click.Choice(STATUS_VALUES),
                     help="open / closed / overdue (repeatable)."),
    )):
        command = option(command)
    return command


def cli_filters(date_from: datetime | None, date_to: datetime | None,
                **attributes: tuple[str, ...]) -> Filters:
    """The :class:`Filters` of a command's --from/--to and attribute options."""
    return Filters(date_from=date_from.date() if date_from else None,
                   date_to=date_to.date() if date_to else None, **attributes)


@click.command("metrics")
@click.option("--level", required=True, type=click.Choice(LEVEL_CHOICES),
              help="Unit level: one row per unit of this level (plus city and unassigned rows).")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]),
              help="First day of the reporting window (inclusive), YYYY-MM-DD.")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]),
              help="Last day of the reporting window (inclusive), YYYY-MM-DD.")
@attribute_options
@click.option("--parent", "parent_code", help="Only the children of this unit code.")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M:%S"]),
              help="Judge open/overdue at this moment (default: the latest timestamp in the data).")
@click.option("--coverage/--no-coverage", default=False,
              help="Add station-coverage columns (slower the first time).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True, help="Output format.")
@click.option("-o", "--output", default="-", type=click.Path(dir_okay=False, allow_dash=True),
              help="Output file (default: standard output). CSV files get a BOM for Excel.")
@click.pass_context
def metrics(
    ctx: click.Context,
    level: str,
    date_from: datetime | None,
    date_to: datetime | None,
    category: tuple[str, ...],
    purpose: tuple[str, ...],
    channel: tuple[str, ...],
    status: tuple[str, ...],
    parent_code: str | None,
    as_of: datetime | None,
    coverage: bool,
    fmt: str,
    output: str,
) -> None:
    """计算各网格指标 / Compute every metric for every unit of a level."""
    obj = ctx.obj or {}
    try:
        filters = cli_filters(date_from, date_to, category=category, purpose=purpose,
                              channel=channel, status=status)
        frame = compute_metrics(
            obj["store"], level=level, filters=filters, parent_code=parent_code, as_of=as_of,
            with_coverage=coverage,
        )
    except (GridgovError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    text = (
        frame.to_json(orient="records", force_ascii=False, indent=1)
        if fmt == "json" else frame.to_csv(index=False)
    )
    if output == "-":
        click.echo(text, nl=fmt == "json")
        return
    encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
    Path(output).write_text(text, encoding=encoding)
    click.echo(f"已写出 {len(frame)} 行 / wrote {len(frame)} rows to {output}", err=True)


@click.group("cases")
def cases_group() -> None:
    """信访件 / cases."""


@cases_group.command("export")
@click.option("--unit", "unit_code", default=CITY_CODE, show_default=True,
              help="网格单元代码 / the unit whose cases to export (default: the whole city).")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]),
              help="登记日期起 / first registration day (inclusive), YYYY-MM-DD.")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]),
              help="登记日期止 / last registration day (inclusive), YYYY-MM-DD.")
@attribute_options
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None,
              help="导出格式 / csv or xlsx (default: from -o's suffix, else csv).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="输出文件 / output file (default cases.csv / cases.xlsx).")
@click.pass_context
def cases_export(ctx: click.Context, unit_code: str, date_from: datetime | None,
                 date_to: datetime | None, category: tuple[str, ...], purpose: tuple[str, ...],
                 channel: tuple[str, ...], status: tuple[str, ...], fmt: str | None,
                 output: Path | None) -> None:
    """导出案件表（与仪表盘导出相同；个人信息已脱敏）/ export the case table, personal data masked.

    The same columns, order, rule states and masking as the dashboard's download; written
    through geo.tabular (formulas neutralised, all or nothing: a failure leaves no file).
    """
    suffix = output.suffix.lower().lstrip(".") if output is not None else ""
    fmt = fmt or (suffix if suffix in ("csv", "xlsx") else "csv")
    output = output or Path(f"cases.{fmt}")
    store = ctx.obj["store"]
    try:
        filters = cli_filters(date_from, date_to, category=category, purpose=purpose,
                              channel=channel, status=status)
        unit = unit_of(store, unit_code)
        frames = _counted(export_frames(store, unit.code, filters=filters))
        if fmt == "xlsx":
            write_xlsx({"案件": frames}, output)
        else:
            write_csv(frames, output)
    except (GridgovError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    n = frames.rows
    click.echo(f"已导出 {unit.name} {n:,} 件到 {output} / exported {n:,} cases of {unit.code} "
               f"to {output}")


class _counted:
    """Frames passed through, their rows counted."""

    def __init__(self, frames) -> None:  # noqa: ANN001 - an iterable of DataFrames
        self.frames = iter(frames)
        self.rows = 0

    def __iter__(self):  # noqa: ANN204
        for frame in self.frames:
            self.rows += len(frame)
            yield frame


commands = [metrics, cases_group]
"""Commands for the root ``gridgov`` group."""
