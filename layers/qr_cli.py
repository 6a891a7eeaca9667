"""``gridgov qr``: print the QR-code poster of a village or street (信访受理二维码).

Thin: makes (or reuses) the unit's reporting point (:mod:`geo.reportpoints`) and draws its
poster (:mod:`layers.qrposter`). The URL is ``<base-url>/report/<token>``, the mobile form of the
running dashboard server (``dashboard.report``).
"""

from __future__ import annotations

from pathlib import Path

import click

from geo.reportpoints import ensure_point
from geo.store import require_store
from layers.qrposter import save_poster


@click.command("qr")
@click.option("--village", "village", default=None, help="村居代码 / village code (12 digits)")
@click.option("--street", "street", default=None, help="镇街代码 / street code (12 digits)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="海报文件 .png 或 .pdf（默认 qr-<代码>.png）/ poster file (.png or .pdf)")
@click.option("--base-url", default="http://127.0.0.1:8050", show_default=True,
              help="看板服务的公网地址 / the dashboard server's public address")
@click.pass_context
def qr(ctx: click.Context, village: str | None, street: str | None, output: Path | None,
       base_url: str) -> None:
    """生成村居或镇街的信访受理二维码海报 / make the QR-code reporting poster of a unit."""
    if (village is None) == (street is None):
        raise click.UsageError("请指定 --village 或 --street 之一 / give exactly one of --village "
                               "or --street")
    store = ctx.obj["store"]
    require_store(store.engine)
    code, level = (village, "village") if village else (street, "street")
    point = ensure_point(store.engine, code, level=level)
    url = f"{base_url.rstrip('/')}/report/{point.token}"
    path = save_poster(output or Path(f"qr-{code}.png"), url=url, unit_name=point.unit_name,
                       unit_code=code)
    click.echo(f"已生成 {point.unit_name} 的二维码海报 {path} / wrote the poster of "
               f"{point.unit_name} to {path}")
    click.echo(f"扫码地址 / URL: {url}")


commands = [qr]
