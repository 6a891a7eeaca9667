"""Map styling: fixed rate breaks, quantile breaks, colours, Chinese tooltips, GeoJSON output."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from geo.settings import Settings
from geo.store import Store, read_units
from layers.metrics import compute_metrics
from layers.style import (
    MAGNITUDE_COLOURS,
    NO_DATA_COLOUR,
    RATE_COLOURS_BAD_TO_GOOD,
    classify,
    format_value,
    legend_entries,
    map_features,
)
from tests.layers.conftest import V1N, V1S, insert_cases
from tests.layers.test_metrics import _six_cases


def _frame(metric, values):
    return pd.DataFrame({"code": [str(i) for i in range(len(values))], "row_type": "unit",
                         metric: values})


def test_fixed_rate_breaks_are_left_closed():
    legend = classify(_frame("on_time_completion", [0.1, 0.2]), "on_time_completion", fixed=True)
    assert legend.labels_zh == ("<80%", "80%–90%", "90%–95%", "95%–98%", "≥98%")
    values = [0.7999, 0.80, 0.90, 0.95, 0.979, 0.98, 1.0, np.nan]
    assert list(legend.class_of(values)) == [0, 1, 2, 3, 3, 4, 4, -1]
    colours = legend.colour_of(values)
    assert colours[0] == RATE_COLOURS_BAD_TO_GOOD[0] and colours[-1] == NO_DATA_COLOUR
    # the same value gets the same colour whatever the other units are
    other = classify(_frame("on_time_completion", [0.99, 0.999]), "on_time_completion",
                     fixed=True)
    assert other.colour_of([0.85]) == legend.colour_of([0.85])


def test_lower_is_better_rates_run_the_other_way():
    legend = classify(_frame("repeat", [0.0]), "repeat", fixed=True)
    assert legend.colour_of([0.0])[0] == RATE_COLOURS_BAD_TO_GOOD[-1]  # no repeats: best colour
    assert legend.colour_of([0.5])[0] == RATE_COLOURS_BAD_TO_GOOD[0]


def test_counts_use_quantile_breaks():
    legend = classify(_frame("cases", list(range(1, 11))), "cases")
    assert len(legend.colours) == len(legend.thresholds) + 1 == 5
    assert legend.colours == MAGNITUDE_COLOURS
    assert list(legend.class_of([1, 10])) == [0, 4]
    assert legend.labels_zh[0].startswith("≤") and legend.labels_zh[-1].startswith(">")
    flat = classify(_frame("cases", [0, 0, 0]), "cases")
    assert flat.labels_zh == ("全部",) and list(flat.class_of([0])) == [0]


def test_legend_entries_and_formats():
    legend = classify(_frame("satisfaction", [0.9]), "satisfaction", fixed=True)
    labels = [e["label"] for e in legend_entries(legend)]
    assert labels[:5] == list(legend.labels_zh) and "无数据" in labels
    assert any("样本不足" in label for label in labels)
    assert format_value("satisfaction", 0.9523) == "95.2%"
    assert format_value("cases", 1234) == "1,234 件"
    assert format_value("nearest_centre_m", 812.4) == "812 米"
    assert format_value("satisfaction", float("nan")) == "—"
    with pytest.raises(KeyError, match="unknown metric"):
        classify(_frame("x", [1]), "no_such_metric")


def test_rates_are_classed_for_the_units_shown():
    # eleven districts between 97.2 % and 98.0 %: one colour with the fixed breaks
    values = [0.972, 0.9728, 0.9735, 0.974, 0.9749, 0.9755, 0.9762, 0.977, 0.978, 0.979, 0.980]
    legend = classify(_frame("on_time_completion", values), "on_time_completion")
    classes = legend.class_of(values)
    assert len(legend.colours) == 5 and set(classes) == set(range(5))  # no empty class
    assert legend.labels_zh[0] == "<97.4%" and legend.labels_zh[-1].startswith("≥97.")
    assert "当前单位" in legend.scheme_zh
    assert len(set(classify(_frame("on_time_completion", values), "on_time_completion",
                            fixed=True).class_of(values))) <= 2
    # three distinct values make three classes; lower-is-better runs the other way
    three = classify(_frame("repeat", [0.01, 0.02, 0.03]), "repeat")
    assert list(three.class_of([0.01, 0.02, 0.03])) == [0, 1, 2]
    assert three.colour_of([0.01])[0] == RATE_COLOURS_BAD_TO_GOOD[-1]
    assert classify(_frame("satisfaction", [0.9, 0.9]), "satisfaction").labels_zh == ("全部",)


def test_small_units_do_not_set_the_breaks_but_keep_their_colour():
    frame = _frame("satisfaction", [0.5, 0.90, 0.92, 0.94, 1.0])
    frame["satisfaction_rankable"] = [False, True, True, True, False]
    legend = classify(frame, "satisfaction")
    assert all(0.90 < t <= 0.94 for t in legend.thresholds)
    assert list(legend.class_of([0.5, 1.0])) == [0, len(legend.colours) - 1]


def test_count_labels_are_whole_ranges_without_empty_classes():
    legend = classify(_frame("cases", [1, 2, 3, 4, 4, 4, 4, 9, 30]), "cases")
    assert not any(label.split("–")[0] == label.split("–")[-1] and "–" in label
                   for label in legend.labels_zh), legend.labels_zh
    values = [1, 2, 3, 4, 4, 4, 4, 9, 30]
    assert set(legend.class_of(values)) == set(range(len(legend.colours)))


def test_map_features_for_the_tiny_grid(tiny_engine):
    insert_cases(tiny_engine, _six_cases())
    metrics = compute_metrics(Store(tiny_engine, Settings()), level="village", as_of=date(2025, 6, 30))
    units = read_units(tiny_engine, level="village", web=True)
    collection = map_features(units, metrics, "on_time_completion")
    json.dumps(collection)  # plain data, JSON-safe
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 8
    by_code = {f["properties"]["code"]: f for f in collection["features"]}
    v = by_code[V1S]["properties"]
    assert (v["value"], v["num"], v["den"]) == (0.75, 3, 4)
    assert v["fill"] == RATE_COLOURS_BAD_TO_GOOD[0] and v["rankable"] is False
    assert v["fillOpacity"] < 0.5
    for text in ("按期办结率：75.0%", "分子/分母：3/4", "样本不足（仅 4 件）", "示意边界"):
        assert text in v["label"]
    empty = by_code[V1N]["properties"]
    assert empty["value"] is None and empty["fill"] == NO_DATA_COLOUR
    assert by_code[V1S]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    per_10k = map_features(units, metrics, "cases_per_10k")
    assert "人口为估算值" in {f["properties"]["code"]: f for f in per_10k["features"]}[V1S][
        "properties"]["label"]


@pytest.mark.parametrize("metric", ["timely_acceptance", "on_time_completion",
                                    "first_time_resolution", "satisfaction", "participation",
                                    "repeat", "backlog_clearance", "local_resolution",
                                    "covered_pop_share", "covered_area_share"])
def test_every_rate_tells_eleven_close_districts_apart(metric):
    rng = np.random.default_rng(len(metric))
    values = 0.96 + rng.uniform(0, 0.012, 11)  # 96.0 %–97.2 %: one fixed class
    legend = classify(_frame(metric, values), metric)
    classes = legend.class_of(values)
    assert len(set(classes)) >= 3 and set(classes) == set(range(len(legend.colours)))
    assert len(legend.labels_zh) == len(legend.colours)


def test_the_legend_names_its_scheme():
    frame = _frame("satisfaction", [0.9, 0.95])
    assert "固定分级" in classify(frame, "satisfaction", fixed=True).scheme_zh
    assert "当前单位" in classify(frame, "satisfaction").scheme_zh
    assert "当前单位" in classify(_frame("cases", [1, 5]), "cases").scheme_zh
