"""The ``gridgov`` command: one root group, subcommands owned by each package.

The root reads the environment (``GRIDGOV_*``) and ``--db`` once, validates the settings,
builds the one :class:`geo.store.Store` and hands it to subcommands as ``ctx.obj["store"]``.
Errors gridgov raises on purpose (a bad setting included) are printed bilingually, without a
traceback, exit 1.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from geo.errors import GridgovError
from geo.settings import Settings
from geo.store import Store

COMMANDS = {
    "init": "geo.cli", "grid": "geo.cli", "settings": "geo.cli",
    "users": "geo.accounts_cli", "audit": "geo.accounts_cli", "apikeys": "geo.apikeys_cli",
    "ingest": "etl.cli", "reattach": "etl.cli", "correct": "etl.cli", "rejects": "etl.cli",
    "runs": "etl.cli",
    "demo": "etl.demo_cli",
    "metrics": "layers.cli", "cases": "layers.cli", "qr": "layers.qr_cli",
    "warnings": "layers.warnings.cli",
    "serve": "dashboard.cli",
}
"""Each subcommand and the module whose ``commands`` list holds it.

Imported only when that subcommand runs (click's lazy-loading pattern): ``gridgov serve``
then never loads the statistics and ETL libraries the other commands need, which keeps about
90 MB out of the serving process. A test checks this map against every module's list.
"""


class _Root(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = COMMANDS.get(name)
        if module is None:
            return None
        return next(c for c in importlib.import_module(module).commands if c.name == name)

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's own signature
        try:
            return super().invoke(ctx)
        except GridgovError as err:
            click.echo(f"错误 / error: {err}", err=True)
            problems = getattr(err, "problems", None)
            for problem in problems or []:
                click.echo(f"  - {problem}", err=True)
            ctx.exit(1)


@click.group(cls=_Root)
@click.option("--db", "db_url", envvar="GRIDGOV_DATABASE_URL", default=None,
              help="Store URL (default sqlite:///gridgov.db; or postgresql+psycopg://…). "
                   "Env: GRIDGOV_DATABASE_URL.")
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.pass_context
def main(ctx: click.Context, db_url: str | None, verbose: bool) -> None:
    """gridgov：广州信访网格治理看板 / grid-governance dashboard for petition work."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    store = Store.open(Settings.from_env(database_url=db_url))
    ctx.obj = {"store": store}
    ctx.call_on_close(store.dispose)
