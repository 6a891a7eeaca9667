"""``gridgov demo``: a complete synthetic demo store in one command."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import click

from etl.demo import build_demo
from geo.accounts_cli import echo_demo_accounts


@click.command()
@click.option("--cases", "n_cases", type=click.IntRange(0, 20_000_000), default=200_000,
              show_default=True, help="Synthetic cases to generate (a year of them; over a "
                                      "million: drawn and loaded a million at a time).")
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same data.")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Export date the year of cases ends on (default: today).")
@click.option("--events/--no-events", default=True, show_default=True,
              help="Inject the early-warning story (collective petition, surge, repeat "
                   "petitioner, hot villages, 越级 case) on top of the background cases.")
@click.option("--manifest", "manifest", default="demo-events.json", show_default=True,
              type=click.Path(dir_okay=False), help="Where to write what was injected (JSON).")
@click.pass_context
def demo(ctx: click.Context, n_cases: int, seed: int, as_of: datetime | None, events: bool,
         manifest: str) -> None:
    """生成演示数据 / build a demo store: grid, stations and synthetic cases (marked 演示数据)."""
    day: date | None = as_of.date() if as_of else None
    click.echo(f"正在生成演示数据（{n_cases} 件，种子 {seed}）/ building demo data "
               f"({n_cases} cases, seed {seed}) …", err=True)
    summary = build_demo(ctx.obj["store"], n_cases=n_cases, seed=seed, as_of=day, events=events)
    for line in summary["reconciliations"]:
        click.echo(line)
    if summary["lifecycle_events"]:
        click.echo(f"更新带来的流转记录 {summary['lifecycle_events']} 条 / "
                   f"{summary['lifecycle_events']} lifecycle events from updates")
    if events:
        Path(manifest).write_text(json.dumps({"as_of": summary["as_of"], "seed": seed,
                                              "events": summary["events"]},
                                             ensure_ascii=False, indent=1), encoding="utf-8")
        click.echo(f"已注入 {len(summary['events'])} 个预警演示事件，清单见 {manifest} / injected "
                   f"{len(summary['events'])} warning events, manifest in {manifest}")
        click.echo(f"另有 {len(summary['street_level_cases'])} 件地址仅到镇街的信访件，待街道视图"
                   f"“待更正落格”处理 / {len(summary['street_level_cases'])} cases whose address "
                   "names only the street, for the street view's correction list")
    click.echo(f"演示库就绪：{summary['stations']} 个服务站点，{summary['cases']} 件信访件，"
               f"截至 {summary['as_of']}，用时 {summary['duration_s']:.1f} 秒 / demo store ready: "
               f"{summary['stations']} stations, {summary['cases']} cases as of {summary['as_of']}")
    if n_cases:
        echo_demo_accounts(ctx.obj["store"])


commands = [demo]
