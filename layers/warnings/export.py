"""One row per warning, for ``gridgov warnings export`` and the dashboard's download.

The columns the issue names come first (id, rule, level, unit_code, period_start, period_end,
observed, expected, case_ids — semicolon-separated), then the Chinese labels, the statistics
and the state. The frame holds no personal data (warnings name cases, never people).
"""

from __future__ import annotations

import pandas as pd

from geo.codes import level_of
from geo.errors import CodeError, GridgovError
from geo.store import Store
from geo.vocab import CITY_CODE, WARNING_LEVELS, WARNING_STATES
from layers.units import names_of
from layers.warnings.definitions import RULES
from layers.warnings.storage import warnings_in

EXPORT_COLUMNS = (
    "id", "rule", "level", "unit_code", "period_start", "period_end", "observed", "expected",
    "case_ids", "rule_version", "rule_zh", "level_zh", "unit_name", "category", "statistic",
    "p_value", "q_value", "case_count", "reason", "state", "state_zh", "state_by", "state_at",
    "state_note", "active", "as_of",
)


def export_frame(store: Store, *, scope: str = CITY_CODE, level: str | None = None,
                 active_only: bool = True) -> pd.DataFrame:
    """Return the warnings of ``scope`` as export rows (:data:`EXPORT_COLUMNS`)."""
    try:
        level_of(scope)
    except CodeError as error:
        raise GridgovError(str(error)) from error
    if level is not None and level not in WARNING_LEVELS:
        raise GridgovError(f"未知的预警等级 {level!r}，可选 red / yellow / unknown level {level!r}")
    frame = warnings_in(store, scope, level=level, active_only=active_only)
    out = pd.DataFrame({
        "id": frame["warning_id"],
        "rule": frame["rule"],
        "level": frame["level"],
        "unit_code": frame["unit_code"],
        "period_start": frame["period_start"],
        "period_end": frame["period_end"],
        "observed": frame["observed"],
        "expected": frame["expected"],
        "case_ids": frame["case_ids"],
        "rule_version": frame["rule_version"],
        "rule_zh": frame["rule"].map(lambda r: RULES[r].label_zh if r in RULES else r),
        "level_zh": frame["level"].map(WARNING_LEVELS),
        "unit_name": names_of(store, frame["unit_code"]).to_numpy() if len(frame) else [],
        "category": frame["category"],
        "statistic": frame["statistic"],
        "p_value": frame["p_value"],
        "q_value": frame["q_value"],
        "case_count": frame["case_count"],
        "reason": frame["reason"],
        "state": frame["state"],
        "state_zh": frame["state"].map(WARNING_STATES),
        "state_by": frame["state_by"],
        "state_at": frame["state_at"],
        "state_note": frame["state_note"],
        "active": frame["active"],
        "as_of": frame["as_of"],
    }, columns=list(EXPORT_COLUMNS))
    return out.reset_index(drop=True)
