"""What the map shows: per-unit metrics (density, coverage, resolution) and their styling."""
