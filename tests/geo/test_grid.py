"""The grid model on both stores: a sound grid loads, each kind of bad grid is refused
with a clear message and leaves the store exactly as it was."""

import pytest
import shapely
import sqlalchemy as sa
from shapely import affinity

from geo import schema
from geo.errors import GridValidationError
from geo.grid import check_store, check_units, load_units
from geo.store import read_units
from tests.grids import tiny_grid

VILLAGE = "440103001001"  # 甲一街道南社区, the south-west square
STREET = "440103001000"


def _store_state(engine):
    with engine.connect() as conn:
        units = conn.execute(sa.select(sa.func.count()).select_from(schema.grid_unit)).scalar()
        current = conn.execute(
            sa.select(sa.func.count()).select_from(schema.grid_unit)
            .where(schema.grid_unit.c.is_current.is_(True))
        ).scalar()
        versions = conn.execute(sa.select(sa.func.count()).select_from(schema.boundary_version)).scalar()
    return units, current, versions


def test_tiny_grid_loads_and_checks_clean(tiny_engine):
    report = check_store(tiny_engine)
    assert report.ok, report.problems
    assert report.counts == {"city": 1, "district": 2, "street": 4, "village": 8}
    villages = read_units(tiny_engine, level="village")
    # 0.01° × 0.01° at 23.1°N ≈ 1.0236 km × 1.1066 km
    assert villages["area_km2"].between(1.12, 1.15).all()
    assert villages.set_index("code").loc[VILLAGE, "kind"] == "居委会"
    assert villages["population_estimated"].all()
    assert read_units(tiny_engine, level="city")["parent_code"].iloc[0] is None  # NULL, not 'NaN'
    streets = read_units(tiny_engine, level="street").set_index("code")
    assert villages.groupby("parent_code")["area_km2"].sum().sub(streets["area_km2"]).abs().max() < 1e-6


def _with_village(geometry=None, **changes):
    """The tiny grid's streets+villages of 甲一街道 with one village altered."""
    grid = tiny_grid()
    part = grid[grid["code"].str.startswith("440103001")].copy()
    row = part.index[part["code"] == VILLAGE][0]
    if geometry is not None:
        part.loc[row, "geometry"] = shapely.MultiPolygon([geometry])
    for column, value in changes.items():
        part.loc[row, column] = value
    return part


SOUTH_WEST = shapely.box(113.30, 23.10, 113.31, 23.11)
BAD_GRIDS = {
    "gap": (_with_village, dict(geometry=shapely.box(113.30, 23.10, 113.31, 23.105)),
            "缝隙.*gap of 0.5"),
    "overlap": (_with_village, dict(geometry=shapely.box(113.30, 23.10, 113.31, 23.115)),
                "重叠.*overlap"),
    "outside parent": (_with_village, dict(geometry=affinity.translate(SOUTH_WEST, xoff=-0.005)),
                       "超出上级.*outside its parent"),
    "bad code": (_with_village, dict(code="44010300100X"), "12位数字.*12 digits"),
    "code not nesting": (_with_village, dict(code="440103101001"),
                         "不嵌套.*does not nest"),
    "invalid polygon": (_with_village, dict(geometry=shapely.Polygon(
        [(113.30, 23.10), (113.31, 23.11), (113.31, 23.10), (113.30, 23.11)])),
        "边界无效.*invalid polygon"),
    "unknown parent": (_with_village, dict(parent_code="440103009000", code="440103009001"),
                       "上级单元 440103009000 不存在.*unknown parent"),
}


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
@pytest.mark.parametrize("kind", BAD_GRIDS)
def test_bad_grid_is_refused_and_store_unchanged(tiny_engine, kind):
    build, args, message = BAD_GRIDS[kind]
    before = _store_state(tiny_engine)
    with pytest.raises(GridValidationError, match=message):
        load_units(tiny_engine, build(**args), kind="import")
    assert _store_state(tiny_engine) == before
    assert check_store(tiny_engine).ok


def test_every_problem_is_reported_not_just_the_first():
    grid = tiny_grid()
    grid.loc[grid["code"] == VILLAGE, "geometry"] = shapely.MultiPolygon(
        [shapely.box(113.30, 23.10, 113.31, 23.105)])
    grid.loc[grid["code"] == "440104002201", "parent_code"] = "440104001000"
    report = check_units(grid)
    assert len(report.problems) >= 2
    assert any("缝隙" in p for p in report.problems)
    assert any("440104002201" in p and "不嵌套" in p for p in report.problems)
    assert any(p.startswith(STREET) and "0.567" in p for p in report.problems)


def test_valid_replacement_becomes_a_new_current_version(tiny_engine):
    # move the border between the two villages of 甲一街道 north by 0.002°
    grid = tiny_grid()
    part = grid[grid["code"].isin([VILLAGE, "440103001201"])].copy()
    part["geometry"] = [shapely.MultiPolygon([shapely.box(113.30, 23.10, 113.31, 23.112)]),
                        shapely.MultiPolygon([shapely.box(113.30, 23.112, 113.31, 23.12)])]
    part["geometry_source"] = "imported"
    version = load_units(tiny_engine, part, kind="import", level="village")
    assert version == 2
    villages = read_units(tiny_engine, level="village").set_index("code")
    assert len(villages) == 8
    assert villages.loc[VILLAGE, "boundary_version"] == 2
    assert villages.loc[VILLAGE, "geometry_source"] == "imported"
    assert villages.loc[VILLAGE, "area_km2"] == pytest.approx(1.2 * villages.loc[
        "440103101001", "area_km2"], rel=1e-3)
    assert check_store(tiny_engine).ok
