"""`gridgov grid import`: real boundaries in Shapefile, GeoJSON and GeoPackage replace
generated ones; a bad file changes nothing and reports every problem."""

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner

from geo.boundaries import import_boundaries
from geo.errors import GridValidationError
from geo.grid import check_store
from geo.store import current_boundary_version, read_units
from gridgov.cli import main

FORMATS = {"geojson": ("villages.geojson", "GeoJSON"), "shapefile": ("villages.shp", "ESRI Shapefile"),
           "geopackage": ("villages.gpkg", "GPKG")}


def _real_villages() -> gpd.GeoDataFrame:
    """甲一街道's two villages with their border moved 0.002° north, as a surveyed file has it."""
    return gpd.GeoDataFrame(
        {"区划代码": ["440103001001", "440103001201"], "名称": ["甲一街道南社区", "甲一街道北村"]},
        geometry=[shapely.box(113.30, 23.10, 113.31, 23.112), shapely.box(113.30, 23.112, 113.31, 23.12)],
        crs="EPSG:4326",
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_import_each_format_writes_a_new_version(tiny_engine, tmp_path, fmt):
    name, driver = FORMATS[fmt]
    path = tmp_path / name
    frame = _real_villages()
    if fmt == "shapefile":  # dBase field names are 10 bytes: shapefiles carry CODE/NAME
        frame = frame.rename(columns={"区划代码": "CODE", "名称": "NAME"})
    frame.to_file(path, driver=driver, engine="pyogrio")
    result = import_boundaries(tiny_engine, path, level="village")
    assert result.imported == 2 and result.version == 2
    villages = read_units(tiny_engine, level="village").set_index("code")
    assert villages.loc["440103001001", "geometry_source"] == "imported"
    assert villages.loc["440103001001", "name"] == "甲一街道南社区"
    assert villages.loc["440103001001", "area_km2"] == pytest.approx(1.2 * 1.1347, rel=2e-3)
    assert villages.loc["440104001001", "boundary_version"] == 1  # untouched units keep theirs
    assert check_store(tiny_engine).ok


def test_projected_file_by_name_within_parent(tiny_engine, tmp_path):
    frame = _real_villages().drop(columns="区划代码").rename(columns={"名称": "name"})
    frame["parent_code"] = "440103001000"
    path = tmp_path / "projected.gpkg"
    frame.to_crs("EPSG:4547").to_file(path, engine="pyogrio")
    assert import_boundaries(tiny_engine, path, level="village").imported == 2
    assert check_store(tiny_engine).ok


def test_street_import_regenerates_its_generated_villages(tiny_engine, tmp_path):
    streets = gpd.GeoDataFrame(
        {"code": ["440103001000", "440103101000"]},
        geometry=[shapely.box(113.30, 23.10, 113.314, 23.12), shapely.box(113.314, 23.10, 113.32, 23.12)],
        crs="EPSG:4326",
    )
    path = tmp_path / "streets.geojson"
    streets.to_file(path, engine="pyogrio")
    result = import_boundaries(tiny_engine, path, level="street")
    assert (result.imported, result.regenerated) == (2, 4)
    report = check_store(tiny_engine)
    assert report.ok, report.problems
    villages = read_units(tiny_engine, level="village").set_index("code")
    assert villages.loc["440103001001", "geometry_source"] == "generated"
    west = villages[villages["parent_code"] == "440103001000"]["area_km2"].sum()
    assert west == pytest.approx(1.4 * 2 * 1.1347, rel=3e-3)


def test_bad_file_changes_nothing_and_lists_every_problem(tiny_engine, tmp_path):
    bad = gpd.GeoDataFrame(
        {"code": ["440103001001", "440103001201", "440103001299", "440103002001"]},
        geometry=[
            shapely.box(113.30, 23.10, 113.31, 23.113),   # overlaps the next one
            shapely.box(113.30, 23.111, 113.31, 23.118),  # leaves a gap at the top
            shapely.box(113.30, 23.10, 113.301, 23.101),  # unknown unit
            shapely.box(113.30, 23.10, 113.301, 23.101),  # unknown unit (street 002 absent)
        ],
        crs="EPSG:4326",
    )
    path = tmp_path / "bad.geojson"
    bad.to_file(path, engine="pyogrio")
    before = read_units(tiny_engine)
    result = CliRunner().invoke(main, ["--db", tiny_engine.url.render_as_string(hide_password=False),
                                       "grid", "import", str(path), "--level", "village"])
    assert result.exit_code == 1
    assert "未知单元 440103001299" in result.output and "未知单元 440103002001" in result.output
    assert current_boundary_version(tiny_engine) == 1
    assert read_units(tiny_engine).equals(before)

    # with the unknown units removed, the geometric problems are all reported at once
    bad.iloc[:2].to_file(path, engine="pyogrio")
    with pytest.raises(GridValidationError) as err:
        import_boundaries(tiny_engine, path, level="village")
    problems = " ".join(err.value.problems)
    assert "重叠" in problems and "缝隙" in problems
    assert current_boundary_version(tiny_engine) == 1


def test_unreadable_file_is_a_clear_error(tiny_engine, tmp_path):
    path = tmp_path / "notes.geojson"
    path.write_text("这不是边界文件", encoding="utf-8")
    result = CliRunner().invoke(main, ["--db", tiny_engine.url.render_as_string(hide_password=False),
                                       "grid", "import", str(path), "--level", "street"])
    assert result.exit_code == 1 and "无法读取边界文件" in result.output


def test_basic_grids_below_a_village_import_as_a_new_level(tiny_engine, tmp_path):
    grids = gpd.GeoDataFrame(
        {"网格编码": ["440103001001001", "440103001001002"], "网格名称": ["南社区一网格", "南社区二网格"]},
        geometry=[shapely.box(113.30, 23.10, 113.305, 23.11), shapely.box(113.305, 23.10, 113.31, 23.11)],
        crs="EPSG:4326",
    )
    path = tmp_path / "grids.gpkg"
    grids.to_file(path, engine="pyogrio")
    result = import_boundaries(tiny_engine, path, level="grid")
    assert (result.imported, result.regenerated) == (2, 0)
    cells = read_units(tiny_engine, level="grid").set_index("code")
    assert list(cells.index) == ["440103001001001", "440103001001002"]
    assert set(cells["parent_code"]) == {"440103001001"}
    assert cells.loc["440103001001001", "name"] == "南社区一网格"
    assert check_store(tiny_engine).ok

    # a grid cell that leaves half its village uncovered is refused
    grids.iloc[:1].assign(网格编码="440103001201001").to_file(path, engine="pyogrio")
    with pytest.raises(GridValidationError, match="缝隙"):
        import_boundaries(tiny_engine, path, level="grid")
