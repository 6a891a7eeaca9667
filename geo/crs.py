"""The one home of gridgov's coordinate-system rule.

Store and exchange WGS-84 (EPSG:4326); measure areas and distances in
CGCS2000 / 3-degree Gauss-Kruger CM 114E (EPSG:4547), which holds all of
Guangzhou inside one zone with < 0.02 % scale error; meet the Chinese
"encrypted" systems GCJ-02 (火星坐标, AMap/Tencent) and BD-09 (Baidu) only at
the edges: converting input files, and drawing on Chinese basemaps.

GCJ-02 and BD-09 have no EPSG code and no PROJ pipeline, so they are done here
with the published formulas (wandergis/coordtransform ``index.js``; see
docs/domain.md §5), vectorised with numpy. The GCJ-02 → WGS-84
direction has no closed form: the cheap one-step inverse most libraries ship
is off by 1–2 m, so :func:`gcj02_to_wgs84` iterates until every point agrees
to 1e-9° (about 0.1 mm).

Like the reference libraries, points outside the China box are returned
unchanged, and NaN stays NaN (quietly: no numpy warnings).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer

from geo.errors import CRSError
from geo.vocab import CRS_SYSTEMS

__all__ = [
    "PROJECTED",
    "SOURCE_SYSTEMS",
    "WGS84",
    "area_km2",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "lonlat_to_xy",
    "to_projected",
    "to_wgs84",
    "to_wgs84_frame",
    "transform_geometry",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
    "xy_to_lonlat",
]

WGS84 = "EPSG:4326"
"""Storage and exchange CRS: every geometry gridgov keeps is lon/lat WGS-84."""

PROJECTED = "EPSG:4547"
"""CGCS2000 / 3-degree Gauss-Kruger CM 114E: metres, for areas and distances in Guangzhou."""

SOURCE_SYSTEMS = CRS_SYSTEMS
"""Names accepted by :func:`to_wgs84`, :func:`from_wgs84` and :func:`transform_geometry`."""

# Krasovsky-1940 constants of the GCJ-02 obfuscation (coordtransform index.js).
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

# China box of coordtransform (strict inequalities): outside it nothing is shifted.
_LON_MIN, _LON_MAX = 73.66, 135.05
_LAT_MIN, _LAT_MAX = 3.86, 53.55

_INVERSE_TOL_DEG = 1e-9
_INVERSE_MAX_ITER = 30

LonLat = tuple[Any, Any]


# --------------------------------------------------------------------------- point conversions


def wgs84_to_gcj02(lon: Any, lat: Any) -> LonLat:
    """Shift WGS-84 lon/lat to GCJ-02 (火星坐标), e.g. for drawing on AMap tiles.

    Parameters
    ----------
    lon, lat : float or array_like
        WGS-84 degrees; any matching shapes.

    Returns
    -------
    (lon, lat)
        GCJ-02 degrees, floats for scalar input, float arrays otherwise. Points outside
        China and NaN are returned unchanged.
    """
    return _inside_china(lon, lat, _gcj_forward)


def gcj02_to_wgs84(lon: Any, lat: Any) -> LonLat:
    """Recover WGS-84 lon/lat from GCJ-02 precisely (< 0.5 m, in practice < 1 mm).

    Fixed-point iteration ``w ← w − (gcj(w) − g)``: the offset changes by at most a few
    thousandths of its own size per degree, so every step gains about three decimal
    digits and all points converge to 1e-9° in three or four steps. Only unconverged
    points are iterated again.

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 degrees (AMap, Tencent, iOS maps in China).

    Returns
    -------
    (lon, lat)
        WGS-84 degrees; points outside China and NaN unchanged.
    """
    return _inside_china(lon, lat, _invert_gcj_offset)


def gcj02_to_bd09(lon: Any, lat: Any) -> LonLat:
    """Shift GCJ-02 lon/lat to BD-09, Baidu's further obfuscation on top of GCJ-02.

    Returns
    -------
    (lon, lat)
        BD-09 degrees; points outside China and NaN unchanged.
    """
    return _inside_china(lon, lat, _bd_forward)


def bd09_to_gcj02(lon: Any, lat: Any) -> LonLat:
    """Undo Baidu's BD-09 shift, giving GCJ-02 lon/lat (the published closed-form inverse).

    The closed form is what every reference library ships; it inverts
    :func:`gcj02_to_bd09` to within about 0.2 m anywhere in China (0.1 m in Guangzhou),
    well below the accuracy of the BD-09 formula itself against Baidu's maps.

    Returns
    -------
    (lon, lat)
        GCJ-02 degrees; points outside China and NaN unchanged.
    """
    return _inside_china(lon, lat, _bd_inverse)


def wgs84_to_bd09(lon: Any, lat: Any) -> LonLat:
    """Shift WGS-84 lon/lat to BD-09 (through GCJ-02), e.g. for a Baidu basemap.

    Returns
    -------
    (lon, lat)
        BD-09 degrees; points outside China and NaN unchanged.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: Any, lat: Any) -> LonLat:
    """Recover WGS-84 lon/lat from BD-09 (through GCJ-02, with the precise inverse).

    Returns
    -------
    (lon, lat)
        WGS-84 degrees; points outside China and NaN unchanged.
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_TO_WGS84: dict[str, Callable[[Any, Any], LonLat]] = {
    "wgs84": lambda lon, lat: _finish(*_as_float_arrays(lon, lat)),
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
_FROM_WGS84: dict[str, Callable[[Any, Any], LonLat]] = {
    "wgs84": lambda lon, lat: _finish(*_as_float_arrays(lon, lat)),
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def to_wgs84(lon: Any, lat: Any, source: str) -> LonLat:
    """Convert lon/lat given in ``source`` ("wgs84", "gcj02" or "bd09") to WGS-84.

    Raises
    ------
    CRSError
        ``source`` is not one of :data:`SOURCE_SYSTEMS`.
    """
    return _TO_WGS84[_check_system(source)](lon, lat)


def from_wgs84(lon: Any, lat: Any, target: str) -> LonLat:
    """Convert WGS-84 lon/lat to ``target`` ("wgs84", "gcj02" or "bd09").

    Raises
    ------
    CRSError
        ``target`` is not one of :data:`SOURCE_SYSTEMS`.
    """
    return _FROM_WGS84[_check_system(target)](lon, lat)


def transform_geometry(geom: Any, *, source: str, target: str) -> Any:
    """Convert a geometry (or an array / GeoSeries of them) between WGS-84, GCJ-02 and BD-09.

    Used to bring AMap-derived (GCJ-02) boundaries into WGS-84 for storage, and to shift
    stored WGS-84 shapes to GCJ-02 for display on AMap tiles. Every vertex is converted;
    Z is dropped (no gridgov layer has one).

    Parameters
    ----------
    geom : shapely.Geometry, array_like of geometries, GeoSeries or GeoDataFrame
        A GeoSeries keeps its index, name and CRS label (GCJ-02 has no EPSG code, so the
        label stays EPSG:4326 either way); a GeoDataFrame is copied with its active
        geometry column converted.
    source, target : str
        One of :data:`SOURCE_SYSTEMS`.

    Returns
    -------
    Same kind as ``geom``.

    Raises
    ------
    CRSError
        An unknown system name.
    """
    src, dst = _check_system(source), _check_system(target)
    if src == dst:
        return geom

    def _convert(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return from_wgs84(*_TO_WGS84[src](x, y), dst)

    if isinstance(geom, gpd.GeoDataFrame):
        out = geom.copy()
        out[geom.geometry.name] = transform_geometry(geom.geometry, source=src, target=dst)
        return out
    if isinstance(geom, gpd.GeoSeries):
        values = shapely.transform(geom.values, _convert, interleaved=False)
        return gpd.GeoSeries(values, index=geom.index, crs=geom.crs, name=geom.name)
    return shapely.transform(geom, _convert, interleaved=False)


# --------------------------------------------------------------------------- projected helpers


def to_projected(frame: gpd.GeoDataFrame | gpd.GeoSeries) -> gpd.GeoDataFrame | gpd.GeoSeries:
    """Project a WGS-84 frame or series to EPSG:4547 metres (step 1 of project → operate → back).

    Raises
    ------
    CRSError
        The input has no CRS or a CRS other than EPSG:4326: gridgov never guesses.
    """
    _require_crs(frame, WGS84, hint="gdf.set_crs('EPSG:4326') / gdf.to_crs('EPSG:4326')")
    return frame.to_crs(PROJECTED)


def to_wgs84_frame(frame: gpd.GeoDataFrame | gpd.GeoSeries) -> gpd.GeoDataFrame | gpd.GeoSeries:
    """Project an EPSG:4547 frame or series back to WGS-84 (the last step of the round trip).

    Raises
    ------
    CRSError
        The input has no CRS or a CRS other than EPSG:4547.
    """
    _require_crs(frame, PROJECTED, hint="project it with geo.crs.to_projected first")
    return frame.to_crs(WGS84)


def area_km2(geoms: Any) -> np.ndarray:
    """Compute the area in km² of WGS-84 geometries, measured in EPSG:4547.

    Parameters
    ----------
    geoms : shapely.Geometry, array_like of geometries, or geopandas.GeoSeries
        Lon/lat degrees. A GeoSeries must carry EPSG:4326; bare geometries are checked
        to lie within lon/lat range, so projected metres are caught rather than
        silently giving nonsense.

    Returns
    -------
    numpy.ndarray
        float64 areas in km², one per geometry (a 1-element array for a single one);
        NaN for a missing geometry.

    Raises
    ------
    CRSError
        The CRS is missing or not EPSG:4326, or coordinates are outside lon/lat range.
    """
    values = _wgs84_geometry_array(geoms)
    projected = shapely.transform(values, _lonlat_to_xy_pair, interleaved=False)
    return shapely.area(projected) / 1e6


def lonlat_to_xy(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Project WGS-84 lon/lat to EPSG:4547 x/y metres (easting, northing).

    Returns
    -------
    (x, y)
        Floats for scalar input, float arrays otherwise; NaN stays NaN.
    """
    x, y, scalar = _as_float_arrays(lon, lat)
    return _finish(*_lonlat_to_xy_pair(x, y), scalar)


