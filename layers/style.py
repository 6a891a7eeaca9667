"""How a metric looks on the map: class breaks, colour-blind-safe colours, legends, tooltips.

Rates and shares are classed for the units on screen by default (:func:`rate_breaks`: nested
quantiles of the shown units, rounded to 0.1 percentage point, a class only where a unit
falls), so eleven districts between 97.2 % and 98.0 % are told apart instead of sharing one
colour; the legend names the scheme and the city's value. The fixed breaks (e.g. <80 %,
80–90 %, 90–95 %, 95–98 %, ≥98 % for the assessment rates) stay one choice away (``fixed=True``,
the map's 固定分级), so a colour can mean the same thing on every screen and in every export.
Counts, densities, days and distances use quantile breaks over the units shown
(mapclassify's Quantiles rule, computed with numpy: importing mapclassify costs every server
process ~80 MB of scikit-learn), with integer labels for counts. No legend has an empty class.
Colours come from ColorBrewer's colour-blind-safe RdYlBu (rates: red = worse, blue = better,
whichever direction is better for the metric) and viridis (magnitudes: darker = more). The
output is plain data (hex colours, Chinese labels, a GeoJSON-like dict), so the Dash map
(dash-leaflet) and the standalone map export render the same thing; nothing here imports dash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

from layers.definitions import METRICS, MetricDef

NO_DATA_COLOUR = "#d9d9d9"
NOT_RANKABLE_OPACITY = 0.35
FILL_OPACITY = 0.75
RATE_COLOURS_BAD_TO_GOOD = ("#d7191c", "#fdae61", "#ffffbf", "#abd9e9", "#2c7bb6")
"""ColorBrewer RdYlBu (5 classes, colour-blind safe), worst class first."""
MAGNITUDE_COLOURS = ("#fde725", "#5ec962", "#21918c", "#3b528b", "#440154")
"""viridis (5 classes), least first: darker means more."""

FIXED_BREAKS: dict[str, tuple[float, ...]] = {
    "timely_acceptance": (0.80, 0.90, 0.95, 0.98),
    "on_time_completion": (0.80, 0.90, 0.95, 0.98),
    "first_time_resolution": (0.80, 0.90, 0.95, 0.98),
    "satisfaction": (0.80, 0.90, 0.95, 0.98),
    "participation": (0.50, 0.70, 0.85, 0.95),
    "repeat": (0.02, 0.05, 0.10, 0.20),
    "backlog_clearance": (0.30, 0.50, 0.70, 0.90),
    "local_resolution": (0.50, 0.70, 0.85, 0.95),
    "covered_area_share": (0.25, 0.50, 0.75, 0.95),
    "covered_pop_share": (0.25, 0.50, 0.75, 0.95),
}
"""Fixed class thresholds (fractions) for rates and shares; a value ≥ a threshold is above it."""


@dataclass(frozen=True)
class Legend:
    """Classes of one metric: thresholds, one colour and one Chinese label per class.

    Attributes
    ----------
    thresholds
        Inner class limits, ascending; ``len(colours) == len(thresholds) + 1``.
    left_closed
        True: a value equal to a threshold belongs to the class above it (fixed rate breaks,
        "80%–90%" includes 80 %); False: to the class below (quantile upper bounds).
    """

    metric: str
    title_zh: str
    thresholds: tuple[float, ...]
    colours: tuple[str, ...]
    labels_zh: tuple[str, ...]
    left_closed: bool
    no_data_colour: str = NO_DATA_COLOUR
    scheme_zh: str = ""
    """How the classes were made (固定分级 / 按当前单位分位数分级), for the legend."""

    @property
    def breaks(self) -> tuple[float, ...]:
        """The inner class limits (the name map builders use for :attr:`thresholds`)."""
        return self.thresholds

    def class_of(self, values: Any) -> np.ndarray:
        """Return each value's class index (-1 for missing values)."""
        x = np.asarray(values, dtype=float)
        side = "right" if self.left_closed else "left"
        classes = np.searchsorted(np.asarray(self.thresholds, dtype=float), x, side=side)
        return np.where(np.isnan(x), -1, classes)

    def colour_of(self, values: Any) -> list[str]:
        """Return each value's fill colour (grey for missing values)."""
        return [self.colours[c] if c >= 0 else self.no_data_colour for c in self.class_of(values)]


