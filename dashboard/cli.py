"""``gridgov serve``: run the dashboard."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="地址 / address to bind")
@click.option("--port", default=8050, show_default=True, type=int, help="端口 / port")
@click.option("--debug", is_flag=True, help="开发模式（自动重载）/ Dash dev server with reload")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="服务进程数，0 = 每核两个 / server processes, 0 = two per core "
                   "(default: GRIDGOV_WORKERS, 0)")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, debug: bool, workers: int | None) -> None:
    """启动仪表盘 / Run the dashboard (gunicorn workers or one waitress process; --debug: dev server)."""
    from dashboard.app import serve as run
    from dashboard.workers import resolve_workers
    from geo.accounts import check_serving
    from geo.store import require_store

    store = ctx.obj["store"]
    require_store(store.engine)
    check_serving(store.engine, store.settings)  # before announcing an address
    count = 1 if debug else resolve_workers(store.settings.workers if workers is None else workers)
    click.echo(f"仪表盘 / dashboard: http://{host}:{port}/ （{count} 个进程 / "
               f"{count} process{'es' if count > 1 else ''}）")
    run(store, host=host, port=port, debug=debug, workers=count)


commands = [serve]
