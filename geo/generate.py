"""Generate plausible street and village polygons (示意边界) inside real district boundaries.

Only Guangzhou's eleven district polygons are public; no boundary set exists for its 178
streets/towns (镇街) or 2,851 villages/communities (村居) (see the data's PROVENANCE.md). The
dashboard still needs a complete grid to attach cases to, so this module draws one: every parent
is tiled exactly by its children, cell sizes follow what the division codes say (a 街道 is small
and urban, a 镇 large and rural), the city gets denser toward its historic centre, and codes that
are numerically close tend to sit side by side. The result is a *generated* boundary and must be
labelled as such (示意边界) wherever it is shown; a user's real boundary file replaces it.

How a parent is split (all steps deterministic for a ``seed``):

1. Sample a jittered square lattice of points inside the parent in a local kilometre plane; each
   point carries the area of its Voronoi cell clipped to the parent as its mass.
2. Give every child a target area = parent area x its weight share (`size_weights`), nudged by a
   gentle gradient that makes cells far from an urban centre larger.
3. Seed the children: urban kinds (街道/居委会) take the points nearest an urban centre, the rest
   take the remainder; inside each group, children in code order take consecutive runs of points
   along a Hilbert curve, so neighbouring codes are neighbours on the map.
4. Relax: alternate a power-diagram assignment of points to child seeds (the additive power
   weights are tuned until each child holds its target mass) with moving each seed to the
   centroid of its points (a capacity-constrained Lloyd iteration). Cells come out compact and
   convex-ish, with the requested areas.
5. Each child's polygon is the union of the Voronoi cells of its points, intersected with the
   parent. Voronoi cells share their vertices exactly, so children tile the parent without gaps
   or overlaps; boundaries zig-zag slightly at the lattice scale, like surveyed boundaries do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import geopandas
import numpy as np
import pandas
import shapely
from shapely.geometry.base import BaseGeometry

from geo.codes import unit_kind as division_kind
from geo.errors import CodeError, GridValidationError

WGS84 = "EPSG:4326"

#: Historic centre of Guangzhou (越秀/荔湾/海珠/天河 meet around 人民公园), WGS-84.
CITY_CENTRE: tuple[float, float] = (113.264, 23.129)

#: Urban centres as (lon, lat, reach). A point's urban distance is min(distance / reach) in km,
#: so a reach of 0.5 means "as urban at 5 km as the historic centre is at 10 km". The district
#: seats are approximate (well-known town centres, WGS-84, ±1 km) and only steer where the
#: generated 街道/居委会 cluster; they are not data.
URBAN_CENTRES: tuple[tuple[float, float, float], ...] = (
    (*CITY_CENTRE, 1.0),
    (113.384, 22.938, 0.5),  # 番禺 市桥
    (113.220, 23.404, 0.5),  # 花都 新华
    (113.586, 23.548, 0.4),  # 从化 街口
    (113.810, 23.261, 0.4),  # 增城 荔城
    (113.525, 22.801, 0.4),  # 南沙 南沙街
    (113.459, 23.106, 0.6),  # 黄埔 (old port area)
    (113.460, 23.180, 0.5),  # 黄埔 萝岗/科学城
)

#: Relative area weight per kind of unit. Street digits 7–9 and village digits 10–12 decide
#: the kind (docs/domain.md §4). The ratios are a judgement: a Guangzhou 镇 is typically several times
#: the area of a 街道, a 村委会 several times a 居委会; special units differ by level.
STREET_KIND_WEIGHTS: dict[str, float] = {
    "subdistrict": 1.0,  # 001–099 街道
    "town": 6.0,  # 100–199 镇
    "township": 6.0,  # 200–399 乡
    "special": 4.0,  # 400+ e.g. 水库/林场: large, rural
}
VILLAGE_KIND_WEIGHTS: dict[str, float] = {
    "community": 1.0,  # 001–199 居委会
    "village": 5.0,  # 200–399 村委会
    "special": 0.6,  # 4xx/5xx 虚拟社区/虚拟生活区: small
}
#: The kinds above, named from what geo.codes.unit_kind reads in the code (docs/domain.md §4).
_KIND_NAMES: dict[str, dict[str, str]] = {
    "street": {"街道": "subdistrict", "镇": "town", "乡": "township", "特殊区域": "special"},
    "village": {"居委会": "community", "村委会": "village", "类居委会": "special_urban",
                "类村委会": "special_rural"},
}
#: Kinds placed on the urban side of their parent.
URBAN_KINDS: frozenset[str] = frozenset({"subdistrict", "community", "special_urban"})

#: Sample points the smallest child should get (smooth enough boundary), and a cap per parent.
_MIN_POINTS = 12
_MAX_POINTS = 40_000
#: Urban distance (km) at which the size gradient has multiplied a target area by 2**gradient.
_GRADIENT_KM = 4.0
_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON_EQ = 111.320


# ----------------------------------------------------------------------------- public API
def unit_kind(codes: pandas.Series, *, level: str) -> pandas.Series:
    """Name the kind of each unit from its 12-digit code (docs/domain.md §4).

    Parameters
    ----------
    codes
        12-digit division codes (统计用区划代码) as strings.
    level
        ``"street"`` (digits 7–9 decide) or ``"village"`` (digits 10–12 decide).

    Returns
    -------
    pandas.Series
        For streets one of ``subdistrict`` (街道), ``town`` (镇), ``township`` (乡),
        ``special``; for villages ``community`` (居委会), ``village`` (村委会), ``special_urban``
        (4xx, like a 居委会) or ``special_rural`` (5xx, like a 村委会). Same index as ``codes``.
    """
    if level not in _KIND_NAMES:
        raise ValueError(f"level must be 'street' or 'village', not {level!r}")
    codes = codes.astype(str)
    bad = ~codes.str.fullmatch(r"\d{12}")
    if bad.any():
        raise CodeError(
            f"{int(bad.sum())} code(s) are not 12 digits, e.g. {codes[bad].iloc[0]!r}; "
            "pass full 12-digit statistical division codes."
        )
    kinds = codes.map(division_kind).map(_KIND_NAMES[level])
    return kinds.astype(object)


def size_weights(codes: pandas.Series, *, level: str) -> pandas.Series:
    """Turn what the codes say into relative area weights (expected area share within a parent).

    A 街道 (street digits 001–099) weighs 1 and a 镇 (100–199) 6; special street units (400+,
    e.g. 黄龙带水库, 大岭山林场) are large (4). A 居委会 (village digits 001–199) weighs 1, a
    村委会 (200–399) 5, and virtual/special units (4xx/5xx) are small (0.6). Only ratios between
    siblings matter; `generate_children` adds the urban-centre gradient on top.

    Parameters
    ----------
    codes
        12-digit division codes as strings.
    level
        ``"street"`` or ``"village"``.

    Returns
    -------
    pandas.Series
        Float weights > 0, same index as ``codes``.
    """
    kinds = unit_kind(codes, level=level)
    table = (
        STREET_KIND_WEIGHTS
        if level == "street"
        else {
            **VILLAGE_KIND_WEIGHTS,
            "special_urban": VILLAGE_KIND_WEIGHTS["special"],
            "special_rural": VILLAGE_KIND_WEIGHTS["special"],
        }
    )
    return kinds.map(table).astype(float)


def generate_children(
    parents: geopandas.GeoDataFrame,
    children: pandas.DataFrame,
    *,
    seed: int = 2023,
    urban: pandas.Series | None = None,
    gradient: float = 0.6,
    points_per_child: int = 90,
    centres: Sequence[tuple[float, float, float]] = URBAN_CENTRES,
) -> geopandas.GeoDataFrame:
    """Tile every parent polygon exactly with generated child polygons.

    Parameters
    ----------
    parents
        Columns ``code`` and ``geometry`` (Polygon/MultiPolygon, EPSG:4326).
    children
        Columns ``code``, ``name``, ``parent_code`` and ``weight`` (relative expected area
        share within the parent, > 0). Every ``parent_code`` must be in ``parents.code``.
    seed
        Same seed and input give byte-identical geometry.
    urban
        Boolean per child (same index as ``children``): placed on the urban side of its
        parent. Default: children whose weight is below the geometric mean of their siblings'
        smallest and largest weight (the small kinds: 街道, 居委会).
    gradient
        Exponent of the size gradient: a child whose seed is ``d`` urban-km from the nearest
        centre gets its target area multiplied by ``(1 + d / 4 km) ** gradient`` before
        normalising. 0 makes areas follow ``weight`` alone.
    points_per_child
        Lattice points per child on average; more gives smoother boundaries and better area
        control at a linear cost in time.
    centres
        Urban centres as (lon, lat, reach); see `URBAN_CENTRES`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``children`` (same rows, same order) plus a ``geometry`` column of MultiPolygons in
        EPSG:4326.
    """
    _check_inputs(parents, children)
    urban_flags = _default_urban(children) if urban is None else urban.reindex(children.index)
    parent_geom = dict(zip(parents["code"].astype(str), parents.geometry.values, strict=True))
    centres_arr = np.asarray(centres, dtype=float)
    out = np.empty(len(children), dtype=object)
    positions = pandas.RangeIndex(len(children))
    groups = pandas.Series(positions, index=children.index).groupby(
        children["parent_code"].astype(str).values, sort=True
    )
    for parent_code, pos in groups:
        idx = pos.to_numpy()
        sub = children.iloc[idx]
        geoms = _split_parent(
            parent_geom[parent_code],
            codes=sub["code"].astype(str).to_numpy(),
            weights=sub["weight"].to_numpy(dtype=float),
            urban=urban_flags.iloc[idx].to_numpy(dtype=bool),
            rng=np.random.default_rng([seed, int(parent_code)]),
            gradient=gradient,
            points_per_child=points_per_child,
            centres=centres_arr,
        )
        out[idx] = geoms
    return geopandas.GeoDataFrame(children.copy(), geometry=out, crs=WGS84)


def generate_grid(
    districts: geopandas.GeoDataFrame,
    divisions: pandas.DataFrame,
    *,
    seed: int = 2023,
) -> geopandas.GeoDataFrame:
    """Generate streets inside districts, then villages inside streets.

    Parameters
    ----------
    districts
        Columns ``code`` (12 digits) and ``geometry`` (EPSG:4326, already WGS-84).
    divisions
        Division table with ``code``, ``name``, ``level`` (``street``/``village``) and
        ``parent_code``; other levels are ignored.
    seed
        Same seed and input give byte-identical geometry.

    Returns
    -------
    geopandas.GeoDataFrame
        Streets then villages (in ``divisions`` order within each level) with ``code``,
        ``name``, ``level``, ``parent_code`` and ``geometry`` (MultiPolygon, EPSG:4326).
    """
    streets = _children_of_level(divisions, level="street")
    villages = _children_of_level(divisions, level="village")
    street_geo = generate_children(
        districts[["code", "geometry"]],
        streets,
        seed=seed,
        urban=unit_kind(streets["code"], level="street").isin(URBAN_KINDS),
    )
    village_geo = generate_children(
        street_geo[["code", "geometry"]],
        villages,
        seed=seed,
        urban=unit_kind(villages["code"], level="village").isin(URBAN_KINDS),
    )
    grid = pandas.concat([street_geo, village_geo], ignore_index=True)
    return geopandas.GeoDataFrame(
        grid[["code", "name", "level", "parent_code", "geometry"]], geometry="geometry", crs=WGS84
    )


# ----------------------------------------------------------------------------- input checks
def _check_inputs(parents: geopandas.GeoDataFrame, children: pandas.DataFrame) -> None:
    problems: list[str] = []
    if parents.crs is None or not parents.crs.equals(WGS84):
        problems.append(f"parents must be in EPSG:4326 (WGS-84), got {parents.crs}")
    for col in ("code", "name", "parent_code", "weight"):
        if col not in children.columns:
            problems.append(f"children lack the column {col!r}")
    if problems:
        raise GridValidationError(problems)
    known = set(parents["code"].astype(str))
    orphans = sorted(set(children["parent_code"].astype(str)) - known)
    if orphans:
        problems.append(f"{len(orphans)} parent code(s) missing from parents, e.g. {orphans[0]}")
    weights = children["weight"].to_numpy(dtype=float)
    if not np.all(np.isfinite(weights) & (weights > 0)):
        problems.append("every child weight must be a finite number > 0")
    empty = parents.geometry.is_empty | parents.geometry.isna()
    for code in parents.loc[empty.to_numpy(), "code"]:
        problems.append(f"{code}: 上级单元边界为空，无法生成下级 / the geometry of parent {code} "
                        "is empty: its children cannot be generated")
    if problems:
        raise GridValidationError(problems)


def _default_urban(children: pandas.DataFrame) -> pandas.Series:
    by_parent = children.groupby(children["parent_code"].astype(str))["weight"]
    cut = np.sqrt(by_parent.transform("min") * by_parent.transform("max"))
    return children["weight"] < cut


def _children_of_level(divisions: pandas.DataFrame, *, level: str) -> pandas.DataFrame:
    rows = divisions.loc[divisions["level"] == level, ["code", "name", "level", "parent_code"]]
    rows = rows.astype({"code": str, "parent_code": str}).reset_index(drop=True)
    return rows.assign(weight=size_weights(rows["code"], level=level))


# ----------------------------------------------------------------------------- one parent
def _split_parent(
    parent: BaseGeometry,
    *,
    codes: np.ndarray,
    weights: np.ndarray,
    urban: np.ndarray,
    rng: np.random.Generator,
    gradient: float,
    points_per_child: int,
    centres: np.ndarray,
) -> np.ndarray:
    k = len(codes)
    if k == 1:
        return np.array([_as_multipolygon(parent)], dtype=object)
    plane = _LocalPlane(parent)
    n_points = max(k * points_per_child, math.ceil(_MIN_POINTS * weights.sum() / weights.min()))
    px, py = _sample_lattice(parent, plane, n=min(n_points, _MAX_POINTS), rng=rng)
    lon, lat = plane.to_lonlat(px, py)
    cells = shapely.voronoi_polygons(
        shapely.multipoints(np.column_stack([lon, lat])),
        extend_to=shapely.box(*shapely.buffer(shapely.envelope(parent), 0.05).bounds),
        ordered=True,
    )
    cells = shapely.get_parts(cells)
    mass = _clipped_area(cells, parent, plane)
    urban_dist = _urban_distance(lon, lat, centres)
    order = np.lexsort((codes, ~urban))  # urban first, then code order
    labels0 = _initial_labels(px, py, mass, urban_dist, weights[order], urban[order])
    seeds = _centroids(px, py, mass, labels0, k)
    seed_dist = _urban_distance(*plane.to_lonlat(seeds[:, 0], seeds[:, 1]), centres)
    target = weights[order] * (1.0 + seed_dist / _GRADIENT_KM) ** gradient
    target = target / target.sum() * mass.sum()
    labels = _relax(px, py, mass, seeds, target)
    labels = _fill_empty(px, py, labels, k)
    geoms = _assemble(cells, labels, parent, k)
    result = np.empty(k, dtype=object)
    result[order] = geoms
    return result


class _LocalPlane:
    """Equirectangular kilometre plane around a parent: good to <0.5 % over a district."""

    def __init__(self, geom: BaseGeometry) -> None:
        minx, miny, maxx, maxy = geom.bounds
        self.lon0, self.lat0 = (minx + maxx) / 2, (miny + maxy) / 2
        self.kx = _KM_PER_DEG_LON_EQ * math.cos(math.radians(self.lat0))

    def to_km(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * _KM_PER_DEG_LAT

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x / self.kx + self.lon0, y / _KM_PER_DEG_LAT + self.lat0

    def area_km2(self, geoms: np.ndarray) -> np.ndarray:
        return shapely.area(geoms) * self.kx * _KM_PER_DEG_LAT


def _sample_lattice(
    parent: BaseGeometry, plane: _LocalPlane, *, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Jittered square lattice of about ``n`` points inside ``parent`` (km plane)."""
    area = float(plane.area_km2(np.array([parent]))[0])
    minx, miny, maxx, maxy = parent.bounds
    x0, y0 = plane.to_km(np.array([minx]), np.array([miny]))
    x1, y1 = plane.to_km(np.array([maxx]), np.array([maxy]))
    shapely.prepare(parent)
    step = math.sqrt(area / n)
    for _ in range(8):  # shrink the step until enough points fall inside (thin parents)
        gx = np.arange(x0[0] + step / 2, x1[0], step)
        gy = np.arange(y0[0] + step / 2, y1[0], step)
        xx, yy = np.meshgrid(gx, gy)
        xx = xx.ravel() + rng.uniform(-0.35, 0.35, xx.size) * step
        yy = yy.ravel() + rng.uniform(-0.35, 0.35, yy.size) * step
        lon, lat = plane.to_lonlat(xx, yy)
        inside = shapely.contains_xy(parent, lon, lat)
        if inside.sum() >= 0.6 * n:
            return xx[inside], yy[inside]
        step /= 1.5
    raise GridValidationError([f"parent too thin to place {n} sample points inside it"])


