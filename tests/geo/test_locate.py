"""PointLocator / attach_points on hand-made shapes, plus agreement with geopandas.sjoin."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from geo.crs import lonlat_to_xy, xy_to_lonlat
from geo.errors import CRSError, GridValidationError
from geo.locate import PointLocator, attach_points

# A 2×2 grid of 0.01° squares near Guangzhou (Haizhu), codes chosen so the
# smallest code is NOT the first geometry: the tie rule must follow codes.
X0, Y0, S = 113.30, 23.10, 0.01
#      code            lon range              lat range
#  "440105003001"  113.30–113.31 (west)   23.11–23.12 (north)   index 0  NW
#  "440105003002"  113.31–113.32 (east)   23.11–23.12 (north)   index 1  NE
#  "440105001001"  113.30–113.31 (west)   23.10–23.11 (south)   index 2  SW  (smallest code)
#  "440105001002"  113.31–113.32 (east)   23.10–23.11 (south)   index 3  SE
CODES = ["440105003001", "440105003002", "440105001001", "440105001002"]
NW, NE, SW, SE = 0, 1, 2, 3


def _square(i: int, j: int) -> Polygon:
    return box(X0 + i * S, Y0 + j * S, X0 + (i + 1) * S, Y0 + (j + 1) * S)


GEOMS = [_square(0, 1), _square(1, 1), _square(0, 0), _square(1, 0)]


@pytest.fixture(params=[0.001, 0.0007, 0.02], ids=["aligned-raster", "odd-raster", "coarse"])
def grid2x2(request: pytest.FixtureRequest) -> PointLocator:
    # 0.001 puts raster lines exactly on the cell edges; 0.0007 does not; 0.02 makes
    # every raster cell ambiguous. The answers must not depend on it.
    return PointLocator(CODES, GEOMS, resolution_deg=request.param)


def _locate(locator: PointLocator, points: list[tuple[float, float]]) -> list[int]:
    lon, lat = np.array(points, dtype=float).T
    return locator.locate(lon, lat).tolist()


def test_inside_points_get_their_square(grid2x2: PointLocator) -> None:
    points = [(113.305, 23.115), (113.315, 23.115), (113.305, 23.105), (113.3199, 23.1001)]
    assert _locate(grid2x2, points) == [NW, NE, SW, SE]


def test_shared_edge_goes_to_smallest_code(grid2x2: PointLocator) -> None:
    points = [
        (113.31, 23.105),  # SW | SE  -> SW (440105001001)
        (113.31, 23.115),  # NW | NE  -> NW (440105003001)
        (113.305, 23.11),  # SW / NW  -> SW
        (113.315, 23.11),  # SE / NE  -> SE (440105001002)
    ]
    assert _locate(grid2x2, points) == [SW, NW, SW, SE]


def test_corner_of_four_goes_to_smallest_code(grid2x2: PointLocator) -> None:
    assert _locate(grid2x2, [(113.31, 23.11)]) == [SW]


def test_outer_boundary_counts_as_inside(grid2x2: PointLocator) -> None:
    # "intersects" semantics: the boundary of the only cell there is inside it.
    points = [(113.30, 23.115), (113.32, 23.105), (113.305, 23.12), (113.30, 23.10)]
    assert _locate(grid2x2, points) == [NW, SE, NW, SW]


def test_outside_nan_and_infinite_points_are_unplaced(grid2x2: PointLocator) -> None:
    points = [
        (113.2999, 23.105),
        (113.33, 23.115),
        (113.31, 23.1201),
        (0.0, 0.0),
        (np.nan, 23.105),
        (113.305, np.nan),
        (np.inf, 23.105),
    ]
    assert _locate(grid2x2, points) == [-1] * 7


def test_empty_input_gives_empty_results(grid2x2: PointLocator) -> None:
    empty = np.array([], dtype=float)
    assert grid2x2.locate(empty, empty).shape == (0,)
    result = attach_points(empty, empty, grid2x2)
    assert result.index.shape == result.method.shape == result.distance_m.shape == (0,)


def _east_of_grid(metres: float, lat: float = 23.105) -> tuple[float, float]:
    x, y = lonlat_to_xy(113.32, lat)
    return xy_to_lonlat(x + metres, y)


def test_point_100m_outside_snaps_to_nearest_with_distance(grid2x2: PointLocator) -> None:
    lon, lat = _east_of_grid(100.0)
    result = attach_points([lon], [lat], grid2x2, max_distance_m=200.0)
    assert result.index.tolist() == [SE]
    assert result.method.tolist() == ["nearest"]
    assert result.distance_m[0] == pytest.approx(100.0, abs=1.0)


def test_point_300m_outside_stays_unplaced(grid2x2: PointLocator) -> None:
    lon, lat = _east_of_grid(300.0)
    result = attach_points([lon], [lat], grid2x2, max_distance_m=200.0)
    assert result.index.tolist() == [-1]
    assert result.method.tolist() == [""]
    assert np.isnan(result.distance_m[0])


def test_attach_points_mixes_methods(grid2x2: PointLocator) -> None:
    near = _east_of_grid(100.0, lat=23.115)
    far = _east_of_grid(300.0)
    lon = np.array([113.305, near[0], far[0], np.nan, 113.31])
    lat = np.array([23.105, near[1], far[1], 23.1, 23.11])
    result = attach_points(lon, lat, grid2x2)
    assert result.index.tolist() == [SW, NE, -1, -1, SW]
    assert result.method.tolist() == ["point", "nearest", "", "", "point"]
    assert np.isnan(result.distance_m[[0, 2, 3, 4]]).all()
    assert result.counts() == {"point": 2, "nearest": 1, "unplaced": 2}


def test_nearest_reports_distance_and_respects_limit(grid2x2: PointLocator) -> None:
    lon, lat = zip(_east_of_grid(50.0), _east_of_grid(150.0), (np.nan, np.nan), strict=True)
    index, distance = grid2x2.nearest(np.array(lon), np.array(lat), max_distance_m=100.0)
    assert index.tolist() == [SE, -1, -1]
    assert distance[0] == pytest.approx(50.0, abs=1.0)
    assert np.isnan(distance[1:]).all()


def test_hole_filled_by_another_cell() -> None:
    # "ring" is a 0.03° square with a 0.01° hole; "plug" fills the hole exactly.
    outer = box(113.30, 23.10, 113.33, 23.13)
    hole = box(113.31, 23.11, 113.32, 23.12)
    ring = Polygon(outer.exterior.coords, [hole.exterior.coords])
    locator = PointLocator(["440105002002", "440105002001"], [ring, hole])
    points = [
        (113.305, 23.105),  # in the ring
        (113.315, 23.115),  # in the hole -> plug
        (113.31, 23.115),  # on the hole's edge: both -> smallest code (plug)
        (113.325, 23.125),  # in the ring, beyond the hole
    ]
    assert _locate(locator, points) == [0, 1, 1, 0]


def test_hole_without_filler_is_outside() -> None:
    outer = box(113.30, 23.10, 113.33, 23.13)
    hole = box(113.31, 23.11, 113.32, 23.12)
    ring = Polygon(outer.exterior.coords, [hole.exterior.coords])
    locator = PointLocator(["440105002002"], [ring])
    points = [(113.315, 23.115), (113.31, 23.115), (113.305, 23.105)]
    assert _locate(locator, points) == [-1, 0, 0]  # hole, hole's edge, ring


def test_multipolygon_cell_with_an_island() -> None:
    mainland = box(113.30, 23.10, 113.31, 23.11)
    island = box(113.35, 23.10, 113.36, 23.11)
    neighbour = box(113.31, 23.10, 113.32, 23.11)
    locator = PointLocator(["b", "a"], [MultiPolygon([mainland, island]), neighbour])
    points = [(113.305, 23.105), (113.355, 23.105), (113.315, 23.105), (113.33, 23.105)]
    assert _locate(locator, points) == [0, 0, 1, -1]


def test_input_shapes_are_checked() -> None:
    with pytest.raises(GridValidationError, match="2 codes but 1 geometries"):
        PointLocator(["a", "b"], [GEOMS[0]])
    with pytest.raises(GridValidationError, match="appears more than once"):
        PointLocator(["a", "a"], GEOMS[:2])
    with pytest.raises(GridValidationError, match="not a Polygon"):
        PointLocator(["a"], [shapely.Point(113.3, 23.1)])
    bowtie = Polygon([(113.30, 23.10), (113.31, 23.11), (113.31, 23.10), (113.30, 23.11)])
    with pytest.raises(GridValidationError, match="invalid"):
        PointLocator(["a"], [bowtie])
    with pytest.raises(GridValidationError, match="no cells"):
        PointLocator([], [])


def test_from_frame_requires_wgs84() -> None:
    frame = gpd.GeoDataFrame({"code": CODES}, geometry=GEOMS, crs=4326)
    assert PointLocator.from_frame(frame).locate([113.305], [23.105]).tolist() == [SW]
    with pytest.raises(CRSError, match="EPSG:4326"):
        PointLocator.from_frame(frame.to_crs(4547))


# -- randomized agreement with geopandas.sjoin ----------------------------------------


def _voronoi_coverage(n_cells: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Voronoi cells clipped to a concave polygon with a hole: borders at every angle."""
    area = Polygon(
        [(113.20, 23.00), (113.50, 23.02), (113.45, 23.20), (113.35, 23.12), (113.22, 23.25)],
        [[(113.30, 23.05), (113.34, 23.05), (113.34, 23.08), (113.30, 23.08)]],
    )
    seeds = rng.uniform((113.20, 23.00), (113.50, 23.25), size=(n_cells * 3, 2))
    seeds = seeds[shapely.contains_xy(area, seeds[:, 0], seeds[:, 1])][:n_cells]
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds)))
    clipped = shapely.intersection(cells, area)
    clipped = clipped[~shapely.is_empty(clipped)]
    codes = [f"4401{i:08d}" for i in rng.permutation(len(clipped))]
    return gpd.GeoDataFrame({"code": codes}, geometry=clipped, crs=4326)