def classify(metrics_df: pd.DataFrame, metric: str, *, k: int = 5, fixed: bool = False
             ) -> Legend:
    """Build the legend of one metric for the units in ``metrics_df``.

    Parameters
    ----------
    metrics_df
        Output of :func:`layers.metrics.compute_metrics` (only ``row_type == 'unit'`` rows set
        the breaks; the city and unassigned rows are not on the map).
    metric
        A key of :data:`layers.definitions.METRICS`.
    k
        Number of classes at most.
    fixed
        Rates and shares: use their fixed thresholds (:data:`FIXED_BREAKS`) rather than
        breaks for the units shown.
    """
    definition = _definition(metric)
    if definition.kind == "flag":
        colours = (RATE_COLOURS_BAD_TO_GOOD[0], RATE_COLOURS_BAD_TO_GOOD[-1])
        return Legend(metric, _title(definition), (0.5,), colours, ("否", "是"), True)
    if metric in FIXED_BREAKS and fixed:
        return _fixed_legend(definition)
    values = _unit_values(metrics_df, metric)
    if metric in FIXED_BREAKS:
        return _shown_rate_legend(definition, values, k=k)
    return _quantile_legend(definition, values, k=k)


def rate_breaks(values: np.ndarray, *, k: int = 5) -> tuple[tuple[float, ...], int]:
    """Thresholds separating the shown units' rates, and the percent decimals to label them.

    Nested quantiles of the values (k classes at most), rounded to 0.1 percentage point (or
    0.01 when that would merge classes), keeping a threshold only where units lie on both
    sides of it: every class holds a unit, and three distinct values make three classes.
    A value equal to a threshold belongs to the class above it.
    """
    distinct = np.unique(values[~np.isnan(values)])
    if len(distinct) < 2:
        return (), 1
    classes = min(k, len(distinct))
    inner = np.percentile(distinct, np.linspace(0, 100, classes + 1)[1:-1])
    best: tuple[float, ...] = ()
    for digits in (3, 4, 6):
        candidates = sorted({round(float(t), digits) for t in inner})
        kept = _separating(candidates, distinct)
        if len(kept) > len(best):
            best = tuple(kept)
        if len(best) == classes - 1:
            return best, max(1, digits - 2)
    return best, 4


def _separating(thresholds: list[float] | tuple[float, ...], values: np.ndarray, *,
                left_closed: bool = True) -> list[float]:
    """The ascending thresholds that leave a value in every class (and one above the last).

    ``left_closed``: a value equal to a threshold is in the class above (rates), else in
    the class below (quantile upper bounds).
    """
    kept: list[float] = []
    low = -np.inf
    for t in thresholds:
        if left_closed:
            below, above = (values >= low) & (values < t), values >= t
        else:
            below, above = (values > low) & (values <= t), values > t
        if below.any() and above.any():
            kept.append(t)
            low = t
    return kept


def legend_entries(legend: Legend, *, include_no_data: bool = True) -> list[dict[str, Any]]:
    """Return the legend as rows {colour, label, opacity} for any renderer, best read top-down."""
    entries = [
        {"colour": colour, "label": label, "opacity": FILL_OPACITY}
        for colour, label in zip(legend.colours, legend.labels_zh, strict=True)
    ]
    if include_no_data:
        entries.append({"colour": legend.no_data_colour, "label": "无数据", "opacity": FILL_OPACITY})
    if _definition(legend.metric).kind == "rate":
        entries.append({"colour": "#ffffff", "label": "浅色：样本不足，不参与排名",
                        "opacity": NOT_RANKABLE_OPACITY})
    return entries