def _clipped_area(cells: np.ndarray, parent: BaseGeometry, plane: _LocalPlane) -> np.ndarray:
    """Area (km²) of each Voronoi cell inside the parent: the mass a sample point carries."""
    inside = shapely.within(cells, parent)
    area = plane.area_km2(cells)
    edge = ~inside
    area[edge] = plane.area_km2(shapely.intersection(cells[edge], parent))
    return area


def _urban_distance(lon: np.ndarray, lat: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Distance (km) to the nearest urban centre, divided by that centre's reach."""
    kx = _KM_PER_DEG_LON_EQ * math.cos(math.radians(23.1))
    dx = (np.asarray(lon)[:, None] - centres[None, :, 0]) * kx
    dy = (np.asarray(lat)[:, None] - centres[None, :, 1]) * _KM_PER_DEG_LAT
    return (np.hypot(dx, dy) / centres[None, :, 2]).min(axis=1)


def _hilbert_index(x: np.ndarray, y: np.ndarray, *, order: int = 16) -> np.ndarray:
    """Position of each point along a Hilbert curve over the points' bounding square."""
    n = 1 << order
    span = max(np.ptp(x), np.ptp(y), 1e-12)
    xi = ((x - x.min()) / span * (n - 1)).astype(np.int64)
    yi = ((y - y.min()) / span * (n - 1)).astype(np.int64)
    d = np.zeros_like(xi)
    s = n // 2
    while s > 0:
        rx = (xi & s) > 0
        ry = (yi & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        xi = np.where(flip, n - 1 - xi, xi)
        yi = np.where(flip, n - 1 - yi, yi)
        swap = ~ry
        xi, yi = np.where(swap, yi, xi), np.where(swap, xi, yi)
        s //= 2
    return d


def _initial_labels(
    px: np.ndarray,
    py: np.ndarray,
    mass: np.ndarray,
    urban_dist: np.ndarray,
    weights: np.ndarray,
    urban: np.ndarray,
) -> np.ndarray:
    """Urban children take the most urban points, then each group is cut along a Hilbert curve.

    ``weights``/``urban`` are already in placement order (urban first, then code order), so
    label ``i`` is the ``i``-th child in that order.
    """
    share = weights / weights.sum()
    urban_share = share[urban].sum()
    by_urbanness = np.argsort(urban_dist, kind="stable")
    cum = np.cumsum(mass[by_urbanness]) / mass.sum()
    is_urban_pt = np.zeros(len(px), dtype=bool)
    is_urban_pt[by_urbanness[cum <= urban_share]] = True
    if urban.all() or not urban.any():  # one group only: it takes every point
        is_urban_pt[:] = bool(urban.all())
    labels = np.empty(len(px), dtype=np.int64)
    curve = _hilbert_index(px, py)
    for group, kids in ((True, np.flatnonzero(urban)), (False, np.flatnonzero(~urban))):
        if kids.size == 0:
            continue
        pts = np.flatnonzero(is_urban_pt == group)
        if pts.size == 0:  # tiny group: borrow the points nearest the urban side
            pts = by_urbanness[: kids.size] if group else by_urbanness[-kids.size :]
        pts = pts[np.argsort(curve[pts], kind="stable")]
        edges = np.cumsum(share[kids]) / share[kids].sum()
        pos = np.cumsum(mass[pts]) / mass[pts].sum()
        slot = np.minimum(np.searchsorted(edges, pos, side="left"), kids.size - 1)
        labels[pts] = kids[slot]
    return labels


def _centroids(
    px: np.ndarray, py: np.ndarray, mass: np.ndarray, labels: np.ndarray, k: int
) -> np.ndarray:
    m = np.bincount(labels, mass, k)
    cx = np.bincount(labels, mass * px, k)
    cy = np.bincount(labels, mass * py, k)
    seeds = np.column_stack([cx, cy]) / np.where(m > 0, m, 1.0)[:, None]
    missing = m <= 0
    if missing.any():  # a child without points starts at the parent's mass centre
        seeds[missing] = [np.average(px, weights=mass), np.average(py, weights=mass)]
    return seeds


def _relax(
    px: np.ndarray,
    py: np.ndarray,
    mass: np.ndarray,
    seeds: np.ndarray,
    target: np.ndarray,
    *,
    outer: int = 25,
    inner: int = 8,
) -> np.ndarray:
    """Capacity-constrained Lloyd iteration on a power diagram of the sample points."""
    k = len(target)
    pts = np.column_stack([px, py])
    psi = np.zeros(k)
    labels = np.zeros(len(px), dtype=np.int64)
    for it in range(outer):
        d2 = ((pts[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=2)
        for _ in range(inner):
            labels = np.argmin(d2 - psi[None, :], axis=1)
            m = np.bincount(labels, mass, k)
            # dA/dpsi ~ pi/2 for a roughly round cell among neighbours; damped Jacobi step
            psi += 0.5 * (target - m) / (math.pi / 2)
            psi -= psi.mean()
        if it < outer - 1:
            seeds = _centroids(px, py, mass, labels, k)
    return labels


def _fill_empty(px: np.ndarray, py: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Give every child at least one point, taken from the largest child nearby."""
    labels = labels.copy()
    for child in range(k):
        counts = np.bincount(labels, minlength=k)
        if counts[child] > 0:
            continue
        donor_ok = counts[labels] > 1
        cx, cy = np.mean(px), np.mean(py)
        d = np.hypot(px - cx, py - cy) + np.where(donor_ok, 0.0, np.inf)
        labels[int(np.argmin(d))] = child
    return labels


def _assemble(cells: np.ndarray, labels: np.ndarray, parent: BaseGeometry, k: int) -> list:
    sort = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[sort], np.arange(k + 1))
    unions = np.array(
        [shapely.coverage_union_all(cells[sort[bounds[i] : bounds[i + 1]]]) for i in range(k)],
        dtype=object,
    )
    pieces = _absorb_gaps(shapely.intersection(unions, parent), parent)
    return [_as_multipolygon(g) for g in pieces]


def _absorb_gaps(pieces: np.ndarray, parent: BaseGeometry) -> np.ndarray:
    """Give every sliver the clip left uncovered to the piece sharing its longest border.

    Clipping each child separately against a long straight parent edge can leave
    hair-thin triangles (float rounding of the intersection points); without this the
    children would not tile the parent exactly.
    """
    gap = shapely.difference(parent, shapely.union_all(pieces))
    slivers = [g for g in shapely.get_parts(gap) if g.geom_type == "Polygon" and g.area > 0]
    if not slivers:
        return pieces
    pieces = pieces.copy()
    for sliver in slivers:
        shared = shapely.length(shapely.intersection(shapely.boundary(pieces), sliver.boundary))
        touching = shapely.distance(pieces, sliver)
        best = int(np.argmax(shared)) if shared.max() > 0 else int(np.argmin(touching))
        pieces[best] = shapely.union(pieces[best], sliver)
    return pieces


def _as_multipolygon(geom: BaseGeometry) -> shapely.MultiPolygon:
    """Keep only the polygonal parts, valid, as one MultiPolygon."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys: list[shapely.Polygon] = []
    for p in parts:
        polys.extend(shapely.get_parts(p) if p.geom_type == "MultiPolygon" else [p])
    polys = [p for p in polys if not p.is_empty and p.area > 0]
    return shapely.MultiPolygon(polys)