def xy_to_lonlat(x: Any, y: Any) -> tuple[Any, Any]:
    """Unproject EPSG:4547 x/y metres to WGS-84 lon/lat.

    Returns
    -------
    (lon, lat)
        Floats for scalar input, float arrays otherwise; NaN stays NaN.
    """
    xs, ys, scalar = _as_float_arrays(x, y)
    lon, lat = _transformer(PROJECTED, WGS84).transform(xs, ys)
    return _finish(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), scalar)


# --------------------------------------------------------------------------- private helpers


def _as_float_arrays(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Broadcast inputs to float64 arrays and remember whether both were scalars."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    scalar = x.ndim == 0 and y.ndim == 0
    x, y = np.broadcast_arrays(x, y)
    return np.array(x, dtype=float), np.array(y, dtype=float), scalar


def _finish(x: np.ndarray, y: np.ndarray, scalar: bool = False) -> LonLat:
    """Return floats for scalar input, arrays otherwise."""
    if scalar:
        return float(x), float(y)
    return x, y


def _inside_china(
    lon: Any, lat: Any, shift: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
) -> LonLat:
    """Apply a coordinate shift to the points inside China; leave the rest (and NaN) as given."""
    x, y, scalar = _as_float_arrays(lon, lat)
    out_x, out_y = x.copy(), y.copy()
    inside = _in_china(x, y)
    out_x[inside], out_y[inside] = shift(x[inside], y[inside])
    return _finish(out_x, out_y, scalar)


def _gcj_forward(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d_lon, d_lat = _gcj_offset(x, y)
    return x + d_lon, y + d_lat


def _in_china(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mask of points inside the China box (NaN compares False, so it is 'outside')."""
    return (x > _LON_MIN) & (x < _LON_MAX) & (y > _LAT_MIN) & (y < _LAT_MAX)


def _gcj_offset(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS-84, in degrees, at WGS-84 points (no box check)."""
    u, v = x - 105.0, y - 35.0
    common = (20.0 * np.sin(6.0 * u * np.pi) + 20.0 * np.sin(2.0 * u * np.pi)) * 2.0 / 3.0
    root = np.sqrt(np.abs(u))
    d_lat = -100.0 + 2.0 * u + 3.0 * v + 0.2 * v * v + 0.1 * u * v + 0.2 * root + common
    d_lat += (20.0 * np.sin(v * np.pi) + 40.0 * np.sin(v / 3.0 * np.pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(v / 12.0 * np.pi) + 320.0 * np.sin(v * np.pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + u + 2.0 * v + 0.1 * u * u + 0.1 * u * v + 0.1 * root + common
    d_lon += (20.0 * np.sin(u * np.pi) + 40.0 * np.sin(u / 3.0 * np.pi)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(u / 12.0 * np.pi) + 300.0 * np.sin(u / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return d_lon, d_lat


def _invert_gcj_offset(gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``w + offset(w) = g`` for w by fixed-point iteration, all points at once."""
    wx, wy = gx.copy(), gy.copy()
    todo = np.arange(gx.size)
    for _ in range(_INVERSE_MAX_ITER):
        d_lon, d_lat = _gcj_offset(wx[todo], wy[todo])
        err_x = wx[todo] + d_lon - gx[todo]
        err_y = wy[todo] + d_lat - gy[todo]
        wx[todo] -= err_x
        wy[todo] -= err_y
        todo = todo[(np.abs(err_x) >= _INVERSE_TOL_DEG) | (np.abs(err_y) >= _INVERSE_TOL_DEG)]
        if todo.size == 0:
            break
    return wx, wy


def _bd_forward(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → BD-09 formula (no box check)."""
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_inverse(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 → GCJ-02 formula (no box check)."""
    x, y = x - 0.0065, y - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _check_system(name: str) -> str:
    """Return ``name`` if it is a known coordinate system, else raise a bilingual CRSError."""
    if name not in SOURCE_SYSTEMS:
        raise CRSError(
            f"未知坐标系 {name!r}，应为 {' / '.join(SOURCE_SYSTEMS)} 之一 | "
            f"unknown coordinate system {name!r}; use one of {', '.join(SOURCE_SYSTEMS)} "
            "(gcj02 = AMap/Tencent, bd09 = Baidu, wgs84 = GPS/OSM)"
        )
    return name


def _require_crs(frame: gpd.GeoDataFrame | gpd.GeoSeries, expected: str, *, hint: str) -> None:
    """Raise CRSError unless ``frame`` carries exactly the ``expected`` CRS."""
    crs = frame.crs
    if crs is None:
        raise CRSError(
            f"数据没有坐标系（CRS），应为 {expected} | the data has no CRS; "
            f"expected {expected} ({hint})"
        )
    if not crs.equals(CRS.from_user_input(expected), ignore_axis_order=True):
        raise CRSError(
            f"坐标系不符：为 {crs.to_string()}，应为 {expected} | CRS mismatch: got "
            f"{crs.to_string()}, expected {expected} ({hint})"
        )


def _wgs84_geometry_array(geoms: Any) -> np.ndarray:
    """Check that ``geoms`` are lon/lat WGS-84 and return them as a 1-d geometry array."""
    if isinstance(geoms, gpd.GeoSeries | gpd.GeoDataFrame):
        _require_crs(geoms, WGS84, hint="gdf.to_crs('EPSG:4326')")
        geoms = geoms.geometry.values
    values = np.atleast_1d(np.asarray(geoms, dtype=object))
    xmin, ymin, xmax, ymax = shapely.total_bounds(values)
    if np.isfinite(xmin) and (xmin < -180 or xmax > 180 or ymin < -90 or ymax > 90):
        raise CRSError(
            "坐标超出经纬度范围，几何可能已是投影坐标（米），应为 EPSG:4326 | coordinates are "
            f"outside lon/lat range (bounds {xmin:.0f}, {ymin:.0f}, {xmax:.0f}, {ymax:.0f}): "
            "these look like projected metres; pass WGS-84 (EPSG:4326) geometries"
        )
    return values


_local = threading.local()


def _transformer(source: str, target: str) -> Transformer:
    """Return a cached lon/lat-ordered Transformer (one per thread: pyproj objects are not
    meant to be shared across threads)."""
    cache: dict[tuple[str, str], Transformer] = _local.__dict__.setdefault("cache", {})
    key = (source, target)
    if key not in cache:
        cache[key] = Transformer.from_crs(source, target, always_xy=True)
    return cache[key]


def _lonlat_to_xy_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 lon/lat arrays → EPSG:4547 metre arrays."""
    px, py = _transformer(WGS84, PROJECTED).transform(x, y)
    return np.asarray(px, dtype=float), np.asarray(py, dtype=float)
