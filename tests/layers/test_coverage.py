"""Station coverage on the tiny grid, with answers from circle geometry.

Villages are 0.01° × 0.01° cells (≈ 1,024 m wide × 1,108 m tall in EPSG:4547). Stations are
placed in projected metres relative to a cell and converted back to lon/lat, so every expected
area is a textbook circle formula.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from geo import schema
from geo.crs import lonlat_to_xy, xy_to_lonlat
from geo.settings import Settings
from geo.store import Store
from layers.coverage import COVERAGE_COLUMNS, compute_coverage
from tests.layers.conftest import D1, D2, S1, V1N, V1S, V3S, V4N, V4S

CELLS = {
    V1S: (113.30, 23.10), V1N: (113.30, 23.11), V3S: (113.32, 23.10),
    V4S: (113.33, 23.10), V4N: (113.33, 23.11),
}


def _cell_plane(code):
    """The cell's corners in EPSG:4547: (x west, x east, y south, y north), edges averaged."""
    west, south = CELLS[code]
    xs, ys = lonlat_to_xy(np.array([west, west, west + 0.01, west + 0.01]),
                          np.array([south, south + 0.01, south, south + 0.01]))
    return (xs[0] + xs[1]) / 2, (xs[2] + xs[3]) / 2, (ys[0] + ys[2]) / 2, (ys[1] + ys[3]) / 2


def _add_stations(engine, rows):
    full = []
    for i, row in enumerate(rows):
        lon, lat = xy_to_lonlat(row.pop("x"), row.pop("y")) if "x" in row else (
            row.pop("lon"), row.pop("lat"))
        full.append({"station_id": f"S{i}", "name": f"站{i}", "lon": float(lon), "lat": float(lat),
                     "synthetic": True, "run_id": 1, "serves_code": None, **row})
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.station), full)


def _row(frame, code):
    return frame[frame["code"] == code].iloc[0]


def test_station_on_a_shared_edge_covers_half_a_disc_of_each_cell(tiny_engine):
    _add_stations(tiny_engine, [{"station_type": "station", "lon": 113.305, "lat": 23.11,
                                 "serves_code": V1S}])
    frame = compute_coverage(Store(tiny_engine, Settings()), level="village")
    assert list(frame.columns) == list(COVERAGE_COLUMNS)
    half_disc = math.pi * 500**2 / 2
    for code in (V1S, V1N):
        xw, xe, ys, yn = _cell_plane(code)
        expected = half_disc / ((xe - xw) * (yn - ys))
        assert _row(frame, code)["covered_area_share"] == pytest.approx(expected, rel=2e-3)
        assert _row(frame, code)["covered_pop_share"] == pytest.approx(expected, rel=2e-3)
    assert _row(frame, V3S)["covered_area_share"] == 0.0
    # the station sits on the border: V1S has it because it serves V1S; V1N does not
    assert _row(frame, V1S)["has_required_station"] == True  # noqa: E712
    assert _row(frame, V1N)["has_required_station"] == False  # noqa: E712
    # the population centre of V1S is its centroid, half a cell height (≈554 m) south
    xw, xe, ys, yn = _cell_plane(V1S)
    assert _row(frame, V1S)["nearest_station_m"] == pytest.approx((yn - ys) / 2, abs=2)
    assert math.isnan(_row(frame, V1S)["nearest_hall_m"])
    uncovered = _row(frame, V1S)["uncovered"]
    assert uncovered.is_valid and not shapely.contains(uncovered, shapely.Point(113.305, 23.1099))
    streets = compute_coverage(Store(tiny_engine, Settings()), level="street")
    s1 = _row(streets, S1)
    # S1 = V1S + V1N, equal populations → the mean of the two village shares
    village_shares = frame.set_index("code").loc[[V1S, V1N], "covered_area_share"]
    assert s1["covered_pop_share"] == pytest.approx(village_shares.mean(), rel=1e-9)
    assert s1["has_required_station"] == False  # noqa: E712 (no 综治中心)


