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


def _current(engine, codes: list[str]) -> gpd.GeoDataFrame:
    units = read_units(engine)
    return units[units["code"].isin(codes)][["code", "name", "geometry"]].reset_index(drop=True)


@pytest.mark.parametrize(("level", "code"), [("street", "440103101000"),
                                             ("village", "440104001201")])
def test_one_unchanged_unit_imports_against_its_siblings(tiny_engine, tmp_path, level, code):
    path = tmp_path / "one.geojson"
    _current(tiny_engine, [code]).to_file(path, engine="pyogrio")
    result = import_boundaries(tiny_engine, path, level=level)
    assert result.imported == 1 and result.version == 2
    assert check_store(tiny_engine).ok


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
def test_a_part_that_overlaps_or_leaves_a_gap_with_a_sibling_not_in_the_file(tiny_engine,
                                                                             tmp_path):
    wider = _current(tiny_engine, ["440103101000"])
    wider["geometry"] = [shapely.box(113.305, 23.10, 113.32, 23.12)]  # into 甲一街道
    path = tmp_path / "wider.geojson"
    wider.to_file(path, engine="pyogrio")
    with pytest.raises(GridValidationError) as err:
        import_boundaries(tiny_engine, path, level="street")
    problems = " ".join(err.value.problems)
    assert "440103101000 甲镇 与 440103001000 甲一街道 重叠 1.13" in problems
    narrower = wider.assign(geometry=[shapely.box(113.312, 23.10, 113.32, 23.12)])
    narrower.to_file(path, engine="pyogrio")
    with pytest.raises(GridValidationError, match="缝隙") as err:
        import_boundaries(tiny_engine, path, level="street")
    assert "440103000000 甲区: 下级单元未覆盖 0.4" in " ".join(err.value.problems)
    assert current_boundary_version(tiny_engine) == 1


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
def test_every_problem_of_a_file_is_listed_and_invalid_geometry_never_crashes(tiny_engine,
                                                                              tmp_path):
    bowtie = shapely.Polygon([(113.30, 23.10), (113.31, 23.11), (113.31, 23.10),
                              (113.30, 23.11)])  # self-intersecting
    frame = gpd.GeoDataFrame(
        {"code": ["440103001001", "440103001201", "440103001299"]},
        geometry=[bowtie, shapely.Point(113.305, 23.115), shapely.box(113.30, 23.10, 113.31, 23.11)],
        crs="EPSG:4326")
    path = tmp_path / "broken.geojson"
    frame.to_file(path, engine="pyogrio")
    before = read_units(tiny_engine)
    result = CliRunner().invoke(main, ["--db", tiny_engine.url.render_as_string(hide_password=False),
                                       "grid", "import", str(path), "--level", "village"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "未知单元 440103001299" in result.output
    assert "440103001001 甲一街道南社区: 边界无效（Self-intersection" in result.output
    assert "invalid polygon" in result.output
    assert "440103001201 甲一街道北村: 边界不是面 / geometry is a Point" in result.output
    assert read_units(tiny_engine).equals(before)


def test_an_import_waits_for_a_load_writing_to_the_store_then_says_busy(tiny_engine, tmp_path):
    from geo.storelock import StoreBusyError, store_lock

    path = tmp_path / "villages.geojson"
    _real_villages().to_file(path, driver="GeoJSON", engine="pyogrio")
    with store_lock(tiny_engine, wait_s=0):  # a load is writing
        with pytest.raises(StoreBusyError, match="store busy"):
            import_boundaries(tiny_engine, path, level="village", wait_s=0.3)
        result = CliRunner().invoke(main, ["--db", tiny_engine.url.render_as_string(
            hide_password=False), "grid", "import", str(path), "--level", "village"],
            env={"GRIDGOV_STORE_LOCK_WAIT_S": "0"})
        assert result.exit_code != 0 and "数据库正忙" in result.output
        assert "Traceback" not in result.output
    assert current_boundary_version(tiny_engine) == 1  # nothing was written
    assert import_boundaries(tiny_engine, path, level="village").version == 2  # free again
