"""Fast vectorised point-in-polygon attach of case points to grid cells (落格).

The ETL attaches millions of case points to a few thousand village cells. A spatial
join (``geopandas.sjoin``) builds a tree and tests every point against a polygon; this
module instead precomputes a raster lookup over the coverage once, so that most points
are answered by one array lookup and only points near a cell border are tested against
their two or three candidate polygons.

How the raster is built (exact, not approximate):

1. every polygon ring is segmentised to segments no longer than one raster cell; each
   segment marks the raster cells its bounding box (grown by a tiny epsilon) touches as
   *border* cells;
2. the remaining raster cells touch no border at all, so each 4-connected region of them
   lies wholly inside the same polygon(s) or wholly outside every polygon: one
   representative point per region, tested with the real geometry, labels the region;
3. each border cell keeps as candidates the polygons that really intersect it (a tree
   query); a cell with a single candidate that covers it becomes clean again.

A point is therefore answered exactly as ``intersects`` would answer it: points in clean
raster cells get their label by one array lookup; points in ambiguous cells are tested
with :func:`shapely.intersects_xy` against that cell's candidates (prepared polygons).

Tie rule for points that intersect two or more cells (on a shared border, or where a
sloppy coverage overlaps): the cell with the **smallest code** wins (string order, which
for the 12-digit division codes is numeric order). A point on the boundary of only one
cell is located in that cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from scipy import ndimage

from geo.crs import lonlat_to_xy
from geo.errors import CRSError, GridValidationError

# Slack added around every border segment when marking raster cells: covers the rounding
# of ``(lon - x0) / res`` so a point is never placed in a clean cell it is not really in.
_EPS_DEG = 1e-9
_OUTSIDE = -1

__all__ = ["AttachResult", "PointLocator", "attach_points"]


DEFAULT_RESOLUTION_DEG = 0.0005
"""Raster cell side in degrees (see :class:`PointLocator`)."""


class PointLocator:
    """Answer "which cell contains this point" for millions of points per second.

    Built once from a polygon coverage (e.g. the 2,851 village cells 村/社区 of
    Guangzhou), then reused for every batch of case points.

    Parameters
    ----------
    codes
        One unique code per cell; the smallest code wins on a shared border.
    geometries
        Valid Polygon or MultiPolygon per cell, in EPSG:4326 (lon, lat).
    resolution_deg
        Side of one raster cell in degrees. Smaller means fewer points need a real
        polygon test (faster lookups) at the price of memory and build time;
        The default 0.0005° (~50 m) suits Guangzhou's villages, whose generated borders
        zig-zag: at 0.001° a third of the raster touched a border and lookups ran at
        ~3 M points/s; at 0.0005° they run at ~8 M points/s for ~25 MB and ~1 s to build
        (docs/benchmarks.md).

    Raises
    ------
    GridValidationError
        When codes and geometries disagree in length, codes repeat, or a geometry is
        missing, empty, not polygonal or invalid.
    """

    def __init__(
        self,
        codes: Sequence[str],
        geometries: Sequence[shapely.Polygon | shapely.MultiPolygon],
        *,
        resolution_deg: float = DEFAULT_RESOLUTION_DEG,
    ) -> None:
        self.codes: np.ndarray = np.asarray([str(c) for c in codes], dtype=object)
        self.geometries: np.ndarray = _check_coverage(self.codes, geometries)
        if not resolution_deg > 0:
            raise ValueError(f"resolution_deg must be positive, got {resolution_deg!r}")
        self.resolution_deg = float(resolution_deg)
        shapely.prepare(self.geometries)
        self._rank = _rank_codes(self.codes)
        self._grid = _RasterGrid.around(self.geometries, self.resolution_deg)
        border_cells = _mark_border_cells(self.geometries, self._grid)
        self._lut, self._cand_start, self._cand_poly = _build_lookup(
            self.geometries, self._rank, self._grid, border_cells
        )

    @classmethod
    def from_frame(
        cls, frame: object, *, code_column: str = "code", resolution_deg: float = DEFAULT_RESOLUTION_DEG
    ) -> PointLocator:
        """Build from a GeoDataFrame in EPSG:4326 with a code column.

        Raises
        ------
        CRSError
            When the frame's CRS is not EPSG:4326 (reproject it first).
        """
        crs = getattr(frame, "crs", None)
        if crs is None or crs.to_epsg() != 4326:
            raise CRSError(
                f"grid cells must be in EPSG:4326 to build a PointLocator, got {crs}; "
                "reproject with frame.to_crs(4326)"
            )
        return cls(
            frame[code_column].tolist(),  # type: ignore[index]
            frame.geometry.to_numpy(),  # type: ignore[attr-defined]
            resolution_deg=resolution_deg,
        )

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def ambiguous_cell_count(self) -> int:
        """Number of raster cells that need a real polygon test (for tuning)."""
        return len(self._cand_start) - 1

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Find the cell containing each point ("intersects": borders count as inside).

        Parameters
        ----------
        lon, lat
            Coordinates in EPSG:4326, same length. NaN or infinite gives -1.

        Returns
        -------
        numpy.ndarray
            int64 index into :attr:`codes` per point, -1 where no cell contains it.
        """
        x, y = _as_xy(lon, lat)
        raw, in_grid = self._lookup_raster(x, y)
        return self._resolve_ambiguous(raw, in_grid, x, y)

    def nearest(
        self, lon: np.ndarray, lat: np.ndarray, *, max_distance_m: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Find the nearest cell within ``max_distance_m`` metres of each point.

        Meant for the points :meth:`locate` left at -1 (river banks, coastline, GPS
        noise); a point inside a cell simply gets that cell at distance 0. Distances are
        measured in EPSG:4547; equally near cells are broken by the smallest code.

        Returns
        -------
        index : numpy.ndarray
            int64 index into :attr:`codes`, -1 when no cell is within reach.
        distance_m : numpy.ndarray
            Distance in metres, NaN where index is -1.
        """
        if not max_distance_m > 0:
            raise ValueError(f"max_distance_m must be positive, got {max_distance_m!r}")
        x, y = _as_xy(lon, lat)
        index = np.full(len(x), _OUTSIDE, dtype=np.int64)
        distance = np.full(len(x), np.nan)
        finite = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if len(finite) == 0:
            return index, distance
        px, py = lonlat_to_xy(x[finite], y[finite])
        points = shapely.points(px, py)
        (pt, poly), dist = self._projected_tree.query_nearest(
            points, max_distance=max_distance_m, return_distance=True, all_matches=True
        )
        pt, poly, dist = _first_by_rank(pt, poly, dist, self._rank)
        index[finite[pt]] = poly
        distance[finite[pt]] = dist
        return index, distance

    # -- internals ---------------------------------------------------------------------

    @cached_property
    def _projected_tree(self) -> shapely.STRtree:
        # Built on first use: locate-only callers never pay for the projection.
        projected = shapely.transform(self.geometries, lonlat_to_xy, interleaved=False)
        return shapely.STRtree(projected)

    def _lookup_raster(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = self._grid
        fx = (x - g.x0) * g.inv_res
        fy = (y - g.y0) * g.inv_res
        in_grid = (fx >= 0) & (fx < g.nx) & (fy >= 0) & (fy < g.ny)  # NaN compares False
        fx[~in_grid] = 0
        fy[~in_grid] = 0
        flat = fy.astype(np.intp) * g.nx + fx.astype(np.intp)
        return self._lut[flat], in_grid

    def _resolve_ambiguous(
        self, raw: np.ndarray, in_grid: np.ndarray, x: np.ndarray, y: np.ndarray
    ) -> np.ndarray:
        result = raw.astype(np.int64)
        result[~in_grid] = _OUTSIDE
        amb = np.flatnonzero(result <= -2)
        if len(amb) == 0:
            return result
        slot = -2 - result[amb]
        start = self._cand_start[slot]
        count = self._cand_start[slot + 1] - start
        pair_pt = np.repeat(amb, count)
        offset = np.arange(len(pair_pt)) - np.repeat(np.cumsum(count) - count, count)
        pair_poly = self._cand_poly[np.repeat(start, count) + offset]
        hit = shapely.intersects_xy(self.geometries[pair_poly], x[pair_pt], y[pair_pt])
        result[amb] = _OUTSIDE
        hit_pt, hit_poly = pair_pt[hit], pair_poly[hit]
        # Candidates are stored in code order, so the first hit per point is the tie winner.
        first = np.ones(len(hit_pt), dtype=bool)
        first[1:] = hit_pt[1:] != hit_pt[:-1]
        result[hit_pt[first]] = hit_poly[first]
        return result


@dataclass(frozen=True)
class AttachResult:
    """Outcome of :func:`attach_points`, one entry per input point.

    Attributes
    ----------
    index
        int64 index into ``locator.codes``; -1 for an unplaced point (未落格).
    method
        ``"point"`` (inside a cell), ``"nearest"`` (snapped to a cell within the
        distance limit) or ``""`` (unplaced).
    distance_m
        Snap distance in metres for ``"nearest"``, NaN otherwise.
    """

    index: np.ndarray
    method: np.ndarray
    distance_m: np.ndarray

    def counts(self) -> dict[str, int]:
        """Count points per method, for the ETL's load report."""
        return {
            "point": int(np.count_nonzero(self.method == "point")),
            "nearest": int(np.count_nonzero(self.method == "nearest")),
            "unplaced": int(np.count_nonzero(self.method == "")),
        }


def attach_points(
    lon: np.ndarray,
    lat: np.ndarray,
    locator: PointLocator,
    *,
    max_distance_m: float = 200.0,
) -> AttachResult:
    """Attach points to the cell containing them, else to a cell within reach.

    Parameters
    ----------
    lon, lat
        Case coordinates in EPSG:4326; NaN means "no location" and stays unplaced.
    locator
        A :class:`PointLocator` built on the grid level to attach to.
    max_distance_m
        Points outside every cell but at most this far from one are snapped to the
        nearest (``Settings.nearest_max_m``); farther points stay unplaced.

    Returns
    -------
    AttachResult
    """
    x, y = _as_xy(lon, lat)
    index = locator.locate(x, y)
    method = np.where(index >= 0, "point", "").astype("<U7")
    distance = np.full(len(x), np.nan)
    missing = np.flatnonzero((index < 0) & np.isfinite(x) & np.isfinite(y))
    if len(missing) and max_distance_m > 0:
        near, near_dist = locator.nearest(x[missing], y[missing], max_distance_m=max_distance_m)
        found = near >= 0
        index[missing[found]] = near[found]
        method[missing[found]] = "nearest"
        distance[missing[found]] = near_dist[found]
    return AttachResult(index=index, method=method, distance_m=distance)


# -- build helpers ---------------------------------------------------------------------


@dataclass(frozen=True)
class _RasterGrid:
    """A regular lon/lat raster; cell (ix, iy) spans x0 + ix*res .. x0 + (ix+1)*res."""

    x0: float
    y0: float
    res: float
    nx: int
    ny: int

    @property
    def inv_res(self) -> float:
        return 1.0 / self.res

    @classmethod
    def around(cls, geometries: np.ndarray, res: float) -> _RasterGrid:
        minx, miny, maxx, maxy = shapely.total_bounds(geometries)
        # One spare cell on every side so points exactly on the bbox edge stay inside.
        x0, y0 = minx - res, miny - res
        nx = int(np.floor((maxx - x0) / res)) + 2
        ny = int(np.floor((maxy - y0) / res)) + 2
        return cls(float(x0), float(y0), float(res), nx, ny)


def _as_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(lon, dtype=np.float64).reshape(-1)
    y = np.asarray(lat, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"lon and lat differ in length: {len(x)} vs {len(y)}")
    return x, y


def _check_coverage(codes: np.ndarray, geometries: Sequence[object]) -> np.ndarray:
    geoms = np.asarray(list(geometries), dtype=object)
    problems: list[str] = []
    if len(geoms) != len(codes):
        problems.append(f"{len(codes)} codes but {len(geoms)} geometries")
    elif len(codes) == 0:
        problems.append("the coverage has no cells; load the grid first (gridgov init)")
    else:
        uniq, counts = np.unique(codes.astype(str), return_counts=True)
        for code in uniq[counts > 1][:5]:
            problems.append(f"code {code} appears more than once")
        type_ids = shapely.get_type_id(geoms)
        polygonal = (type_ids == 3) | (type_ids == 6)
        for i in np.flatnonzero(~polygonal)[:5]:
            problems.append(f"cell {codes[i]}: geometry is not a Polygon/MultiPolygon")
        ok = np.flatnonzero(polygonal)
        bad = ok[shapely.is_empty(geoms[ok]) | ~shapely.is_valid(geoms[ok])]
        for i in bad[:5]:
            reason = shapely.is_valid_reason(geoms[i])
            problems.append(f"cell {codes[i]}: geometry is empty or invalid ({reason})")
    if problems:
        raise GridValidationError(problems)
    return geoms


def _rank_codes(codes: np.ndarray) -> np.ndarray:
    order = np.argsort(codes.astype(str), kind="stable")
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes))
    return rank