def format_value(metric: str, value: Any) -> str:
    """Format a metric value for Chinese display ("95.2%", "1,234 件", "3.5 天", "—")."""
    definition = _definition(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "—"
    if definition.kind in ("rate", "share"):
        return f"{float(value) * 100:.1f}%"
    if definition.kind == "flag":
        return "是" if bool(value) else "否"
    if definition.kind == "count":
        return f"{int(value):,} {definition.unit}"
    if definition.kind == "distance":
        return f"{float(value):,.0f} 米"
    return f"{float(value):,.2f} {definition.unit}".strip()


def tooltip_text(row: dict[str, Any], metric: str) -> str:
    """Chinese tooltip for one unit: name, value, 分子/分母, and the caveats a reader needs."""
    definition = _definition(metric)
    lines = [str(row.get("name") or row.get("code") or "")]
    lines.append(f"{definition.label_zh}：{format_value(metric, row.get(metric))}")
    num, den = row.get(f"{metric}_num"), row.get(f"{metric}_den")
    if num is not None and den is not None and not _missing(den):
        lines.append(f"分子/分母：{int(num):,}/{int(den):,}")
    rankable = row.get(f"{metric}_rankable")
    if not _missing(rankable) and not bool(rankable):
        n = "" if _missing(den) else f"（仅 {int(den):,} 件）"
        lines.append(f"样本不足{n}，比率仅供参考，不参与排名（颜色较浅）")
    if metric == "cases_per_10k" and bool(row.get("population_estimated")):
        lines.append("人口为估算值")
    if row.get("geometry_source") == "generated":
        lines.append("示意边界")
    return "\n".join(lines)


def map_features(units_web_gdf: Any, metrics_df: pd.DataFrame, metric: str, *,
                 legend: Legend | None = None) -> dict[str, Any]:
    """Return a GeoJSON FeatureCollection of the units, styled for one metric.

    Parameters
    ----------
    units_web_gdf
        GeoDataFrame of units in EPSG:4326 (``read_units(..., web=True)``), with ``code``.
    metrics_df
        Output of :func:`layers.metrics.compute_metrics` for the same level.
    metric
        The metric to colour by.
    legend
        The classes to colour with (default: :func:`classify` of ``metrics_df``).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...], "legend": [...], "metric": ...}``;
        each feature's properties: code, name, value, num, den, rankable, class, label
        (Chinese tooltip as plain text, one line per fact), fill (hex colour), fillOpacity.
        NaN becomes None
        so the dict is JSON-safe.
    """
    legend = legend or classify(metrics_df, metric)
    table, has_metric = _joined(units_web_gdf, metrics_df, metric)
    values = pd.to_numeric(pd.Series([row.get(metric) for row in table], dtype=object),
                           errors="coerce") if has_metric else None
    colours = legend.colour_of(values) if values is not None else [NO_DATA_COLOUR] * len(table)
    classes = legend.class_of(values) if values is not None else np.full(len(table), -1)
    geometries = units_web_gdf.geometry.to_numpy()
    features = []
    for i, row in enumerate(table):
        rankable = row.get(f"{metric}_rankable")
        rankable = None if _missing(rankable) else bool(rankable)
        properties = {
            "code": row["code"],
            "name": row.get("name"),
            "value": _json_value(row.get(metric)),
            "num": _json_value(row.get(f"{metric}_num")),
            "den": _json_value(row.get(f"{metric}_den")),
            "rankable": rankable,
            "class": int(classes[i]),
            "label": tooltip_text(row, metric),
            "fill": colours[i],
            "fillOpacity": NOT_RANKABLE_OPACITY if rankable is False else FILL_OPACITY,
        }
        features.append({
            "type": "Feature",
            "id": row["code"],
            "geometry": None if geometries[i] is None else shapely.geometry.mapping(geometries[i]),
            "properties": properties,
        })
    return {
        "type": "FeatureCollection",
        "features": features,
        "metric": metric,
        "legend": legend_entries(legend),
        "title": legend.title_zh,
        "scheme": legend.scheme_zh,
    }


# --------------------------------------------------------------------------- private helpers


def _definition(metric: str) -> MetricDef:
    try:
        return METRICS[metric]
    except KeyError:
        raise KeyError(
            f"未知指标 {metric!r}；可选：{', '.join(METRICS)} / unknown metric {metric!r}"
        ) from None


def _title(definition: MetricDef) -> str:
    return f"{definition.label_zh}（{definition.unit}）" if definition.unit else definition.label_zh


def _fixed_legend(definition: MetricDef) -> Legend:
    thresholds = FIXED_BREAKS[definition.key]
    percent = [f"{t * 100:g}%" for t in thresholds]
    labels = [f"<{percent[0]}"]
    labels += [f"{low}–{high}" for low, high in zip(percent[:-1], percent[1:], strict=True)]
    labels.append(f"≥{percent[-1]}")
    colours = RATE_COLOURS_BAD_TO_GOOD
    if definition.higher_is_better is False:
        colours = colours[::-1]
    return Legend(definition.key, _title(definition), thresholds, colours, tuple(labels), True,
                  scheme_zh="分级：固定分级（各页面颜色含义相同）")


def _shown_rate_legend(definition: MetricDef, values: np.ndarray, *, k: int) -> Legend:
    thresholds, digits = rate_breaks(values, k=k)
    percent = [f"{t * 100:.{digits}f}%" for t in thresholds]
    if percent:
        labels = [f"<{percent[0]}"]
        labels += [f"{low}–{high}" for low, high in zip(percent[:-1], percent[1:], strict=True)]
        labels.append(f"≥{percent[-1]}")
    else:
        labels = ["全部" if len(values) else "无数据"]
    colours = _spread(RATE_COLOURS_BAD_TO_GOOD, len(thresholds) + 1)
    if definition.higher_is_better is False:
        colours = colours[::-1]
    return Legend(definition.key, _title(definition), thresholds, colours, tuple(labels), True,
                  scheme_zh="分级：按当前单位分位数（颜色只在本图内比较）")


def _unit_values(metrics_df: pd.DataFrame, metric: str) -> np.ndarray:
    """The shown units' values; for a rate, those with enough cases when three such differ."""
    rows = metrics_df
    if "row_type" in rows:
        rows = rows[rows["row_type"] == "unit"]
    if metric not in rows:
        return np.array([], dtype=float)
    values = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype=float)
    rankable = f"{metric}_rankable"
    if rankable in rows:
        enough = rows[rankable].fillna(False).astype(bool).to_numpy()
        if len(np.unique(values[enough & ~np.isnan(values)])) >= 3:
            values = values[enough]
    return values[~np.isnan(values)]


