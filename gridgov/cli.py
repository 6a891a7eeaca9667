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

COMMAND_MODULES = ("geo.cli", "geo.accounts_cli", "etl.cli", "etl.demo_cli", "layers.cli",
                   "layers.warnings.cli", "dashboard.cli")
"""Modules that expose ``commands``: a list of click commands to register."""


class _Root(click.Group):
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


def _register() -> None:
    for name in COMMAND_MODULES:
        for command in importlib.import_module(name).commands:
            main.add_command(command)


_register()
