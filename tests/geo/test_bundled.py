"""The bundled real Guangzhou grid, as `gridgov init` loads it, on both stores."""

import json

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner

from geo.bundled import DATA
from geo.crs import area_km2
from geo.grid import check_store
from geo.store import read_units
from gridgov.cli import main

OFFICIAL_CITY_AREA_KM2 = 7434.4  # 广州市 official land area


def test_init_loads_the_whole_official_grid_and_it_checks_clean(real_grid_engine):
    report = check_store(real_grid_engine)
    assert report.ok, report.problems[:10]
    assert report.counts == {"city": 1, "district": 11, "street": 178, "village": 2851}
    assert report.gaps_km2 == 0 and report.overlaps_km2 == 0


def test_children_tile_parents_within_a_tenth_of_a_percent(real_grid_engine):
    units = read_units(real_grid_engine, with_geometry=False).set_index("code")
    for child_level in ("district", "street", "village"):
        children = units[units["level"] == child_level]
        summed = children.groupby("parent_code")["area_km2"].sum()
        parents = units.loc[summed.index, "area_km2"]
        assert ((summed - parents).abs() / parents).max() < 0.001, child_level


def test_district_areas_match_the_real_polygons(real_grid_engine):
    districts = read_units(real_grid_engine, level="district").set_index("code")
    real = gpd.read_file(DATA / "districts_gcj02.geojson").set_index("code12")
    real_km2 = area_km2(real.geometry.to_numpy())  # GCJ-02 offset moves, barely distorts
    for code, km2 in zip(real.index, real_km2):
        assert districts.loc[code, "area_km2"] == pytest.approx(km2, rel=0.01)
    assert districts["area_km2"].sum() == pytest.approx(OFFICIAL_CITY_AREA_KM2, rel=0.01)
    assert (districts["geometry_source"] == "official").all()


def test_districts_were_converted_from_gcj02_to_wgs84(real_grid_engine):
    stored = read_units(real_grid_engine, level="district").set_index("code")
    raw = gpd.read_file(DATA / "districts_gcj02.geojson").set_index("code12")
    # GCJ-02 is shifted ~600 m to the south-east of WGS-84 here: stored points lie north-west
    raw_x = shapely.centroid(raw.geometry.to_numpy())
    stored_x = shapely.centroid(stored.loc[raw.index].geometry.to_numpy())
    shift = shapely.get_x(raw_x) - shapely.get_x(stored_x)
    assert (shift > 0.004).all() and (shift < 0.007).all()


def test_populations_add_up_and_are_flagged_as_estimates(real_grid_engine):
    units = read_units(real_grid_engine, with_geometry=False)
    totals = units.groupby("level")["population"].sum()
    assert (totals == 18_676_605).all()
    below = units[units["level"].isin(["street", "village"])]
    assert below["population_estimated"].all() and (below["population"] >= 0).all()
    assert (below["geometry_source"] == "generated").all()
    # a 街道 is denser than a 镇
    streets = units[units["level"] == "street"]
    density = streets["population"] / streets["area_km2"]
    assert density[streets["kind"] == "街道"].median() > 10 * density[streets["kind"] == "镇"].median()


@pytest.mark.parametrize("real_grid_engine", ["sqlite"], indirect=True)  # the export: SQLite
def test_cli_exports_2851_valid_village_polygons(real_grid_engine, tmp_path):
    out = tmp_path / "villages.geojson"
    url = real_grid_engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(main, ["--db", url, "grid", "export", "--level", "village",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert len(data["features"]) == 2851
    props = data["features"][0]["properties"]
    assert {"code", "name", "level", "parent_code", "area_km2", "population", "geometry_source",
            "boundary_version"} <= set(props)
    geoms = [shapely.geometry.shape(f["geometry"]) for f in data["features"]]
    assert all(g.is_valid and g.geom_type == "MultiPolygon" for g in geoms)


def test_map_copy_is_smaller_and_keeps_shared_borders(real_grid_engine):
    full = read_units(real_grid_engine, level="village")
    web = read_units(real_grid_engine, level="village", web=True)
    n_full = shapely.get_num_coordinates(full.geometry.to_numpy()).sum()
    n_web = shapely.get_num_coordinates(web.geometry.to_numpy()).sum()
    assert n_web < 0.5 * n_full
    assert web.geometry.is_valid.all()
    # shared borders stay shared: simplified villages overlap by (almost) nothing. Not exactly
    # nothing: the AMap district outlines do not share vertices with their neighbours, so the
    # citywide simplification meets hair-thin slivers at district borders (< 0.002% of area).
    geoms = web.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    overlap = area_km2(shapely.intersection(geoms[a[keep]], geoms[b[keep]])).sum()
    assert overlap < 0.1  # km², over the whole city's 7,400 km²


@pytest.mark.parametrize("real_grid_engine", ["sqlite"], indirect=True)  # idempotency: SQLite
def test_init_twice_is_harmless(real_grid_engine):
    url = real_grid_engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(main, ["--db", url, "init"])
    assert result.exit_code == 0 and "已存在" in result.output
    result = CliRunner().invoke(main, ["--db", url, "grid", "check"])
    assert result.exit_code == 0, result.output
    assert "村居 village: 2851" in result.output and "网格有效" in result.output
