"""``gridgov serve``: run the dashboard."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="地址 / address to bind")
@click.option("--port", default=8050, show_default=True, type=int, help="端口 / port")
@click.option("--debug", is_flag=True, help="开发模式（自动重载）/ Dash dev server with reload")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, debug: bool) -> None:
    """启动仪表盘 / Run the dashboard (waitress; --debug for the dev server)."""
    from dashboard.app import serve as run
    from geo.accounts import check_serving
    from geo.store import require_store

    store = ctx.obj["store"]
    require_store(store.engine)
    check_serving(store.engine, store.settings)  # before announcing an address
    click.echo(f"仪表盘 / dashboard: http://{host}:{port}/")
    run(store, host=host, port=port, debug=debug)


commands = [serve]
