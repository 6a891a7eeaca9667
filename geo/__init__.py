"""Foundation of gridgov: settings, errors, coordinate systems, the grid model and the store.

Nothing in ``geo`` imports ``etl``, ``layers`` or ``dashboard``.
"""
