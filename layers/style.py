"""How a metric looks on the map: class breaks, colour-blind-safe colours, legends, tooltips.

Rates use fixed breaks (e.g. <80 %, 80–90 %, 90–95 %, 95–98 %, ≥98 % for the assessment rates),
so a colour means the same thing on every screen and in every export; counts, densities, days
and distances use quantile breaks over the units shown (mapclassify's Quantiles rule, computed
with numpy: importing mapclassify costs every server process ~80 MB of scikit-learn). Colours come from
ColorBrewer's colour-blind-safe RdYlBu (rates: red = worse, blue = better, whichever direction
is better for the metric) and viridis (magnitudes: darker = more). The output is plain data
(hex colours, Chinese labels, a GeoJSON-like dict), so the Dash map (dash-leaflet) and the
standalone map export render the same thing; nothing here imports dash.
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


def classify(metrics_df: pd.DataFrame, metric: str, *, k: int = 5) -> Legend:
    """Build the legend of one metric for the units in ``metrics_df``.

    Parameters
    ----------
    metrics_df
        Output of :func:`layers.metrics.compute_metrics` (only ``row_type == 'unit'`` rows set
        quantile breaks; the city and unassigned rows are not on the map).
    metric
        A key of :data:`layers.definitions.METRICS`.
    k
        Number of quantile classes for magnitudes (rates always use their fixed breaks).
    """
    definition = _definition(metric)
    if definition.kind == "flag":
        colours = (RATE_COLOURS_BAD_TO_GOOD[0], RATE_COLOURS_BAD_TO_GOOD[-1])
        return Legend(metric, _title(definition), (0.5,), colours, ("否", "是"), True)
    if metric in FIXED_BREAKS:
        return _fixed_legend(definition)
    values = _unit_values(metrics_df, metric)
    return _quantile_legend(definition, values, k=k)


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
        lines.append("样本不足，不参与排名")
    if metric == "cases_per_10k" and bool(row.get("population_estimated")):
        lines.append("人口为估算值")
    if row.get("geometry_source") == "generated":
        lines.append("示意边界")
    return "\n".join(lines)


def map_features(units_web_gdf: Any, metrics_df: pd.DataFrame, metric: str) -> dict[str, Any]:
    """Return a GeoJSON FeatureCollection of the units, styled for one metric.

    Parameters
    ----------
    units_web_gdf
        GeoDataFrame of units in EPSG:4326 (``read_units(..., web=True)``), with ``code``.
    metrics_df
        Output of :func:`layers.metrics.compute_metrics` for the same level.
    metric
        The metric to colour by.

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...], "legend": [...], "metric": ...}``;
        each feature's properties: code, name, value, num, den, rankable, class, label
        (Chinese tooltip as plain text, one line per fact), fill (hex colour), fillOpacity.
        NaN becomes None
        so the dict is JSON-safe.
    """
    legend = classify(metrics_df, metric)
    table = _joined(units_web_gdf, metrics_df)
    values = pd.to_numeric(table[metric], errors="coerce") if metric in table else None
    colours = legend.colour_of(values) if values is not None else [NO_DATA_COLOUR] * len(table)
    classes = legend.class_of(values) if values is not None else np.full(len(table), -1)
    geometries = units_web_gdf.geometry.to_numpy()
    features = []
    for i, row in enumerate(table.to_dict("records")):
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
    return Legend(definition.key, _title(definition), thresholds, colours, tuple(labels), True)


def _unit_values(metrics_df: pd.DataFrame, metric: str) -> np.ndarray:
    rows = metrics_df
    if "row_type" in rows:
        rows = rows[rows["row_type"] == "unit"]
    if metric not in rows:
        return np.array([], dtype=float)
    values = pd.to_numeric(rows[metric], errors="coerce").to_numpy(dtype=float)
    return values[~np.isnan(values)]


def _quantile_legend(definition: MetricDef, values: np.ndarray, *, k: int) -> Legend:
    uppers: list[float] = []
    if len(np.unique(values)) >= 2:
        bins = quantile_bins(values, k=min(k, len(np.unique(values))))
        uppers = sorted({float(b) for b in bins})
    thresholds = tuple(uppers[:-1])
    colours = _spread(MAGNITUDE_COLOURS, len(thresholds) + 1)
    if definition.higher_is_better is True:
        colours = colours[::-1]
    labels = _range_labels(thresholds, definition)
    return Legend(definition.key, _title(definition), thresholds, colours, labels, False)


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
    labels += [f"{low}–{high}" for low, high in zip(text[:-1], text[1:], strict=True)]
    labels.append(f">{text[-1]}")
    return tuple(labels)


def _short_number(value: float, definition: MetricDef) -> str:
    if definition.kind == "count" or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _joined(units: Any, metrics_df: pd.DataFrame) -> pd.DataFrame:
    left = pd.DataFrame({"code": units["code"].to_numpy()})
    for column in ("name", "geometry_source"):
        if column in units:
            left[column] = units[column].to_numpy()
    rows = metrics_df
    if "row_type" in rows:
        rows = rows[rows["row_type"].isin(["unit", "parent"])].drop_duplicates("code")
    rows = rows.drop(columns=[c for c in ("name", "geometry_source") if c in left and c in rows])
    return left.merge(rows, on="code", how="left")


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _json_value(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
