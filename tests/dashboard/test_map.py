"""Map builders on the tiny grid: the choropleth layer, overlays, basemaps and the standalone export."""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard import map as maps
from geo.crs import wgs84_to_gcj02
from geo.settings import Settings
from layers import views
from layers.filters import Filters
from layers.lists import case_list
from layers.points import case_points
from layers.rules import URGENCY

URGENCY_INDEX = {name: i for i, name in enumerate(URGENCY)}

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """Tiny grid with 400 demo cases and the demo stations (SQLite)."""
    from etl.demo import build_demo
    from geo.grid import load_units
    from geo.store import Store, make_engine, upgrade_schema
    from tests.grids import tiny_grid

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('map') / 'map.db'}")
    upgrade_schema(engine)
    load_units(engine, tiny_grid(), kind="bundled", note="tiny")
    build_demo(Store(engine, Settings()), n_cases=400, seed=5, as_of=AS_OF)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def store(engine):
    """The demo store drawn on a plain background."""
    from geo.store import Store

    return Store(engine, Settings(basemap="none"))


def _with(engine, **settings):
    from geo.store import Store

    return Store(engine, Settings(**settings))


def test_city_layer_shows_the_districts_with_tooltips(store):
    layer = maps.unit_layer(store, "440100000000", metric="on_time_completion",
                            filters=Filters())
    codes = sorted(f["properties"]["code"] for f in layer.features["features"])
    assert codes == ["440103000000", "440104000000"]
    assert layer.level == "district" and layer.metric_label == "按期办结率"
    assert all(f["properties"]["fill"].startswith("#") for f in layer.features["features"])
    assert layer.bounds == [[23.10, 113.30], [23.12, 113.34]]
    assert layer.extra["cases"] + layer.unassigned == 400


def test_drilling_into_a_street_shows_its_villages_marked_as_generated(store):
    layer = maps.unit_layer(store, "440103001000", metric="cases", filters=Filters())
    props = [f["properties"] for f in layer.features["features"]]
    assert sorted(p["code"] for p in props) == ["440103001001", "440103001201"]
    assert all("示意边界" in p["label"] for p in props)
    assert all(p["geometry_source"] == "generated" for p in props)


def test_amap_basemap_shifts_shapes_to_gcj02(store):
    plain = maps.unit_layer(store, "440100000000", metric="cases", filters=Filters())
    amap = maps.unit_layer(_with(store.engine, basemap="amap"), "440100000000", metric="cases",
                           filters=Filters())
    west, south = plain.bounds[0][1], plain.bounds[0][0]
    gx, gy = wgs84_to_gcj02(west, south)
    assert amap.bounds[0][1] == pytest.approx(gx, abs=1e-7)
    assert amap.bounds[0][0] == pytest.approx(gy, abs=1e-7)
    assert amap.crs == "gcj02"


def test_unknown_basemap_is_refused():
    with pytest.raises(ValueError, match="底图"):
        maps.basemap_spec("google")
    assert maps.basemap_spec("none") is None


def test_case_points_carry_no_personal_data(store):
    found = case_points(store, "440103001001")
    points = maps.case_point_features(found, basemap="none")
    assert points["mode"] == "points" and points["shown"] == found.total > 0
    text = json.dumps(points, ensure_ascii=False)
    names = case_list(store, "440103001001", "open", limit=None).rows["petitioner_name"]
    with store.engine.connect() as conn:
        full_names = [n for (n,) in conn.execute(sa.text(
            "SELECT petitioner_name FROM cases WHERE petitioner_name IS NOT NULL LIMIT 20"))]
    for name in full_names:
        assert name not in text
    assert len(names) and all(n is None or "*" in n for n in names)
    assert {f["properties"]["colour"] for f in points["features"]} <= set(
        maps.URGENCY_COLOURS.values())
    assert all(f["properties"]["href"].startswith("/case/") for f in points["features"])


def test_many_points_become_counted_cells(store):
    found = case_points(store, "440100000000", limit=20)
    cells = maps.case_point_features(found, basemap="none")
    assert cells["mode"] == "cells" and 0 < cells["shown"] <= 20
    assert sum(f["properties"]["count"] for f in cells["features"]) == found.total


def test_stations_have_their_reach(store):
    stations = maps.station_features(store, "440100000000")
    radii = {f["properties"]["type"]: f["properties"]["radius_m"] for f in stations["features"]}
    assert radii["station"] == 500.0
    assert radii["centre"] == 1000.0
    assert stations["features"]
    # the reach is the configured one, not a constant
    wider = maps.station_features(_with(store.engine, coverage_radius_station_m=750),
                                  "440100000000")
    assert {f["properties"]["radius_m"] for f in wider["features"]
            if f["properties"]["type"] == "station"} == {750}


