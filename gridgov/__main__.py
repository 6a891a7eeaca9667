"""``python -m gridgov`` runs the ``gridgov`` command (used to start child processes)."""

from gridgov.cli import main

main()