def _quantile_legend(definition: MetricDef, values: np.ndarray, *, k: int) -> Legend:
    uppers: list[float] = []
    if len(np.unique(values)) >= 2:
        bins = quantile_bins(values, k=min(k, len(np.unique(values))))
        if definition.kind == "count":  # whole cases: classes 1–4, 5–9, not 4.5–9.25
            bins = np.floor(bins)
        uppers = sorted({float(b) for b in bins})
    # an upper bound is kept only where units lie on both sides of it (no empty class)
    thresholds = tuple(_separating(uppers[:-1], values, left_closed=False))
    colours = _spread(MAGNITUDE_COLOURS, len(thresholds) + 1)
    if definition.higher_is_better is True:
        colours = colours[::-1]
    labels = _range_labels(thresholds, definition)
    return Legend(definition.key, _title(definition), thresholds, colours, labels, False,
                  scheme_zh="分级：按当前单位分位数")


def quantile_bins(values: np.ndarray, *, k: int) -> np.ndarray:
    """Upper bounds of ``k`` quantile classes, as mapclassify.Quantiles computes them.

    The q-th percentiles for q = 100/k, 200/k … 100 (linear interpolation), duplicates
    dropped, so tied values never make an empty class.
    """
    step = 100.0 / k
    percentiles = np.minimum(np.arange(step, 100.0 + step / 2, step), 100.0)
    return np.unique(np.percentile(values, percentiles))


def _spread(palette: tuple[str, ...], n: int) -> tuple[str, ...]:
    if n >= len(palette):
        return palette
    picks = np.round(np.linspace(0, len(palette) - 1, n)).astype(int)
    return tuple(palette[i] for i in picks)


def _range_labels(thresholds: tuple[float, ...], definition: MetricDef) -> tuple[str, ...]:
    if not thresholds:
        return ("全部",)
    text = [_short_number(t, definition) for t in thresholds]
    labels = [f"≤{text[0]}"]
    for low, high, high_text in zip(thresholds[:-1], thresholds[1:], text[1:], strict=True):
        if definition.kind == "count":  # (low, high] in whole cases
            first = _short_number(low + 1, definition)
            labels.append(high_text if low + 1 == high else f"{first}–{high_text}")
        else:
            labels.append(f"{_short_number(low, definition)}–{high_text}")
    labels.append(f">{text[-1]}")
    return tuple(labels)


def _short_number(value: float, definition: MetricDef) -> str:
    if definition.kind == "count" or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _joined(units: Any, metrics_df: pd.DataFrame, metric: str) -> tuple[list[dict], bool]:
    """Each unit's record with the columns of ``metric`` a feature shows; is the metric there?

    Only those columns, by a lookup per code rather than a frame merge: the metrics table has
    some hundred columns, and merging it into records was most of the map callback (py-spy of
    bench/bench_load.py). A unit without a metrics row has its own columns only.
    """
    own = {column: units[column].tolist() for column in ("code", "name", "geometry_source")
           if column in units}
    wanted = [c for c in ("code", *feature_columns(metric))
              if c in metrics_df and (c == "code" or c not in own)]
    rows = metrics_df[[*wanted, "row_type"] if "row_type" in metrics_df else wanted]
    if "row_type" in rows:
        rows = rows[rows["row_type"].isin(["unit", "parent"])].drop_duplicates("code")
        rows = rows.drop(columns="row_type")
    found = {row["code"]: row for row in rows.to_dict("records")}
    records = []
    for i, code in enumerate(own["code"]):
        record = {column: values[i] for column, values in own.items()}
        record.update(found.get(code, ()))
        records.append(record)
    return records, metric in rows


def feature_columns(metric: str) -> tuple[str, ...]:
    """The columns of a metrics row that a map feature of ``metric`` shows (see _joined)."""
    return (*_FEATURE_COLUMNS, *(f"{metric}{suffix}" for suffix in _METRIC_SUFFIXES))


_FEATURE_COLUMNS = ("name", "geometry_source", "population_estimated")
"""Columns of a unit's metrics row a feature's tooltip may read besides the metric's own."""
_METRIC_SUFFIXES = ("", "_num", "_den", "_rankable")


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _json_value(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
