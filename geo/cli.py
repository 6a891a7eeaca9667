"""CLI commands of the foundation: ``init``, ``grid check|export|import``, ``settings``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd

from geo.boundaries import IMPORTABLE_LEVELS, import_boundaries
from geo.grid import check_store, init_store, web_copy_sizes
from geo.settings import Settings, settings_markdown
from geo.store import read_units, require_store
from geo.vocab import CRS_SYSTEMS, LEVEL_NAMES_ZH, LEVELS

EXPORT_COLUMNS = ["code", "name", "level", "parent_code", "area_km2", "population",
                  "population_estimated", "geometry_source", "boundary_version"]


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """建库并载入广州网格 / create or migrate the store and load the bundled grid (idempotent)."""
    engine = ctx.obj["store"].engine
    result = init_store(engine)
    where = engine.url.render_as_string(hide_password=True)
    if result.loaded:
        click.echo(f"已载入广州网格（边界版本 {result.version}）/ loaded the Guangzhou grid "
                   f"(boundary version {result.version}) into {where}")
    else:
        click.echo(f"数据库已是最新，网格已存在（边界版本 {result.version}）/ store is up to date, "
                   f"grid already loaded (boundary version {result.version}): {where}")


@click.group()
def grid() -> None:
    """网格：检查、导出、导入边界 / the grid: check, export, import boundaries."""


@grid.command("check")
@click.pass_context
def grid_check(ctx: click.Context) -> None:
    """校验网格 / validate the grid; exit 1 if anything is wrong."""
    engine = ctx.obj["store"].engine
    require_store(engine)
    report = check_store(engine)
    for level in LEVELS:
        if level in report.counts:
            click.echo(f"{LEVEL_NAMES_ZH[level]} {level}: {report.counts[level]}")
    click.echo(f"缝隙 gaps: {report.gaps_km2:.4f} km²   重叠 overlaps: {report.overlaps_km2:.4f} km²")
    for row in web_copy_sizes(engine).itertuples(index=False):
        click.echo(f"地图简化副本 map copy {row.level}: {row.web_vertices:,}/{row.vertices:,} 顶点 "
                   f"vertices, GeoJSON {row.web_geojson_bytes / 1e6:.2f} MB")
    if report.ok:
        click.echo("网格有效：无无效边界，代码全部嵌套 / grid OK: nothing invalid, every code nested")
        return
    click.echo(f"发现 {len(report.problems)} 个问题 / {len(report.problems)} problem(s):")
    for problem in report.problems:
        click.echo(f"  - {problem}")
    ctx.exit(1)


@grid.command("export")
@click.option("--level", type=click.Choice(LEVELS), required=True)
@click.option("--format", "fmt", type=click.Choice(["geojson", "csv"]), default="geojson")
@click.option("--web", is_flag=True, help="Export the simplified map geometry.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (default: standard output).")
@click.pass_context
def grid_export(ctx: click.Context, level: str, fmt: str, web: bool, output: Path | None) -> None:
    """导出某级网格 / export one level of the grid as GeoJSON or CSV (geometry as WKT)."""
    engine = ctx.obj["store"].engine
    require_store(engine)
    units = read_units(engine, level=level, web=web)[EXPORT_COLUMNS + ["geometry"]]
    if fmt == "geojson":
        text = units.to_json(ensure_ascii=False, drop_id=True)
    else:
        frame = pd.DataFrame(units.drop(columns="geometry"))
        frame["geometry"] = units.geometry.to_wkt()
        text = frame.to_csv(index=False)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"已导出 {len(units)} 个{LEVEL_NAMES_ZH[level]}级单元 / exported {len(units)} "
                   f"{level} units to {output}", err=True)


@grid.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--level", type=click.Choice(IMPORTABLE_LEVELS), required=True)
@click.option("--crs", "source_crs", type=click.Choice(CRS_SYSTEMS),
              default="wgs84", help="Coordinate system of a geographic file (AMap: gcj02).")
@click.pass_context
def grid_import(ctx: click.Context, file: Path, level: str, source_crs: str) -> None:
    """导入真实边界 / import real boundaries (Shapefile, GeoJSON, GeoPackage) for one level."""
    store = ctx.obj["store"]
    require_store(store.engine)
    result = import_boundaries(store.engine, file, level=level, source_crs=source_crs,
                               wait_s=store.settings.store_lock_wait_s)
    click.echo(f"已导入 {result.imported} 个单元，重新生成下级 {result.regenerated} 个，"
               f"边界版本 {result.version} / imported {result.imported} units, regenerated "
               f"{result.regenerated} generated children, boundary version {result.version}")


@click.command("settings")
@click.option("--markdown", is_flag=True, help="Print docs/settings.md.")
def settings_cmd(markdown: bool) -> None:
    """列出全部设置 / list every setting with its environment variable, default and meaning."""
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    for env, default, help_text in Settings.documentation():
        click.echo(f"{env} = {default!r}\n    {help_text}")


commands = [init, grid, settings_cmd]
