"""Every setting is documented, and the environment is read only through from_env."""

import dataclasses
from pathlib import Path

from geo.settings import Settings, settings_markdown

DOC = Path(__file__).parents[2] / "docs" / "settings.md"


def test_every_setting_has_help_text_and_docs_are_current():
    for f in dataclasses.fields(Settings):
        assert f.metadata.get("help"), f"setting {f.name} has no help text"
    assert DOC.read_text(encoding="utf-8") == settings_markdown(), (
        "docs/settings.md is stale: run `gridgov settings --markdown > docs/settings.md`"
    )


def test_environment_and_overrides_apply_with_types():
    s = Settings.from_env({"GRIDGOV_NEAREST_MAX_M": "350", "GRIDGOV_MIN_CASES_FOR_RATE": "5"},
                          database_url="sqlite:///x.db", basemap=None)
    assert s.nearest_max_m == 350.0 and s.min_cases_for_rate == 5
    assert s.database_url == "sqlite:///x.db" and s.basemap == "osm"


def test_settings_survive_the_trip_to_a_child_process_environment():
    s = Settings(nearest_max_m=123.25, acceptance_days=9, basemap="none", mode="demo",
                 database_url="sqlite:///a b.db")
    assert Settings.from_env(s.to_env()) == s
    assert Settings.from_env(Settings().to_env()) == Settings()
