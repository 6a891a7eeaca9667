"""What the dashboard shows of the warnings: lists, counts, one warning, the map's hot spots.

Screen assemblers over :mod:`layers.warnings.storage` (the stored records) and
:mod:`layers.warnings.hotspots` (the hot villages of the current data), so the callbacks stay
thin. Every function takes the unit a view is about as ``scope``; the accounts layer will
pass the user's scope instead (a user sees a unit and everything nested in it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from geo import schema
from geo.store import Store
from geo.vocab import CITY_CODE, WARNING_LEVELS, WARNING_OPEN_STATES, WARNING_STATES
from layers.units import names_of, units_frame
from layers.warnings.definitions import RULES
from layers.warnings.storage import counts_by_unit, on_revision, warning_record, warnings_in

MAP_RULES = ("collective_cluster", "collective_people", "repeat_petitioner")
"""Place-bound warnings drawn as points (clusters with their radius)."""
LIST_COLUMNS = ("id", "level", "level_zh", "rule", "rule_zh", "unit_code", "unit_name",
                "category", "period", "observed", "expected", "case_count", "reason", "state",
                "state_zh")


@dataclass
class WarningSummary:
    """Counts of a scope's active warnings: red, yellow, and those still new (未查看)."""

    red: int
    yellow: int
    new: int
    open: int


def warning_list(store: Store, scope: str = CITY_CODE, *, level: str | None = None,
                 rules: tuple[str, ...] = (), states: tuple[str, ...] = ()) -> pd.DataFrame:
    """The active warnings of a scope for a list: labels in Chinese, red first (:data:`LIST_COLUMNS`).

    Cached until the warnings change (a list is asked for on every filter click).
    """
    key = ("list", scope, level or None, tuple(rules), tuple(states))
    return on_revision(store, key, lambda: _list_frame(store, scope, level=level, rules=rules,
                                                       states=states))


def _list_frame(store: Store, scope: str, *, level: str | None, rules: tuple[str, ...],
                states: tuple[str, ...]) -> pd.DataFrame:
    frame = warnings_in(store, scope, level=level or None, rules=rules, states=states)
    out = pd.DataFrame({
        "id": frame["warning_id"],
        "level": frame["level"],
        "level_zh": frame["level"].map(WARNING_LEVELS),
        "rule": frame["rule"],
        "rule_zh": frame["rule"].map(lambda r: RULES[r].label_zh if r in RULES else r),
        "unit_code": frame["unit_code"],
        "unit_name": names_of(store, frame["unit_code"]).to_numpy() if len(frame) else [],
        "category": frame["category"],
        "period": _periods(frame["period_start"], frame["period_end"]),
        "observed": frame["observed"],
        "expected": frame["expected"],
        "case_count": frame["case_count"],
        "reason": frame["reason"],
        "state": frame["state"],
        "state_zh": frame["state"].map(WARNING_STATES),
    }, columns=list(LIST_COLUMNS))
    return out.reset_index(drop=True)


def summary(store: Store, scope: str = CITY_CODE) -> WarningSummary:
    """Red / yellow / new / open counts of a scope's active warnings."""
    return on_revision(store, ("summary", scope), lambda: _summary(store, scope))


def _summary(store: Store, scope: str) -> WarningSummary:
    frame = warnings_in(store, scope)
    return WarningSummary(
        red=int((frame["level"] == "red").sum()), yellow=int((frame["level"] == "yellow").sum()),
        new=int((frame["state"] == "new").sum()),
        open=int(frame["state"].isin(WARNING_OPEN_STATES).sum()))


def child_counts(store: Store, scope: str = CITY_CODE, *, level: str = "district"
                 ) -> pd.DataFrame:
    """Red and yellow open warnings of each unit of ``level`` inside ``scope`` (code, name, red, yellow)."""
    units = units_frame(store)
    chosen = units[units["level"] == level]
    if scope != CITY_CODE:
        from geo.codes import prefix_of

        chosen = chosen[chosen["code"].astype(str).str.startswith(prefix_of(scope))]
    codes = list(chosen["code"].astype(str))
    counts = counts_by_unit(store, codes)
    counts["name"] = names_of(store, counts["code"]).to_numpy() if len(counts) else []
    return counts[["code", "name", "red", "yellow"]]


def warning_detail(store: Store, warning_id: str, *, scope: str = CITY_CODE) -> dict | None:
    """One warning for its panel: labels, the case ids as a list, the state history."""
    record = warning_record(store, warning_id, scope=scope)
    if record is None:
        return None
    rule = RULES.get(record["rule"])
    record["rule_zh"] = rule.label_zh if rule else record["rule"]
    record["level_zh"] = WARNING_LEVELS.get(record["level"], record["level"])
    record["state_zh"] = WARNING_STATES.get(record["state"], record["state"])
    record["unit_name"] = names_of(store, pd.Series([record["unit_code"]])).iloc[0]
    record["case_id_list"] = [c for c in str(record["case_ids"] or "").split(";") if c]
    record["period"] = _period(record["period_start"], record["period_end"])
    return record


def hot_units(store: Store) -> dict[str, str]:
    """Code → 'hot' / 'emerging' of the hot villages found by the newest warnings run.

    Read from the run (``warning_run.hot_units``), not recomputed: Gi* needs esda, libpysal and
    scikit-learn, which stay out of the serving process (the run is a child process).
    """

    def build() -> dict[str, str]:
        t = schema.warning_run
        with store.engine.connect() as conn:
            text = conn.execute(sa.select(t.c.hot_units).where(t.c.status == "ok")
                                .order_by(t.c.run_id.desc()).limit(1)).scalar()
        return {str(k): str(v) for k, v in json.loads(text or "{}").items()}

    return on_revision(store, ("warning_hot_units",), build)


def map_points(store: Store, scope: str = CITY_CODE) -> pd.DataFrame:
    """Place-bound warnings of a scope (clusters, collective petitions, …) with a point.

    Returns
    -------
    pandas.DataFrame
        id, rule, rule_zh, level, lon, lat, radius_m, reason — only rows with a point; case
        reminders and 越级访 (a matter of level, not of place) are left out.
    """
    frame = warnings_in(store, scope)
    frame = frame[frame["lon"].notna() & frame["lat"].notna()
                  & frame["rule"].isin(list(MAP_RULES))]
    return pd.DataFrame({
        "id": frame["warning_id"], "rule": frame["rule"],
        "rule_zh": frame["rule"].map(lambda r: RULES[r].label_zh),
        "level": frame["level"], "lon": frame["lon"], "lat": frame["lat"],
        "radius_m": frame["radius_m"], "reason": frame["reason"],
    }).reset_index(drop=True)


def _periods(start: pd.Series, end: pd.Series) -> list[str]:
    a = pd.to_datetime(start).dt.strftime("%Y-%m-%d")
    b = pd.to_datetime(end).dt.strftime("%Y-%m-%d")
    return [x if x == y else f"{x} 至 {y}" for x, y in zip(a, b, strict=True)]


def _period(start: object, end: object) -> str:
    a, b = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    return a.isoformat() if a == b else f"{a.isoformat()} 至 {b.isoformat()}"
