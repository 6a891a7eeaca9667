"""The ``gridgov`` command line: assembles the subcommands each package owns."""
