"""Generated street and village polygons tile their parents exactly and look administrative."""

from __future__ import annotations

import geopandas
import numpy as np
import pandas
import pytest
import shapely

from geo.bundled import (
    generated_units,
    inputs_fingerprint,
    read_districts,
    read_divisions,
    read_generated,
)
from geo.errors import CodeError, GridValidationError
from geo.generate import URBAN_KINDS, generate_children, size_weights, unit_kind

EQUAL_AREA = "EPSG:4547"  # CGCS2000 / 3-degree GK CM 114E: areas in Guangzhou
KM_LON = 111.32 * np.cos(np.radians(23.1))  # km per degree of longitude at 23.1°N
KM_LAT = 110.574


# ----------------------------------------------------------------------------- helpers
def _km_box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box given in km east/north of (113.5°E, 23.1°N), in lon/lat."""
    return shapely.box(
        113.5 + x0 / KM_LON, 23.1 + y0 / KM_LAT, 113.5 + x1 / KM_LON, 23.1 + y1 / KM_LAT
    )


def _parents(*geoms: shapely.Geometry) -> geopandas.GeoDataFrame:
    codes = [f"44019{i}000000" for i in range(len(geoms))]
    return geopandas.GeoDataFrame({"code": codes}, geometry=list(geoms), crs="EPSG:4326")


def _children(weights: list[float], parent: str = "440190000000") -> pandas.DataFrame:
    return pandas.DataFrame(
        {
            "code": [f"{parent[:6]}001{i:03d}" for i in range(1, len(weights) + 1)],
            "name": [f"c{i}" for i in range(1, len(weights) + 1)],
            "parent_code": parent,
            "weight": weights,
        }
    )


def _tiling_problems(parent: shapely.Geometry, geoms: np.ndarray) -> list[str]:
    """Everything that keeps ``geoms`` from tiling ``parent`` exactly (empty list = exact)."""
    problems = []
    area = parent.area
    gap_or_spill = shapely.symmetric_difference(shapely.union_all(geoms), parent).area
    if gap_or_spill > 1e-9 * area:
        problems.append(f"union differs from parent by {gap_or_spill / area:.2e}")
    total = shapely.area(geoms).sum()
    if abs(total / area - 1) > 1e-4:
        problems.append(f"areas sum to {total / area:.6f} of the parent")
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    pair = a < b
    overlap = shapely.area(shapely.intersection(geoms[a[pair]], geoms[b[pair]])).sum()
    if overlap > 1e-9 * area:
        problems.append(f"children overlap by {overlap / area:.2e} of the parent")
    if shapely.is_empty(geoms).any() or (shapely.area(geoms) <= 0).any():
        problems.append("a child is empty")
    if not shapely.is_valid(geoms).all():
        problems.append("a child is invalid")
    if set(shapely.get_type_id(geoms)) != {6}:
        problems.append("a child is not a MultiPolygon")
    return problems


def _wkb(frame: geopandas.GeoDataFrame) -> list[bytes]:
    return list(shapely.to_wkb(frame.geometry.values))


# ----------------------------------------------------------------------------- small shapes
def test_square_is_tiled_exactly_by_five_children_sized_by_weight():
    square = _km_box(0, 0, 2, 2)
    children = _children([1, 1, 2, 3, 5])

    out = generate_children(_parents(square), children, gradient=0.0)

    assert list(out["code"]) == list(children["code"])  # same rows, same order
    assert out.crs == "EPSG:4326"
    assert _tiling_problems(square, out.geometry.values) == []
    share = out.to_crs(EQUAL_AREA).area / out.to_crs(EQUAL_AREA).area.sum()
    expected = np.array([1, 1, 2, 3, 5]) / 12
    np.testing.assert_allclose(share, expected, rtol=0.2)


def test_children_of_a_parent_with_an_island_tile_both_parts():
    mainland = _km_box(0, 0, 3, 2)
    island = _km_box(4, 0.5, 4.6, 1.1)
    parent = shapely.MultiPolygon([mainland, island])

    out = generate_children(_parents(parent), _children([1, 1, 1, 4]))

    assert _tiling_problems(parent, out.geometry.values) == []
    assert shapely.intersection(shapely.union_all(out.geometry.values), island).area == (
        pytest.approx(island.area, rel=1e-9)
    )


def test_several_parents_are_split_independently_and_rows_keep_their_order():
    parents = _parents(_km_box(0, 0, 2, 2), _km_box(2, 0, 5, 2))
    kids = pandas.concat(
        [_children([1, 2, 3], parent="440191000000"), _children([1, 1], parent="440190000000")],
        ignore_index=True,
    )

    out = generate_children(parents, kids)

    assert list(out["code"]) == list(kids["code"])
    for code, geom in zip(parents["code"], parents.geometry, strict=True):
        assert _tiling_problems(geom, out.loc[out["parent_code"] == code].geometry.values) == []


def test_an_only_child_is_its_parent():
    square = _km_box(0, 0, 2, 2)
    out = generate_children(_parents(square), _children([3]))
    assert out.geometry.iloc[0].equals(square)
    assert out.geometry.iloc[0].geom_type == "MultiPolygon"


def test_same_seed_gives_byte_identical_geometry_and_another_seed_does_not():
    square = _km_box(0, 0, 2, 2)
    children = _children([1, 1, 2, 3, 5])

    first = generate_children(_parents(square), children, seed=7)
    again = generate_children(_parents(square), children, seed=7)
    other = generate_children(_parents(square), children, seed=8)

    assert _wkb(first) == _wkb(again)
    assert _wkb(first) != _wkb(other)


def test_a_tiny_weight_still_gets_a_real_polygon():
    square = _km_box(0, 0, 2, 2)
    out = generate_children(_parents(square), _children([0.01, 50, 50]))
    assert _tiling_problems(square, out.geometry.values) == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p, c: (p.set_crs("EPSG:4547", allow_override=True), c), "EPSG:4326"),
        (lambda p, c: (p, c.assign(parent_code="449999000000")), "missing from parents"),
        (lambda p, c: (p, c.assign(weight=0.0)), "weight"),
        (lambda p, c: (p, c.drop(columns="weight")), "weight"),
    ],
    ids=["wrong-crs", "orphan", "zero-weight", "no-weight"],
)
def test_unusable_input_is_refused_with_a_reason(mutate, message):
    parents, children = mutate(_parents(_km_box(0, 0, 2, 2)), _children([1, 2]))
    with pytest.raises(GridValidationError, match=message):
        generate_children(parents, children)


# ----------------------------------------------------------------------------- weights
@pytest.mark.parametrize(
    ("code", "level", "kind", "weight"),
    [
        ("440104003000", "street", "subdistrict", 1.0),  # 街道
        ("440114101000", "street", "town", 6.0),  # 镇
        ("440117404000", "street", "special", 4.0),  # 黄龙带水库
        ("440104003001", "village", "community", 1.0),  # 居委会
        ("440114101201", "village", "village", 5.0),  # 村委会
        ("440104003498", "village", "special_urban", 0.6),  # 虚拟社区
        ("440117404598", "village", "special_rural", 0.6),  # 虚拟生活区
    ],
)
def test_codes_say_the_kind_and_size_of_a_unit(code, level, kind, weight):
    codes = pandas.Series([code])
    assert unit_kind(codes, level=level).iloc[0] == kind
    assert size_weights(codes, level=level).iloc[0] == weight


def test_a_short_code_is_refused():
    with pytest.raises(CodeError, match="12 digits"):
        size_weights(pandas.Series(["4401040030"]), level="street")


# ----------------------------------------------------------------------------- real data
# The real grid is the one gridgov ships (geo/data/grid_generated.parquet): generating it
# takes half a minute, so these tests read the shipped file, and the two tests below prove
# that it is current and that regenerating a part of it gives the same bytes.


@pytest.fixture(scope="module")
def districts() -> geopandas.GeoDataFrame:
    return read_districts()[["code", "name", "geometry"]]


@pytest.fixture(scope="module")
def divisions() -> pandas.DataFrame:
    return read_divisions()


@pytest.fixture(scope="module")
def grid(districts, divisions) -> geopandas.GeoDataFrame:
    out = generated_units(districts, divisions)
    return out.assign(area_km2=out.to_crs(EQUAL_AREA).area / 1e6)


def test_the_shipped_grid_was_made_from_the_current_inputs():
    shipped = read_generated()
    assert shipped is not None, "geo/data/grid_generated.parquet is missing"
    assert shipped[1] == inputs_fingerprint(), (
        "geo/generate.py or the data changed: run `python -m geo.bundled` and commit the file")


def test_regenerating_a_street_gives_the_shipped_villages(grid, divisions):
    street = grid[grid["code"] == "440104003000"]  # 北京街道, 越秀区
    villages = divisions[divisions["parent_code"] == "440104003000"]
    villages = villages.assign(weight=size_weights(villages["code"], level="village"))
    again = generate_children(street[["code", "geometry"]], villages,
                              urban=unit_kind(villages["code"], level="village").isin(
                                  URBAN_KINDS))
    shipped = grid.set_index("code").loc[list(villages["code"])]
    assert _wkb(again) == list(shapely.to_wkb(shipped.geometry.values))


def test_real_grid_has_every_street_and_village_once(grid, divisions):
    assert (grid["level"] == "street").sum() == 178
    assert (grid["level"] == "village").sum() == 2851
    expected = divisions.loc[divisions["level"].isin(["street", "village"]), "code"]
    assert sorted(grid["code"]) == sorted(expected)
    assert list(grid.columns[:5]) == ["code", "name", "level", "parent_code", "geometry"]


def test_real_streets_tile_the_eleven_districts(grid, districts):
    streets = grid[grid["level"] == "street"]
    for code, geom in zip(districts["code"], districts.geometry, strict=True):
        mine = streets.loc[streets["parent_code"] == code].geometry.values
        assert _tiling_problems(geom, mine) == [], code


def test_real_villages_tile_the_178_streets(grid):
    streets = grid[grid["level"] == "street"]
    villages = grid[grid["level"] == "village"]
    bad = {}
    for code, geom in zip(streets["code"], streets.geometry, strict=True):
        problems = _tiling_problems(
            geom, villages.loc[villages["parent_code"] == code].geometry.values
        )
        if problems:
            bad[code] = problems
    assert bad == {}


def test_towns_are_larger_than_subdistricts_and_villages_larger_than_communities(grid):
    streets = grid[grid["level"] == "street"]
    villages = grid[grid["level"] == "village"]
    street_kind = unit_kind(streets["code"], level="street").to_numpy()
    village_kind = unit_kind(villages["code"], level="village").to_numpy()
    street_area = streets.groupby(street_kind)["area_km2"].median()
    village_area = villages.groupby(village_kind)["area_km2"].median()
    assert street_area["town"] > 5 * street_area["subdistrict"]
    assert village_area["village"] > 3 * village_area["community"]


def test_the_city_is_denser_toward_its_historic_centre(grid, districts):
    streets = grid[grid["level"] == "street"]
    district_of = dict(zip(districts["code"], districts["name"], strict=True))
    median = streets.groupby(streets["parent_code"].map(district_of))["area_km2"].median()
    assert median["越秀区"] < median["白云区"] < median["从化区"]
    assert median["越秀区"] < 4  # 18 streets in ~34 km²


def test_no_child_is_absurdly_small_next_to_its_siblings(grid):
    ratio = grid.groupby(["level", "parent_code"])["area_km2"].agg(lambda a: a.max() / a.min())
    worst = ratio.groupby(level="level").max()
    stats = grid.groupby("level")["area_km2"].agg(["min", "median", "max"]).round(3)
    # largest/smallest sibling: kind weights are at most 10:1, the centre gradient adds ~3x
    assert worst["street"] < 60, stats
    assert worst["village"] < 60, stats
    assert grid["area_km2"].min() > 0.05, stats


def test_cells_are_compact_not_slivers(grid):
    geoms = grid.to_crs(EQUAL_AREA).geometry
    # isoperimetric quotient 4πA/P²: 1 for a disc, ~0.785 for a square, < 0.1 for a sliver
    compactness = 4 * np.pi * geoms.area / geoms.length**2
    assert compactness.median() > 0.45
    assert (compactness < 0.1).mean() < 0.01


def test_neighbouring_codes_tend_to_be_neighbours(grid):
    touching = []
    for _, sibs in grid.sort_values("code").groupby("parent_code"):
        geoms = sibs.geometry.values
        if len(geoms) > 2:
            touching.extend(shapely.intersects(geoms[:-1], geoms[1:]))
    assert np.mean(touching) > 0.6


def test_real_district_split_is_deterministic(districts, divisions, grid):
    yuexiu = districts[districts["name"] == "越秀区"]
    streets = divisions[divisions["parent_code"] == yuexiu["code"].iloc[0]]
    streets = streets.assign(weight=size_weights(streets["code"], level="street"))

    again = generate_children(yuexiu, streets,
                              urban=unit_kind(streets["code"], level="street").isin(URBAN_KINDS))

    before = grid.set_index("code").loc[list(streets["code"])]
    assert _wkb(again) == list(shapely.to_wkb(before.geometry.values))
