"""``gridgov demo``: a complete synthetic demo store in one command."""

from __future__ import annotations

from datetime import date, datetime

import click

from etl.demo import build_demo


@click.command()
@click.option("--cases", "n_cases", type=click.IntRange(0, 2_000_000), default=200_000,
              show_default=True, help="Synthetic cases to generate (a year of them).")
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same data.")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Export date the year of cases ends on (default: today).")
@click.pass_context
def demo(ctx: click.Context, n_cases: int, seed: int, as_of: datetime | None) -> None:
    """生成演示数据 / build a demo store: grid, stations and synthetic cases (marked 演示数据)."""
    day: date | None = as_of.date() if as_of else None
    click.echo(f"正在生成演示数据（{n_cases} 件，种子 {seed}）/ building demo data "
               f"({n_cases} cases, seed {seed}) …", err=True)
    summary = build_demo(ctx.obj["store"], n_cases=n_cases, seed=seed, as_of=day)
    for line in summary["reconciliations"]:
        click.echo(line)
    if summary["events"]:
        click.echo(f"更新带来的流转记录 {summary['events']} 条 / {summary['events']} lifecycle events "
                   "from updates")
    click.echo(f"演示库就绪：{summary['stations']} 个服务站点，{summary['cases']} 件信访件，"
               f"截至 {summary['as_of']}，用时 {summary['duration_s']:.1f} 秒 / demo store ready: "
               f"{summary['stations']} stations, {summary['cases']} cases as of {summary['as_of']}")


commands = [demo]