def _mark_border_cells(geometries: np.ndarray, grid: _RasterGrid) -> np.ndarray:
    """Return the sorted flat raster cells that a polygon border may touch (a superset)."""
    parts = shapely.get_parts(geometries)
    rings = shapely.segmentize(shapely.get_rings(parts), grid.res * 0.99)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    same = coord_ring[1:] == coord_ring[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    ix0, ix1 = _cell_span(np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0]),
                          grid.x0, grid.res, grid.nx)
    iy0, iy1 = _cell_span(np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1]),
                          grid.y0, grid.res, grid.ny)
    span_x, span_y = ix1 - ix0, iy1 - iy0
    cells = []
    for dx in range(int(span_x.max()) + 1):
        for dy in range(int(span_y.max()) + 1):
            m = (span_x >= dx) & (span_y >= dy)
            cells.append((iy0[m] + dy) * grid.nx + (ix0[m] + dx))
    return np.unique(np.concatenate(cells))


def _cell_span(
    lo: np.ndarray, hi: np.ndarray, origin: float, res: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    first = np.floor((lo - _EPS_DEG - origin) / res).astype(np.int64)
    last = np.floor((hi + _EPS_DEG - origin) / res).astype(np.int64)
    return np.clip(first, 0, n - 1), np.clip(last, 0, n - 1)


def _build_lookup(
    geometries: np.ndarray, rank: np.ndarray, grid: _RasterGrid, border_cells: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill the raster: polygon index, -1 (outside) or -2-slot (ambiguous, see candidates).

    Returns the lookup raster, the candidate offsets per ambiguous slot (CSR) and the
    candidate polygon indices, each slot's candidates in code order.
    """
    border = np.zeros(grid.nx * grid.ny, dtype=bool)
    border[border_cells] = True
    labels, n_regions = ndimage.label(~border.reshape(grid.ny, grid.nx))
    labels = labels.reshape(-1)
    tree = shapely.STRtree(geometries)
    lut = _label_regions(tree, rank, grid, labels, n_regions)[labels].astype(np.int32)
    cell, poly = _border_candidates(tree, rank, grid, border_cells)
    lut[border_cells] = _OUTSIDE  # border cells no polygon reaches
    cell, poly = _settle_single_candidates(geometries, grid, cell, poly, lut)
    amb_cells, amb_start = np.unique(cell, return_index=True)
    lut[amb_cells] = -2 - np.arange(len(amb_cells), dtype=np.int32)
    cand_start = np.append(amb_start, len(cell)).astype(np.int64)
    return lut, cand_start, poly.astype(np.int64)


def _cell_boxes(grid: _RasterGrid, cells: np.ndarray) -> np.ndarray:
    ix, iy = cells % grid.nx, cells // grid.nx
    return shapely.box(
        grid.x0 + ix * grid.res - _EPS_DEG,
        grid.y0 + iy * grid.res - _EPS_DEG,
        grid.x0 + (ix + 1) * grid.res + _EPS_DEG,
        grid.y0 + (iy + 1) * grid.res + _EPS_DEG,
    )


def _border_candidates(
    tree: shapely.STRtree, rank: np.ndarray, grid: _RasterGrid, border_cells: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pair every border cell with each polygon intersecting it (overlaps included)."""
    box_idx, poly = tree.query(_cell_boxes(grid, border_cells), predicate="intersects")
    order = np.lexsort((rank[poly], box_idx))
    return border_cells[box_idx[order]], poly[order]


def _settle_single_candidates(
    geometries: np.ndarray,
    grid: _RasterGrid,
    cell: np.ndarray,
    poly: np.ndarray,
    lut: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Turn border cells wholly covered by their only candidate into clean cells.

    Marking by segment bounding boxes is conservative; this takes back the cells it
    marked needlessly, so fewer points need a polygon test.
    """
    uniq, start, count = np.unique(cell, return_index=True, return_counts=True)
    single = start[count == 1]
    covered = shapely.covers(geometries[poly[single]], _cell_boxes(grid, cell[single]))
    settled = single[covered]
    lut[cell[settled]] = poly[settled]
    keep = np.ones(len(cell), dtype=bool)
    keep[settled] = False
    return cell[keep], poly[keep]


def _label_regions(
    tree: shapely.STRtree,
    rank: np.ndarray,
    grid: _RasterGrid,
    labels: np.ndarray,
    n_regions: int,
) -> np.ndarray:
    """Give every border-free region the polygon containing it (or -1), by one test point."""
    value = np.full(n_regions + 1, _OUTSIDE, dtype=np.int64)  # label 0 = border cells
    if n_regions == 0:
        return value
    region, first_cell = np.unique(labels, return_index=True)
    keep = region > 0
    region, first_cell = region[keep], first_cell[keep]
    cx = grid.x0 + (first_cell % grid.nx + 0.5) * grid.res
    cy = grid.y0 + (first_cell // grid.nx + 0.5) * grid.res
    pt, poly = tree.query(shapely.points(cx, cy), predicate="intersects")
    pt, poly, _ = _first_by_rank(pt, poly, np.zeros(len(pt)), rank)
    value[region[pt]] = poly
    return value


def _first_by_rank(
    pt: np.ndarray, poly: np.ndarray, extra: np.ndarray, rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep one (point, polygon) pair per point: the polygon with the smallest code."""
    order = np.lexsort((rank[poly], pt))
    pt, poly, extra = pt[order], poly[order], extra[order]
    first = np.ones(len(pt), dtype=bool)
    first[1:] = pt[1:] != pt[:-1]
    return pt[first], poly[first].astype(np.int64), extra[first]