def test_the_standalone_export_carries_its_data_as_json_only(store):
    layer = maps.unit_layer(store, "440103000000", metric="on_time_completion",
                            filters=Filters())
    page = maps.standalone_html(layer, stations=maps.station_features(store, "440103000000"),
                                title="甲区 · 按期办结率")
    assert page.startswith("<!DOCTYPE html>")
    blocks = re.findall(r'<script type="application/json" id="gridgov-map-data">(.*?)</script>',
                        page, flags=re.S)
    assert len(blocks) == 1
    data = json.loads(blocks[0])
    assert data["legend"] == [[c, label] for c, label in layer.legend]
    assert data["title"] == "甲区 · 按期办结率" and data["units"] == json.loads(
        json.dumps(layer.features))
    assert data["stations"]["features"]
    # the data appears nowhere but in that block; the page's scripts are our fixed files
    assert "甲一街道" not in page.replace(blocks[0], "")
    # opens without internet: Leaflet is inlined, nothing is fetched from a CDN
    assert re.findall(r'<(?:script|link)[^>]+(?:src|href)="?https?://', page) == []
    assert "L.map(" in page and "Leaflet" in page
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in policy and "unsafe" not in policy


def test_json_script_cannot_be_closed_by_data():
    hostile = "</script><script>alert(1)</script><!-- & \u2028"
    block = maps.json_script({"name": hostile, "nan": float("nan")}, "x")
    inner = block[len('<script type="application/json" id="x">'):-len("</script>")]
    assert "<" not in inner and ">" not in inner and "&" not in inner
    assert json.loads(inner) == {"name": hostile, "nan": None}


def test_a_village_map_shows_only_that_village(store):
    layer = maps.unit_layer(store, "440103001001", metric="cases", filters=Filters())
    assert [f["properties"]["code"] for f in layer.features["features"]] == ["440103001001"]
    assert layer.extra["cases"] == views.unit_row(store, "440103001001")["cases"]


def test_a_coverage_metric_colours_the_map(store):
    layer = maps.unit_layer(store, "440103000000", metric="covered_pop_share",
                            filters=Filters())
    values = [f["properties"]["value"] for f in layer.features["features"]]
    assert len(values) == 2 and all(v is None or 0 <= v <= 1 for v in values)
    assert layer.metric_label == "覆盖人口占比"


def test_no_feature_carries_a_property_dash_leaflet_would_bind_as_html(store):
    # dash-leaflet's default onEachFeature binds properties.tooltip / popup with innerHTML
    layers = [maps.unit_layer(store, "440103000000", metric="cases", filters=Filters()).features,
              maps.station_features(store, "440100000000"),
              maps.case_point_features(case_points(store, "440103001001"), basemap="none"),
              maps.case_point_features(case_points(store, "440100000000", limit=20),
                                       basemap="none")]
    for collection in layers:
        assert collection["features"]
        for feature in collection["features"]:
            assert not {"tooltip", "popup"} & set(feature["properties"])


def test_cells_equal_counting_each_case_at_the_final_cell_size():
    """The doubling shortcut gives the cells a direct floor(x / size) count gives."""
    from layers.points import cell_counts

    rng = np.random.default_rng(5)
    for n, limit in ((5_000, 50), (20_000, 400), (3_000, 2_999)):
        lon = rng.uniform(113.1, 113.9, n) if n != 3_000 else rng.normal(-0.001, 0.01, n)
        lat = rng.uniform(22.6, 23.9, n) if n != 3_000 else rng.normal(0.0, 0.01, n)
        urgency = rng.integers(0, 4, n).astype(np.int8)
        found = cell_counts(lon, lat, urgency, limit=limit, unlocated=0)
        size = found.cell_deg
        keys = pd.DataFrame({"x": np.floor(lon / size), "y": np.floor(lat / size),
                             "lon": lon, "u": urgency})
        direct = keys.groupby(["x", "y"]).agg(count=("lon", "size"), lon=("lon", "mean"),
                                               worst=("u", "max")).reset_index()
        assert len(direct) <= limit < len(keys.groupby(
            [np.floor(lon / (size / 2)), np.floor(lat / (size / 2))])) or size == 0.002
        mine = sorted(zip(found.items["count"], found.items["lon"].round(9),
                          [URGENCY_INDEX[u] for u in found.items["urgency"]], strict=True))
        theirs = sorted(zip(direct["count"], direct["lon"].round(9), direct["worst"],
                            strict=True))
        assert mine == theirs
