"""Real boundaries replace generated ones: ``gridgov grid import``.

A street office that has its real 镇街 or 村居 boundaries (Shapefile, GeoJSON or
GeoPackage) imports them here — all units of a level or only some (its own street, one
village). Units are matched by code, or by name within their parent; then every problem
of the file is collected, never only the first: features that match no unit, geometry
that is missing, not a polygon or invalid (self-intersections …), and — with the current
geometry of the siblings that are not in the file — units outside their parent,
overlaps and gaps in km². Generated units below the imported level are regenerated
inside the new parents so the grid keeps tiling, and the result is written as a new
boundary version in one transaction. A file with any problem changes nothing; every
message is bilingual and names the unit or feature.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
from sqlalchemy.engine import Engine

from geo import codes
from geo.crs import transform_geometry
from geo.errors import CodeError, CRSError, GridValidationError, SourceError
from geo.generate import generate_children, size_weights
from geo.grid import check_units, geometry_problems, load_units, polygon_mask
from geo.store import read_units
from geo.storelock import store_lock
from geo.vocab import LEVEL_NAMES_ZH, LEVELS

CODE_COLUMNS = ("code", "adcode", "区划代码", "代码", "统计用区划代码", "grid_code", "网格编码")
NAME_COLUMNS = ("name", "名称", "单位名称", "村居名称", "镇街名称", "网格名称")
PARENT_COLUMNS = ("parent_code", "parent", "上级代码", "上级名称", "parent_name")
IMPORTABLE_LEVELS = ("street", "village", "grid")


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: the new boundary version and how many units it touched."""

    version: int
    imported: int
    regenerated: int


def import_boundaries(
    engine: Engine, path: str | Path, *, level: str, source_crs: str = "wgs84",
    wait_s: float = 300.0,
) -> ImportResult:
    """Import a boundary file for one level as a new boundary version.

    Parameters
    ----------
    path
        Shapefile (.shp or .zip), GeoJSON or GeoPackage; read with pyogrio.
    level
        street, village or grid.
    source_crs
        For files whose coordinates are geographic: wgs84 (default), gcj02 or bd09
        (AMap/Baidu-derived files). Projected files are reprojected from their own CRS.
    wait_s
        How long to wait for a load writing to the store (``settings.store_lock_wait_s``):
        the grid is read and replaced under the store lock, so no load attaches cases to
        polygons this import is replacing.

    Raises
    ------
    GridValidationError
        Listing every problem found; the store is unchanged.
    StoreBusyError
        When another writer holds the store for longer than ``wait_s``.
    """
    if level not in IMPORTABLE_LEVELS:
        raise GridValidationError([f"只能导入 {'/'.join(IMPORTABLE_LEVELS)} 级边界 / "
                                   f"only {', '.join(IMPORTABLE_LEVELS)} boundaries can be imported"])
    path = Path(path)
    raw = _read_file(path)
    with store_lock(engine, wait_s=wait_s):
        return _import(engine, raw, path, level=level, source_crs=source_crs)


def _import(engine: Engine, raw: gpd.GeoDataFrame, path: Path, *, level: str,
            source_crs: str) -> ImportResult:
    current = read_units(engine)
    units, problems = _match_units(_to_wgs84(raw, source_crs), current, level=level)
    if units is None or units.empty:
        raise GridValidationError(problems or ["文件中没有要素 / the file holds no features"])
    units = _carry_attributes(units, current)
    good = polygon_mask(units)
    problems += geometry_problems(units)
    units = units[good]  # the bad ones keep their current geometry for the checks below
    rest = current[~current["code"].isin(units["code"])]
    regenerated = rest.iloc[0:0]
    if not problems:  # regenerating inside a broken outline would only add noise
        regenerated = _regenerate_below(units, rest, level=level)
    rest = rest[~rest["code"].isin(regenerated["code"])]
    changed = pd.concat([units, regenerated], ignore_index=True)
    if not changed.empty:
        report = check_units(gpd.GeoDataFrame(changed, geometry="geometry", crs="EPSG:4326"),
                             parents=rest)
        problems += [p for p in report.problems if p not in problems]
    if problems:
        raise GridValidationError(problems)
    version = load_units(
        engine, gpd.GeoDataFrame(changed, geometry="geometry", crs="EPSG:4326"), kind="import",
        level=level, source_file=path.name, sha256=_sha256(path), check=False,
        note=f"导入{LEVEL_NAMES_ZH[level]}级边界 {path.name}",
    )
    return ImportResult(version=version, imported=len(units), regenerated=len(regenerated))


def _read_file(path: Path) -> gpd.GeoDataFrame:
    try:
        return gpd.read_file(path, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            pyogrio.errors.GeometryError, pyogrio.errors.FieldError, OSError,
            ValueError) as err:
        raise SourceError(f"无法读取边界文件 {path.name}：{err} / cannot read boundary file "
                          f"{path.name}: {err}") from err


def _to_wgs84(raw: gpd.GeoDataFrame, source_crs: str) -> gpd.GeoDataFrame:
    if raw.crs is None:
        raise CRSError("边界文件没有坐标系信息 / the boundary file has no coordinate reference "
                       "system: save it with one (e.g. EPSG:4326)")
    if not raw.crs.is_geographic:
        return raw.to_crs("EPSG:4326")
    frame = raw.to_crs("EPSG:4326")
    if source_crs != "wgs84":
        frame = transform_geometry(frame, source=source_crs, target="wgs84")
    return frame