def _sjoin_smallest_code(coverage: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray):
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    joined = gpd.sjoin(points, coverage, predicate="intersects").reset_index()
    best = joined.sort_values(["index", "code"]).drop_duplicates("index")
    expected = np.full(len(lon), -1)
    expected[best["index"].to_numpy()] = best["index_right"].to_numpy()
    return expected, joined.groupby("index").size()


@pytest.mark.parametrize("resolution_deg", [0.001, 0.003])
def test_agrees_with_sjoin_on_random_and_border_points(resolution_deg: float) -> None:
    rng = np.random.default_rng(2024)
    coverage = _voronoi_coverage(300, rng)
    random_xy = rng.uniform((113.18, 22.98), (113.52, 23.27), size=(20_000, 2))
    # Vertices of the cells: on borders, where most tie and rounding bugs would hide.
    vertices = shapely.get_coordinates(coverage.geometry.to_numpy())
    border_xy = vertices[rng.choice(len(vertices), size=2_000)]
    lon, lat = np.concatenate([random_xy, border_xy]).T
    lon, lat = lon.copy(), lat.copy()

    locator = PointLocator.from_frame(coverage, resolution_deg=resolution_deg)
    found = locator.locate(lon, lat)
    expected, matches_per_point = _sjoin_smallest_code(coverage, lon, lat)

    np.testing.assert_array_equal(found, expected)
    assert (matches_per_point > 1).sum() > 500  # the border points really tie
    assert (expected == -1).sum() > 1_000  # and plenty fall outside or in the hole