def test_circle_boundary_through_the_middle_of_a_cell(tiny_engine):
    """A 2 km hall whose circle edge passes through V4N's centre covers ~47.5 % of it.

    Expected: ∫ over the cell height of (cx + √(R² − t²) − x_west) dt, with
    ∫√(R² − t²)dt = (t√(R² − t²) + R² asin(t/R)) / 2 — the circle-segment area.
    """
    radius = 2000.0
    xw, xe, ys, yn = _cell_plane(V4N)
    cy = (ys + yn) / 2
    cx = (xw + xe) / 2 - radius
    _add_stations(tiny_engine, [{"station_type": "hall", "x": cx, "y": cy}])
    settings = Settings(coverage_radius_hall_m=radius)
    frame = compute_coverage(Store(tiny_engine, settings), level="village")

    def segment(t):
        return (t * math.sqrt(radius**2 - t**2) + radius**2 * math.asin(t / radius)) / 2

    half = (yn - ys) / 2
    inside = (cx - xw) * (yn - ys) + segment(half) - segment(-half)
    expected = inside / ((xe - xw) * (yn - ys))
    assert 0.47 < expected < 0.48
    assert _row(frame, V4N)["covered_area_share"] == pytest.approx(expected, rel=2e-3)
    assert _row(frame, V4N)["nearest_hall_m"] == pytest.approx(radius, abs=2)
    districts = compute_coverage(Store(tiny_engine, settings), level="district")
    # 2 km west of V4N's centre (lon ≈ 113.3155) is inside 甲区, not 乙区
    assert _row(districts, D1)["has_required_station"] == True  # noqa: E712
    assert _row(districts, D2)["has_required_station"] == False  # noqa: E712


def test_station_just_outside_reach_covers_nothing(tiny_engine):
    xw, xe, ys, yn = _cell_plane(V4S)
    cy = (ys + yn) / 2
    _add_stations(tiny_engine, [{"station_type": "mediation", "x": xe + 501, "y": cy}])
    frame = compute_coverage(Store(tiny_engine, Settings()), level="village")
    assert _row(frame, V4S)["covered_area_share"] == 0.0
    assert _row(frame, V4S)["uncovered"].area == pytest.approx(
        shapely.box(113.33, 23.10, 113.34, 23.11).area, rel=1e-9)
    assert _row(frame, V4S)["nearest_mediation_m"] == pytest.approx((xe - xw) / 2 + 501, abs=2)


def test_station_just_inside_reach_covers_a_sliver(tiny_engine):
    xw, xe, ys, yn = _cell_plane(V4S)
    _add_stations(tiny_engine, [{"station_type": "mediation", "x": xe + 499, "y": (ys + yn) / 2}])
    frame = compute_coverage(Store(tiny_engine, Settings()), level="village")
    assert 0 < _row(frame, V4S)["covered_area_share"] < 1e-3


def test_no_stations_means_nothing_covered(tiny_engine):
    frame = compute_coverage(Store(tiny_engine, Settings()), level="street")
    assert (frame["covered_area_share"] == 0).all()
    assert frame["nearest_centre_m"].isna().all()
    assert not any(frame["has_required_station"])


def test_metrics_carry_coverage_columns_and_flags_map(tiny_engine):
    from geo.store import Store, read_units
    from layers.metrics import compute_metrics
    from layers.style import RATE_COLOURS_BAD_TO_GOOD, map_features

    _add_stations(tiny_engine, [{"station_type": "station", "lon": 113.305, "lat": 23.105}])
    frame = compute_metrics(Store(tiny_engine, Settings()), level="village", with_coverage=True)
    assert {"covered_area_share", "nearest_station_m", "has_required_station"} <= set(frame)
    assert "uncovered" not in frame
    assert _row(frame, V1S)["has_required_station"] == True  # noqa: E712 (inside V1S)
    assert frame[frame["row_type"] != "unit"]["covered_area_share"].isna().all()
    units = read_units(tiny_engine, level="village", web=True)
    features = map_features(units, frame, "has_required_station")["features"]
    fills = {f["properties"]["code"]: f["properties"]["fill"] for f in features}
    assert fills[V1S] == RATE_COLOURS_BAD_TO_GOOD[-1] and fills[V1N] == RATE_COLOURS_BAD_TO_GOOD[0]
