"""The bundled real Guangzhou grid: 1 city, 11 districts, 178 streets, 2,851 villages.

District polygons are real (AMap, GCJ-02, converted here to WGS-84); street and village
codes and names are the official 2023 statistical division codes; street and village
polygons do not exist publicly and are generated inside the real districts by
:mod:`geo.generate` (``geometry_source = generated``, shown as 示意边界). District
populations are the 2020 census; below them populations are estimates that add up
exactly to the district figure. See ``geo/data/PROVENANCE.md``.

Generating the 3,029 street and village polygons takes about half a minute, so the result is
shipped as ``geo/data/grid_generated.parquet`` together with a fingerprint of everything it
was made from (the two data files, the seed and the generator's source). The file is used
only while the fingerprint matches; otherwise the grid is generated afresh, exactly as
before. ``python -m geo.bundled`` rewrites the file after a change to the generator, and a
test fails while it is stale; another test regenerates one district and one street and finds
them byte-identical to the file.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import codes
from geo.crs import area_km2, transform_geometry
from geo.generate import generate_grid
from geo.vocab import CITY_CODE, LEVELS

DATA = Path(__file__).parent / "data"
SEED = 2023
GENERATED = DATA / "grid_generated.parquet"
"""The generated street and village polygons, with the fingerprint of their inputs."""
_FINGERPRINT_KEY = b"gridgov_inputs"

POPULATION_DENSITY_WEIGHT = {
    "街道": 12.0,
    "镇": 1.0,
    "乡": 1.0,
    "特殊区域": 0.02,
    "居委会": 8.0,
    "村委会": 1.0,
    "类居委会": 2.0,
    "类村委会": 0.5,
}
"""Relative people per km² by unit kind, used only to spread a census figure downward.

Urban sub-districts (街道) and communities (居委会) are an order of magnitude denser than
towns (镇) and villages (村委会); reservoirs and forest farms (特殊区域) hold almost nobody.
An [I] estimate, flagged as such in the data.
"""


def read_divisions() -> pd.DataFrame:
    """Read the official 2023 division codes (code, name, level, parent_code), all as text."""
    return pd.read_csv(DATA / "divisions_2023.csv", dtype=str)


def read_districts() -> gpd.GeoDataFrame:
    """Read the 11 real district polygons, converted from GCJ-02 to WGS-84."""
    raw = gpd.read_file(DATA / "districts_gcj02.geojson")
    geometry = transform_geometry(raw.geometry.to_numpy(), source="gcj02", target="wgs84")
    population = pd.read_csv(DATA / "district_population_2020.csv", dtype={"code": str})
    frame = pd.DataFrame({"code": raw["code12"].astype(str), "name": raw["name"]})
    frame = frame.merge(population[["code", "population_2020"]], on="code", how="left")
    return gpd.GeoDataFrame(
        {
            "code": frame["code"],
            "name": frame["name"],
            "level": "district",
            "parent_code": CITY_CODE,
            "population": frame["population_2020"].astype("int64"),
            "population_estimated": False,
            "geometry_source": "official",
        },
        geometry=shapely.make_valid(geometry),
        crs="EPSG:4326",
    )


@lru_cache(maxsize=1)
def bundled_grid() -> gpd.GeoDataFrame:
    """Return the whole bundled grid, every level, ready for :func:`geo.grid.load_units`.

    Deterministic: the same files and seed give the same polygons. Cached per process
    because generating 3,000 polygons takes a few seconds.
    """
    divisions = read_divisions()
    districts = read_districts()
    generated = generated_units(districts, divisions)
    generated = generated.assign(geometry_source="generated", population_estimated=True)
    city_row = divisions[divisions["level"] == "city"].iloc[0]
    city = gpd.GeoDataFrame(
        {
            "code": [city_row["code"]],
            "name": [city_row["name"]],
            "level": ["city"],
            "parent_code": [None],
            "population": [int(districts["population"].sum())],
            "population_estimated": [False],
            "geometry_source": ["official"],
        },
        geometry=[shapely.union_all(districts.geometry.to_numpy())],
        crs="EPSG:4326",
    )
    units = pd.concat([city, districts, generated], ignore_index=True)
    units = _estimate_population(units)
    order = units["level"].map({lvl: i for i, lvl in enumerate(LEVELS)})
    return units.assign(_o=order).sort_values(["_o", "code"]).drop(columns="_o").reset_index(
        drop=True
    )


def inputs_fingerprint() -> str:
    """SHA-256 of what the generated polygons depend on: data files, seed, generator code.

    The generator counts by its syntax tree without docstrings (comments never reach it), so
    editing its documentation keeps the shipped file current and editing its code does not.
    """
    digest = hashlib.sha256()
    for path in (DATA / "divisions_2023.csv", DATA / "districts_gcj02.geojson"):
        digest.update(path.read_bytes())
    digest.update(_code_of(Path(__file__).parent / "generate.py").encode())
    digest.update(str(SEED).encode())
    return digest.hexdigest()


def _code_of(path: Path) -> str:
    """A module's syntax tree as text, docstrings removed."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value,
                                                                            str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def generated_units(districts: gpd.GeoDataFrame, divisions: pd.DataFrame) -> gpd.GeoDataFrame:
    """Streets and villages from the shipped file when it is current, else generated."""
    shipped = read_generated()
    if shipped is not None and shipped[1] == inputs_fingerprint():
        return shipped[0]
    return generate_grid(districts[["code", "geometry"]], divisions, seed=SEED)


