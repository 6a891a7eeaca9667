"""A tiny hand-made grid with answers anyone can check on paper.

Two districts side by side near Guangzhou's centre, each 0.02° × 0.02°
(≈ 2.05 km × 2.22 km), each split into two streets (west/east halves), each street into two
villages (south/north halves)::

    lat 23.12 +---------+---------+---------+---------+
              | V…002   | V…002   | V…002   | V…002   |
              |  北     |  北     |  北     |  北     |
    lat 23.11 +---------+---------+---------+---------+
              | V…001   | V…001   | V…001   | V…001   |
              |  南     |  南     |  南     |  南     |
    lat 23.10 +---------+---------+---------+---------+
         113.30    113.31    113.32    113.33    113.34
              | 甲一街道 | 甲镇    | 乙一街道 | 乙二街道 |
              |------ district 440103 -----|------ district 440104 -----|

District 440103 (甲区) holds streets 440103001000 (甲一街道, west) and 440103101000 (甲镇, east);
district 440104 (乙区) holds 440104001000 (乙一街道) and 440104002000 (乙二街道).
Each street holds village …001 (south, a 居委会) and …201 (north, a 村委会).
Populations: districts 10,000 and 20,000, split evenly (estimates below district).
"""

from __future__ import annotations

import geopandas as gpd
import shapely

CITY = "440100000000"
DISTRICTS = {"440103000000": ("甲区", 113.30, 10_000), "440104000000": ("乙区", 113.32, 20_000)}
STREETS = {
    "440103001000": ("甲一街道", "440103000000", 113.30),
    "440103101000": ("甲镇", "440103000000", 113.31),
    "440104001000": ("乙一街道", "440104000000", 113.32),
    "440104002000": ("乙二街道", "440104000000", 113.33),
}
SOUTH, NORTH = (23.10, 23.11), (23.11, 23.12)


def tiny_grid() -> gpd.GeoDataFrame:
    """Return the tiny grid as a GeoDataFrame in the shape ``geo.grid.load_units`` takes.

    Columns: code, name, level, parent_code, population, population_estimated,
    geometry_source, geometry (MultiPolygon, EPSG:4326).
    """
    rows = []

    def add(code, name, level, parent, geom, population, estimated, source):
        rows.append(
            {
                "code": code,
                "name": name,
                "level": level,
                "parent_code": parent,
                "population": population,
                "population_estimated": estimated,
                "geometry_source": source,
                "geometry": shapely.MultiPolygon([geom]),
            }
        )

    add(CITY, "测试市", "city", None, shapely.box(113.30, 23.10, 113.34, 23.12), 30_000, False,
        "official")
    for code, (name, west, pop) in DISTRICTS.items():
        add(code, name, "district", CITY, shapely.box(west, 23.10, west + 0.02, 23.12), pop, False,
            "official")
    for code, (name, parent, west) in STREETS.items():
        pop = DISTRICTS[parent][2] // 2
        add(code, name, "street", parent, shapely.box(west, 23.10, west + 0.01, 23.12), pop, True,
            "generated")
        for suffix, (south, north), vname in (("001", SOUTH, "南社区"), ("201", NORTH, "北村")):
            add(code[:9] + suffix, name + vname, "village", code,
                shapely.box(west, south, west + 0.01, north), pop // 2, True, "generated")
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
