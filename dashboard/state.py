"""The running app's store and settings: a tiny registry that :func:`dashboard.app.create_app` fills.

Pages and callbacks read the engine and settings from here at request time, never at import
time, so importing the dashboard loads nothing and tests can build an app on any store.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from geo.settings import Settings


@dataclass
class _Registry:
    engine: Engine | None = None
    settings: Settings | None = None


_REGISTRY = _Registry()


def register(engine: Engine, settings: Settings) -> None:
    """Make ``engine`` and ``settings`` the ones every callback uses."""
    _REGISTRY.engine = engine
    _REGISTRY.settings = settings


def engine() -> Engine:
    """Return the registered store (RuntimeError before create_app)."""
    if _REGISTRY.engine is None:
        raise RuntimeError("dashboard not initialised: call dashboard.app.create_app first")
    return _REGISTRY.engine


def settings() -> Settings:
    """Return the registered settings (RuntimeError before create_app)."""
    if _REGISTRY.settings is None:
        raise RuntimeError("dashboard not initialised: call dashboard.app.create_app first")
    return _REGISTRY.settings