def read_generated() -> tuple[gpd.GeoDataFrame, str] | None:
    """The shipped generated units and the fingerprint they were made from (None: no file)."""
    if not GENERATED.exists():
        return None
    import pyarrow.parquet as pq

    fingerprint = pq.read_schema(GENERATED).metadata.get(_FINGERPRINT_KEY, b"").decode()
    return gpd.read_parquet(GENERATED), fingerprint


def write_generated() -> Path:
    """Generate the street and village polygons and ship them with their fingerprint."""
    import pyarrow.parquet as pq

    units = generate_grid(read_districts()[["code", "geometry"]], read_divisions(), seed=SEED)
    temporary = GENERATED.with_suffix(".tmp")
    units.to_parquet(temporary, compression="zstd")
    table = pq.read_table(temporary)
    metadata = {**(table.schema.metadata or {}), _FINGERPRINT_KEY: inputs_fingerprint().encode()}
    pq.write_table(table.replace_schema_metadata(metadata), GENERATED, compression="zstd")
    temporary.unlink()
    return GENERATED


def _estimate_population(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Spread each parent's population over its children by area × density weight."""
    units = units.copy()
    units["population"] = units["population"].astype("Int64")
    weight = area_km2(units.geometry.to_numpy()) * units["code"].map(
        lambda c: POPULATION_DENSITY_WEIGHT.get(codes.unit_kind(c), 1.0)
    ).to_numpy()
    units["_w"] = weight
    for level in ("street", "village"):
        for parent_code, idx in units[units["level"] == level].groupby("parent_code").groups.items():
            total = int(units.loc[units["code"] == parent_code, "population"].iloc[0])
            units.loc[idx, "population"] = _largest_remainder(total, units.loc[idx, "_w"].to_numpy())
    return units.drop(columns="_w")


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Split an integer total in proportion to weights so the parts add up exactly."""
    share = total * weights / weights.sum()
    parts = np.floor(share).astype("int64")
    short = total - int(parts.sum())
    parts[np.argsort(-(share - parts), kind="stable")[:short]] += 1
    return parts


if __name__ == "__main__":  # pragma: no cover - regenerates the shipped generated grid
    print(f"wrote {write_generated()} ({inputs_fingerprint()[:12]})")
