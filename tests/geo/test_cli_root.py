"""The ``gridgov`` root loads a subcommand's module only when that subcommand runs."""

import importlib
import subprocess
import sys

from gridgov.cli import COMMANDS


def test_every_subcommand_is_in_the_lazy_map_and_nothing_else():
    listed = {}
    for module in set(COMMANDS.values()):
        for command in importlib.import_module(module).commands:
            listed[command.name] = module
    assert listed == COMMANDS


def test_serve_loads_neither_the_statistics_nor_the_etl():
    code = ("import sys; from gridgov.cli import main; main.get_command(None, 'serve'); "
            "import dashboard.app, layers.warnings.microscope, layers.warnings.views; "
            "print(sorted(({m.split('.')[0] for m in sys.modules} & "
            "{'esda', 'libpysal', 'sklearn', 'etl', 'docx', 'alembic', 'scipy', 'geoalchemy2'}) | "
            "({'scipy.stats'} & set(sys.modules))))")  # scipy.stats 60 MB, .special 13 MB
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
