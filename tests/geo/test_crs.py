"""Tests of geo.crs: the WGS-84 / GCJ-02 / BD-09 conversions and the EPSG:4547 helpers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geoseries_equal
from shapely.geometry import Point, Polygon, box

from geo import crs
from geo.errors import CRSError

DISTRICTS_GCJ02 = Path(__file__).resolve().parents[2] / "geo" / "data" / "districts_gcj02.geojson"

# Guangzhou bounds, padded (PROVENANCE.md: lon 112.96–114.06, lat 22.51–23.93).
GZ_LON = (112.9, 114.1)
GZ_LAT = (22.45, 24.0)

FUNCTIONS = [
    crs.wgs84_to_gcj02,
    crs.gcj02_to_wgs84,
    crs.gcj02_to_bd09,
    crs.bd09_to_gcj02,
    crs.wgs84_to_bd09,
    crs.bd09_to_wgs84,
]


def _metres_apart(lon_a, lat_a, lon_b, lat_b) -> np.ndarray:
    """Distance in metres between lon/lat points, measured in EPSG:4547 (valid for Guangzhou)."""
    xa, ya = crs.lonlat_to_xy(lon_a, lat_a)
    xb, yb = crs.lonlat_to_xy(lon_b, lat_b)
    return np.hypot(np.subtract(xa, xb), np.subtract(ya, yb))


def _guangzhou_grid(n: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """An n × n grid of points covering Guangzhou (about 600 m spacing for n=201)."""
    lon, lat = np.meshgrid(np.linspace(*GZ_LON, n), np.linspace(*GZ_LAT, n))
    return lon.ravel(), lat.ravel()


# --------------------------------------------------------------------------- published values

# wandergis/coordtransform README.md ("示例用法"), all four calls on (116.404, 39.915):
#   bd09togcj02  -> [116.39762729119315, 39.90865673957631]
#   gcj02tobd09  -> [116.41036949371029, 39.92133699351021]
#   wgs84togcj02 -> [116.41024449916938, 39.91640428150164]
#   gcj02towgs84 -> [116.39775550083061, 39.91359571849836]  (one-step approximate inverse)
TIANANMEN = (116.404, 39.915)


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (crs.wgs84_to_gcj02, (116.41024449916938, 39.91640428150164)),
        (crs.gcj02_to_bd09, (116.41036949371029, 39.92133699351021)),
        (crs.bd09_to_gcj02, (116.39762729119315, 39.90865673957631)),
    ],
    ids=["wgs84_to_gcj02", "gcj02_to_bd09", "bd09_to_gcj02"],
)
def test_matches_coordtransform_readme(func, expected):
    assert func(*TIANANMEN) == pytest.approx(expected, abs=1e-12)


def test_precise_inverse_beats_the_published_one_step_inverse():
    # coordtransform's gcj02towgs84(116.404, 39.915) is the one-step approximation (here 6 cm
    # off; up to ~2.7 m in Guangzhou); ours must land near it and, unlike it, map forward onto
    # the input to the 1e-9° convergence threshold.
    ours = crs.gcj02_to_wgs84(*TIANANMEN)
    published = (116.39775550083061, 39.91359571849836)
    gap_m = np.hypot(
        (ours[0] - published[0]) * 111_320 * np.cos(np.radians(39.915)),
        (ours[1] - published[1]) * 110_574,
    )
    assert gap_m < 1
    assert crs.wgs84_to_gcj02(*ours) == pytest.approx(TIANANMEN, abs=1e-9)
    assert crs.wgs84_to_gcj02(*published) != pytest.approx(TIANANMEN, abs=1e-7)


# googollee/eviltransform python/test.py TESTS: (wgsLat, wgsLng, gcjLat, gcjLng)
EVILTRANSFORM_CASES = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # beijing
]


@pytest.mark.parametrize(("wgs_lat", "wgs_lon", "gcj_lat", "gcj_lon"), EVILTRANSFORM_CASES)
def test_matches_eviltransform_cases(wgs_lat, wgs_lon, gcj_lat, gcj_lon):
    # eviltransform asserts 6 decimal places forward and < 0.5 m for gcj2wgs_exact.
    assert crs.wgs84_to_gcj02(wgs_lon, wgs_lat) == pytest.approx((gcj_lon, gcj_lat), abs=1e-7)
    back_lon, back_lat = crs.gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert back_lon == pytest.approx(wgs_lon, abs=1e-8)
    assert back_lat == pytest.approx(wgs_lat, abs=1e-8)


def test_matches_gcoord_unit_test():
    # hujiulong/gcoord test/unit/crs/GCJ02.spec.js: GCJ02.to.WGS84([123, 45]) is close to
    # [122.99395597, 44.99804071] and GCJ02.to.BD09([123, 45]) to [123.00636499, 45.00636899],
    # both with toBeCloseTo(…, 5), i.e. |difference| < 5e-6.
    assert crs.gcj02_to_wgs84(123, 45) == pytest.approx((122.99395597, 44.99804071), abs=5e-6)
    assert crs.gcj02_to_bd09(123, 45) == pytest.approx((123.00636499, 45.00636899), abs=5e-6)


# --------------------------------------------------------------------------- round trips


def test_wgs_gcj_wgs_round_trip_over_guangzhou_is_under_half_a_metre():
    lon, lat = _guangzhou_grid()
    back = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    assert _metres_apart(lon, lat, *back).max() < 0.5


def test_wgs_bd_wgs_round_trip_over_guangzhou_is_under_half_a_metre():
    lon, lat = _guangzhou_grid()
    back = crs.bd09_to_wgs84(*crs.wgs84_to_bd09(lon, lat))
    assert _metres_apart(lon, lat, *back).max() < 0.5


def test_gcj_inverse_converges_everywhere_in_china():
    # A 0.25° grid over the China box (away from its edge, where a shifted point can leave the
    # box): the inverse must reproduce the GCJ-02 input to the 1e-9° convergence threshold.
    lon, lat = np.meshgrid(np.arange(74.0, 135.0, 0.25), np.arange(4.0, 53.5, 0.25))
    g_lon, g_lat = crs.wgs84_to_gcj02(lon, lat)
    w_lon, w_lat = crs.gcj02_to_wgs84(g_lon, g_lat)
    assert np.abs(w_lon - lon).max() < 1e-8
    assert np.abs(w_lat - lat).max() < 1e-8  # 1e-8° is about 1 mm


def test_guangzhou_shift_is_hundreds_of_metres():
    lon, lat = _guangzhou_grid(21)
    shift = _metres_apart(lon, lat, *crs.wgs84_to_gcj02(lon, lat))
    assert shift.min() > 400
    assert shift.max() < 800


# --------------------------------------------------------------------------- shapes and types


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_scalar_and_vector_agree(func):
    lon, lat = _guangzhou_grid(5)
    vec_lon, vec_lat = func(lon, lat)
    assert isinstance(vec_lon, np.ndarray)
    assert vec_lon.dtype == np.float64
    for i in range(lon.size):
        one = func(lon[i], lat[i])
        assert type(one[0]) is float and type(one[1]) is float
        assert one == (vec_lon[i], vec_lat[i])


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_shape_is_kept_and_list_and_series_inputs_work(func):
    lon = np.array([[113.2, 113.3], [113.4, 113.5]])
    lat = np.array([[23.0, 23.1], [23.2, 23.3]])
    out_lon, out_lat = func(lon, lat)
    assert out_lon.shape == (2, 2) and out_lat.shape == (2, 2)
    from_list = func(lon.ravel().tolist(), lat.ravel().tolist())
    from_series = func(pd.Series(lon.ravel()), pd.Series(lat.ravel()))
    np.testing.assert_array_equal(from_list[0], out_lon.ravel())
    np.testing.assert_array_equal(from_series[1], out_lat.ravel())


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "point",
    [(0.0, 0.0), (-74.0, 40.7), (139.69, 35.69), (100.0, 60.0), (73.66, 30.0)],
    ids=["null-island", "new-york", "tokyo", "north-of-box", "on-box-edge"],
)
def test_outside_china_passes_through(func, point):
    assert func(*point) == point


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_nan_in_nan_out_without_warnings(func):
    # pyproject turns warnings into errors, so a RuntimeWarning would fail this test.
    lon = np.array([np.nan, 113.3, 113.3, np.inf])
    lat = np.array([23.1, np.nan, 23.1, 23.1])
    out_lon, out_lat = func(lon, lat)
    assert np.isnan(out_lon[0]) and np.isnan(out_lat[1])
    assert np.isfinite(out_lon[2]) and np.isfinite(out_lat[2])
    assert out_lon[3] == np.inf
    assert all(np.isnan(v) for v in func(np.nan, np.nan))


def test_empty_input_gives_empty_arrays():
    out_lon, out_lat = crs.gcj02_to_wgs84([], [])
    assert out_lon.shape == (0,) and out_lat.shape == (0,)


# --------------------------------------------------------------------------- dispatch


@pytest.mark.parametrize(
    ("name", "forward", "inverse"),
    [
        ("gcj02", crs.wgs84_to_gcj02, crs.gcj02_to_wgs84),
        ("bd09", crs.wgs84_to_bd09, crs.bd09_to_wgs84),
    ],
)
def test_dispatch_matches_named_functions(name, forward, inverse):
    lon, lat = 113.32, 23.12
    assert crs.from_wgs84(lon, lat, name) == forward(lon, lat)
    assert crs.to_wgs84(lon, lat, name) == inverse(lon, lat)


def test_wgs84_dispatch_is_identity():
    assert crs.to_wgs84(113.32, 23.12, "wgs84") == (113.32, 23.12)
    out = crs.from_wgs84([113.32], [23.12], "wgs84")
    np.testing.assert_array_equal(out, ([113.32], [23.12]))


@pytest.mark.parametrize("bad", ["WGS84", "gcj-02", "baidu", "EPSG:4326", ""])
def test_unknown_system_raises_bilingual_crserror(bad):
    for call in (
        lambda: crs.to_wgs84(113.3, 23.1, bad),
        lambda: crs.from_wgs84(113.3, 23.1, bad),
        lambda: crs.transform_geometry(Point(113.3, 23.1), source=bad, target="wgs84"),
        lambda: crs.transform_geometry(Point(113.3, 23.1), source="wgs84", target=bad),
    ):
        with pytest.raises(CRSError, match="未知坐标系") as info:
            call()
        assert "unknown coordinate system" in str(info.value)


# --------------------------------------------------------------------------- geometries


def test_transform_geometry_moves_every_vertex_like_the_point_functions():
    square = box(113.30, 23.10, 113.31, 23.11)
    moved = crs.transform_geometry(square, source="wgs84", target="gcj02")
    before = shapely.get_coordinates(square)
    expected = np.column_stack(crs.wgs84_to_gcj02(before[:, 0], before[:, 1]))
    np.testing.assert_array_equal(shapely.get_coordinates(moved), expected)


def test_transform_geometry_round_trip_and_array_input():
    shapes = np.array([Point(113.3, 23.1), box(113.0, 22.6, 113.1, 22.7), None], dtype=object)
    gcj = crs.transform_geometry(shapes, source="wgs84", target="bd09")
    back = crs.transform_geometry(gcj, source="bd09", target="wgs84")
    assert back[2] is None
    # The published BD-09 inverse is closed-form and off by up to ~1e-6° (~0.1 m) here.
    assert shapely.equals_exact(back[:2], shapes[:2], tolerance=2e-6).all()
    assert not shapely.equals_exact(gcj[:2], shapes[:2], tolerance=1e-3).any()


def test_transform_geometry_same_system_returns_input():
    pt = Point(113.3, 23.1)
    assert crs.transform_geometry(pt, source="gcj02", target="gcj02") is pt


def test_transform_geometry_keeps_geoseries_index_name_and_crs():
    series = gpd.GeoSeries(
        [Point(113.3, 23.1), Point(113.4, 23.2)], index=["a", "b"], crs=crs.WGS84, name="geom"
    )
    out = crs.transform_geometry(series, source="wgs84", target="gcj02")
    assert isinstance(out, gpd.GeoSeries)
    assert list(out.index) == ["a", "b"] and out.name == "geom" and out.crs == series.crs
    assert out.iloc[0].x == pytest.approx(crs.wgs84_to_gcj02(113.3, 23.1)[0], abs=1e-12)


def test_transform_geometry_converts_a_geodataframe_copy():
    frame = gpd.GeoDataFrame({"code": ["a"]}, geometry=[Point(113.3, 23.1)], crs=crs.WGS84)
    out = crs.transform_geometry(frame, source="wgs84", target="gcj02")
    assert isinstance(out, gpd.GeoDataFrame) and list(out["code"]) == ["a"]
    assert out.crs == frame.crs
    assert (out.geometry.iloc[0].x, out.geometry.iloc[0].y) == crs.wgs84_to_gcj02(113.3, 23.1)
    assert frame.geometry.iloc[0].x == 113.3  # the input is untouched


def test_real_district_file_shifts_500_to_650_metres():
    districts = gpd.read_file(DISTRICTS_GCJ02)
    wgs = crs.transform_geometry(districts.geometry, source="gcj02", target="wgs84")
    before = shapely.get_coordinates(districts.geometry.values)
    after = shapely.get_coordinates(wgs.values)
    assert before.shape == after.shape == (11_614, 2)  # PROVENANCE.md: 11,614 vertices
    shift = _metres_apart(before[:, 0], before[:, 1], after[:, 0], after[:, 1])
    assert shift.min() > 500 and shift.max() < 650
    assert shapely.is_valid(wgs.values).all()
    # The shift barely changes areas: total stays near the documented ≈ 7,397 km².
    assert crs.area_km2(wgs).sum() == pytest.approx(7397, rel=0.005)


# --------------------------------------------------------------------------- projected helpers


def _square_km_in_wgs84(x0: float = 430_000.0, y0: float = 2_555_000.0) -> Polygon:
    """A 1 km × 1 km square built in EPSG:4547 near central Guangzhou, as WGS-84."""
    square = box(x0, y0, x0 + 1000.0, y0 + 1000.0)
    return shapely.transform(square, crs.xy_to_lonlat, interleaved=False)


def test_area_of_a_projected_one_km_square_is_one_km2():
    areas = crs.area_km2(_square_km_in_wgs84())
    assert isinstance(areas, np.ndarray) and areas.shape == (1,)
    assert areas[0] == pytest.approx(1.0, abs=1e-6)


def test_area_km2_accepts_arrays_and_geoseries_and_keeps_missing_as_nan():
    square = _square_km_in_wgs84()
    areas = crs.area_km2([square, None, Point(113.3, 23.1)])
    assert areas[0] == pytest.approx(1.0, abs=1e-6)
    assert np.isnan(areas[1]) and areas[2] == 0.0
    series = gpd.GeoSeries([square, square], crs=crs.WGS84)
    np.testing.assert_allclose(crs.area_km2(series), [1.0, 1.0], atol=1e-6)


def test_area_km2_refuses_projected_input():
    square = box(430_000, 2_555_000, 431_000, 2_556_000)
    with pytest.raises(CRSError, match="EPSG:4326"):
        crs.area_km2(square)
    with pytest.raises(CRSError, match="CRS mismatch"):
        crs.area_km2(gpd.GeoSeries([square], crs=crs.PROJECTED))
    with pytest.raises(CRSError, match="no CRS"):
        crs.area_km2(gpd.GeoSeries([_square_km_in_wgs84()]))


def test_lonlat_xy_round_trip_and_types():
    x, y = crs.lonlat_to_xy(114.0, 23.0)
    assert type(x) is float
    assert x == pytest.approx(500_000.0, abs=1e-6)  # CM 114°E has false easting 500 000
    assert crs.xy_to_lonlat(x, y) == pytest.approx((114.0, 23.0), abs=1e-12)
    lon, lat = _guangzhou_grid(11)
    back = crs.xy_to_lonlat(*crs.lonlat_to_xy(lon, lat))
    np.testing.assert_allclose(back, (lon, lat), atol=1e-10)
    xs, _ = crs.lonlat_to_xy([np.nan, 113.3], [23.0, 23.1])
    assert np.isnan(xs[0]) and np.isfinite(xs[1])


def test_lonlat_to_xy_measures_metres():
    # 0.01° of latitude near 23°N is about 1.108 km on the ellipsoid.
    _, y0 = crs.lonlat_to_xy(113.3, 23.00)
    _, y1 = crs.lonlat_to_xy(113.3, 23.01)
    assert y1 - y0 == pytest.approx(1107.9, abs=1.0)


def _frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": ["440103", "440104"]},
        geometry=[_square_km_in_wgs84(), _square_km_in_wgs84(432_000.0)],
        crs=crs.WGS84,
    )


def test_to_projected_and_back_round_trips():
    frame = _frame()
    projected = crs.to_projected(frame)
    assert projected.crs.to_epsg() == 4547
    assert projected.area.to_numpy() == pytest.approx([1e6, 1e6], abs=1e-3)
    back = crs.to_wgs84_frame(projected)
    assert back.crs.to_epsg() == 4326
    assert list(back["code"]) == ["440103", "440104"]
    assert_geoseries_equal(back.geometry, frame.geometry, check_less_precise=True)


def test_to_projected_accepts_geoseries_and_crs84():
    series = gpd.GeoSeries([Point(114.0, 23.0)], crs="OGC:CRS84")
    out = crs.to_projected(series)
    assert out.iloc[0].x == pytest.approx(500_000.0, abs=1e-6)


@pytest.mark.parametrize(
    ("frame_crs", "message"),
    [(None, "no CRS"), ("EPSG:4490", "CRS mismatch"), ("EPSG:4547", "CRS mismatch")],
    ids=["missing", "cgcs2000-geographic", "already-projected"],
)
def test_to_projected_refuses_to_guess(frame_crs, message):
    frame = _frame().set_crs(frame_crs, allow_override=True)
    with pytest.raises(CRSError, match=message) as info:
        crs.to_projected(frame)
    assert "坐标系" in str(info.value)


@pytest.mark.parametrize("frame_crs", [None, "EPSG:4326", "EPSG:32649"])
def test_to_wgs84_frame_requires_the_projected_crs(frame_crs):
    frame = _frame().set_crs(frame_crs, allow_override=True)
    with pytest.raises(CRSError):
        crs.to_wgs84_frame(frame)


def test_constants():
    assert crs.WGS84 == "EPSG:4326"
    assert crs.PROJECTED == "EPSG:4547"
    assert crs.SOURCE_SYSTEMS == ("wgs84", "gcj02", "bd09")
