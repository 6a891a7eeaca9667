"""One documented registry of settings, passed explicitly.

Library code receives a :class:`Settings` (or an engine) as an argument; only
entry points (the CLI, the Dash app factory) read the environment, through
:meth:`Settings.from_env`. Every field carries its help text so that
``docs/settings.md`` and ``gridgov settings`` can be generated from it, and a
test fails when a setting is undocumented.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "GRIDGOV_"


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Every tunable value of gridgov, with its default and its reason."""

    database_url: str = _setting(
        "sqlite:///gridgov.db",
        "Store URL: sqlite:///FILE (embedded default) or postgresql+psycopg://… (PostGIS).",
    )
    nearest_max_m: float = _setting(
        200.0,
        "A case point at most this many metres outside every cell is attached to the nearest "
        "cell (rivers, coastline, GPS noise) and flagged with the distance.",
    )
    default_deadline_days: int = _setting(
        60, "办理期限: days from 受理 to 办结 when the source gives no due date (信访工作条例 Art. 34)."
    )
    extension_days: int = _setting(
        30, "Days added to the deadline when an extension (延期) is approved (Art. 34)."
    )
    acceptance_days: int = _setting(
        15, "Days from 登记 within which 受理 counts as timely (及时受理, Art. 22/23)."
    )
    rating_window_days: int = _setting(
        30,
        "Days after 答复 during which the petitioner may rate; after that the rating state is "
        "超期未评价. The official window was not found (DOMAIN.md §7), hence a setting.",
    )
    min_cases_for_rate: int = _setting(
        10, "A unit with fewer cases than this gets no rate for ranking (too few to compare)."
    )
    coverage_radius_hall_m: float = _setting(
        1000.0, "Walking reach of a district petition hall (区信访超市), metres (DOMAIN.md §6)."
    )
    coverage_radius_centre_m: float = _setting(
        1000.0, "Walking reach of a street comprehensive-governance centre (镇街综治中心), metres."
    )
    coverage_radius_station_m: float = _setting(
        500.0, "Walking reach of a village service station (村居服务站), metres."
    )
    coverage_radius_mediation_m: float = _setting(
        500.0, "Walking reach of a people's mediation room (人民调解工作室), metres."
    )
    id_hash_salt: str = _setting(
        "gridgov-dev-salt",
        "Salt for hashing petitioners' ID numbers (身份证号). Set a secret value in production; "
        "changing it breaks repeat-petitioner matching across runs.",
    )
    basemap: str = _setting(
        "osm", "Dashboard basemap: osm, amap (GCJ-02, shifted), tianditu, or none (plain background)."
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``GRIDGOV_*`` environment variables, then explicit overrides.

        Returns
        -------
        Settings
            Defaults, replaced by any ``GRIDGOV_<FIELD>`` variable, replaced by ``overrides``
            whose value is not None.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = type(f.default)(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def documentation(cls) -> list[tuple[str, Any, str]]:
        """List (environment variable, default, help) for every setting."""
        return [
            (ENV_PREFIX + f.name.upper(), f.default, f.metadata.get("help", ""))
            for f in dataclasses.fields(cls)
        ]


def settings_markdown() -> str:
    """Render docs/settings.md from the registry (``gridgov settings --markdown``)."""
    lines = [
        "# Settings",
        "",
        "Generated from `geo/settings.py` by `gridgov settings --markdown > docs/settings.md`;",
        "a test fails when the two differ. Set any of these as an environment variable;",
        "`--db` on the command line overrides `GRIDGOV_DATABASE_URL`.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for env, default, help_text in Settings.documentation():
        lines.append(f"| `{env}` | `{default}` | {help_text} |")
    return "\n".join(lines) + "\n"
