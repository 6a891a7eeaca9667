"""`gridgov serve`: options, and a clear message on a store that is not initialised."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dashboard.cli import commands, serve
from geo.errors import StoreError
from geo.settings import Settings
from geo.store import make_engine


def _group(engine) -> click.Group:
    @click.group()
    @click.pass_context
    def root(ctx: click.Context) -> None:
        ctx.obj = {"engine": engine, "settings": Settings(basemap="none")}

    for command in commands:
        root.add_command(command)
    return root


def test_serve_is_exposed_with_host_port_and_debug(tmp_path):
    assert commands == [serve]
    result = CliRunner().invoke(_group(make_engine(f"sqlite:///{tmp_path / 'x.db'}")),
                                ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--debug", "127.0.0.1", "8050"):
        assert option in result.output


def test_serve_refuses_an_uninitialised_store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    result = CliRunner().invoke(_group(engine), ["serve", "--port", "8999"])
    assert result.exit_code != 0
    assert isinstance(result.exception, StoreError)
    assert "gridgov init" in str(result.exception)


@pytest.mark.parametrize("module", ["dashboard.app", "dashboard.map", "dashboard.query"])
def test_importing_the_dashboard_loads_nothing(module):
    # in a fresh interpreter: in this one the browser tests' create_app has registered a store
    probe = (f"import {module}\n"
             "import pytest\n"
             "from dashboard import state\n"
             "with pytest.raises(RuntimeError, match='create_app'):\n"
             "    state.engine()\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parents[2],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
