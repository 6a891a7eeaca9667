"""`gridgov serve`: options, and a clear message on a store that is not initialised."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.cli import commands, serve
from geo.store import make_engine
from tests.conftest import run_cli


def test_serve_is_exposed_with_host_port_and_debug(tmp_path):
    assert commands == [serve]
    result = run_cli(make_engine(f"sqlite:///{tmp_path / 'x.db'}"), ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--debug", "127.0.0.1", "8050"):
        assert option in result.output


def test_serve_refuses_an_uninitialised_store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    result = run_cli(engine, ["serve", "--port", "8999"])
    assert result.exit_code == 1
    assert "gridgov init" in result.output and "Traceback" not in result.output


def test_a_bad_setting_stops_start_up_with_a_bilingual_message(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    for variable, value, allowed in (("GRIDGOV_NEAREST_MAX_M", "abc", "0 – 5000"),
                                     ("GRIDGOV_BASEMAP", "amapp", "osm / amap")):
        result = run_cli(engine, ["serve"], **{variable: value})
        assert result.exit_code == 1, result.output
        assert f"{variable}={value}" in result.output and allowed in result.output
        assert "无效" in result.output and "invalid" in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("module", ["dashboard.app", "dashboard.map", "dashboard.query"])
def test_importing_the_dashboard_loads_nothing(module):
    # in a fresh interpreter: in this one the browser tests' create_app has registered a store
    probe = (f"import {module}\n"
             "import pytest\n"
             "from dashboard import state\n"
             "with pytest.raises(RuntimeError, match='create_app'):\n"
             "    state.store()\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parents[2],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