def _find_column(frame: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    lowered = {str(c).lower(): c for c in frame.columns}
    return next((lowered[c.lower()] for c in candidates if c.lower() in lowered), None)


def _match_units(
    raw: gpd.GeoDataFrame, current: gpd.GeoDataFrame, *, level: str
) -> tuple[gpd.GeoDataFrame | None, list[str]]:
    """Give every feature its unit code (by code, else by name within parent); list misses."""
    matcher = _Matcher.for_file(raw, current, level=level)
    if matcher.code_col is None and matcher.name_col is None:
        return None, [f"找不到代码或名称列（可用列名：{', '.join(CODE_COLUMNS + NAME_COLUMNS)}）/ "
                      "no code or name column found"]
    problems: list[str] = []
    matched = []
    for i, row in enumerate(raw.itertuples(index=False), start=1):
        code, problem = matcher.code_of(row)
        if code is None:
            problems.append(f"第{i}个要素 / feature {i}: {problem}")
            continue
        matched.append({"code": code, "geometry": row.geometry,
                        "file_name": getattr(row, matcher.name_col) if matcher.name_col else None})
    frame = gpd.GeoDataFrame(matched, geometry="geometry", crs="EPSG:4326") if matched else None
    if frame is not None:
        for code in frame.loc[frame["code"].duplicated(), "code"].unique():
            problems.append(f"{code}: 文件中出现多次 / appears more than once in the file")
    return frame, problems


@dataclass(frozen=True)
class _Matcher:
    """Finds the unit code of a boundary feature among the current units of one level."""

    level: str
    code_col: str | None
    name_col: str | None
    parent_col: str | None
    known: pd.DataFrame
    parents: pd.DataFrame

    @classmethod
    def for_file(cls, raw: gpd.GeoDataFrame, current: gpd.GeoDataFrame, *, level: str) -> _Matcher:
        parent_level = LEVELS[LEVELS.index(level) - 1]
        return cls(level=level, code_col=_find_column(raw, CODE_COLUMNS),
                   name_col=_find_column(raw, NAME_COLUMNS),
                   parent_col=_find_column(raw, PARENT_COLUMNS),
                   known=current[current["level"] == level],
                   parents=current[current["level"] == parent_level])

    def code_of(self, row: tuple) -> tuple[str | None, str | None]:
        """Return (code, None), or (None, why the feature matches no unit)."""
        if self.code_col is not None and not pd.isna(getattr(row, self.code_col)):
            return self._by_code(str(getattr(row, self.code_col)).strip().split(".")[0])
        return self._by_name(row)

    def _by_code(self, raw_code: str) -> tuple[str | None, str | None]:
        code = raw_code.ljust(12, "0") if len(raw_code) < 12 else raw_code
        try:
            actual = codes.level_of(code)
        except CodeError as err:  # its message is the problem to report
            return None, str(err)
        if actual != self.level:
            return None, (f"代码 {code} 是{LEVEL_NAMES_ZH[actual]}级，不是"
                          f"{LEVEL_NAMES_ZH[self.level]}级 / code {code} is not a "
                          f"{self.level} code")
        if self.level != "grid" and code not in set(self.known["code"]):
            return None, f"未知单元 {code}（不在区划代码表中）/ unknown unit {code}"
        if self.level == "grid" and codes.parent_of(code) not in set(self.parents["code"]):
            return None, f"网格 {code} 的上级村居不存在 / unknown parent village"
        return code, None

    def _by_name(self, row: tuple) -> tuple[str | None, str | None]:
        name = str(getattr(row, self.name_col)).strip() if self.name_col else ""
        candidates = self.known[self.known["name"] == name]
        if self.parent_col is not None and len(candidates) > 1:
            parent = str(getattr(row, self.parent_col)).strip()
            parents = self.parents
            parent_codes = parents.loc[(parents["code"] == parent) | (parents["name"] == parent),
                                       "code"]
            candidates = candidates[candidates["parent_code"].isin(parent_codes)]
        if len(candidates) == 1:
            return candidates["code"].iloc[0], None
        why = "名称无法匹配" if candidates.empty else "同名单元不止一个，请提供代码或上级"
        return None, f"未知单元“{name}”（{why}）/ unknown or ambiguous unit {name!r}"


def _carry_attributes(units: gpd.GeoDataFrame, current: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Keep name, parent and population from the current grid; mark geometry imported."""
    attrs = current.drop(columns="geometry").drop_duplicates("code").set_index("code")
    out = units[["code", "geometry"]].copy()
    out["level"] = out["code"].map(codes.level_of)
    out["parent_code"] = out["code"].map(codes.parent_of)
    out["name"] = out["code"].map(attrs["name"]).fillna(units.get("file_name")).fillna(out["code"])
    out["population"] = out["code"].map(attrs["population"])
    out["population_estimated"] = out["code"].map(attrs["population_estimated"]).fillna(True)
    out["geometry_source"] = "imported"
    return out


def _regenerate_below(
    units: gpd.GeoDataFrame, rest: gpd.GeoDataFrame, *, level: str
) -> gpd.GeoDataFrame:
    """Regenerate the generated children of the imported units inside their new outlines."""
    if level == "grid":
        return rest.iloc[0:0]
    child_level = LEVELS[LEVELS.index(level) + 1]
    if child_level == "grid":
        return rest.iloc[0:0]
    children = rest[(rest["level"] == child_level) & rest["parent_code"].isin(units["code"])
                    & (rest["geometry_source"] == "generated")]
    if children.empty:
        return rest.iloc[0:0]
    table = pd.DataFrame(children.drop(columns="geometry")).reset_index(drop=True)
    table["weight"] = size_weights(table["code"], level=child_level).to_numpy()
    regenerated = generate_children(units[["code", "geometry"]], table, seed=2023)
    return gpd.GeoDataFrame(regenerated.drop(columns="weight"), geometry="geometry",
                            crs="EPSG:4326")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
