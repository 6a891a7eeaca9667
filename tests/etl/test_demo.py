"""Demo data (演示数据): reproducible, deadline-respecting, inside the grid, messy on request.

All on the tiny grid of tests/grids.py (2 districts, 4 streets, 8 villages of
0.01° × 0.01°), with small case counts.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import shapely

from etl.demo import (
    CASE_COLUMNS,
    CATEGORIES,
    CHANNELS,
    EXPORT_HEADERS_ZH,
    PURPOSES,
    REGISTERED_LEVELS,
    STATION_COLUMNS,
    build_demo,
    demo_cases,
    demo_history,
    demo_stations,
    messy_export,
)
from geo.crs import to_wgs84
from geo.settings import Settings
from geo.store import Store
from tests.grids import tiny_grid

AS_OF = date(2026, 6, 30)
END = pd.Timestamp("2026-07-01")  # the end of the as_of day
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def units():
    grid = tiny_grid()
    return {level: grid[grid["level"] == level].reset_index(drop=True)
            for level in ("district", "street", "village")}


@pytest.fixture(scope="module")
def cases(units):
    return demo_cases(units["village"], n=20_000, seed=11, as_of=AS_OF,
                      streets=units["street"], districts=units["district"])


@pytest.fixture(scope="module")
def stations(units):
    return demo_stations(units["village"], units["street"], units["district"], seed=11)


# -------------------------------------------------------------------------- cases


def test_same_seed_same_frame_other_seed_other_frame(units, cases):
    again = demo_cases(units["village"], n=20_000, seed=11, as_of=AS_OF,
                       streets=units["street"], districts=units["district"])
    pd.testing.assert_frame_equal(cases, again)
    shuffled = units["village"].sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(
        cases,
        demo_cases(shuffled, n=20_000, seed=11, as_of=AS_OF, streets=units["street"],
                   districts=units["district"]),
    )
    other = demo_cases(units["village"], n=20_000, seed=12, as_of=AS_OF)
    assert not other["lon"].equals(cases["lon"])


def test_columns_vocabularies_and_synthetic_mark(cases):
    assert tuple(cases.columns) == CASE_COLUMNS
    assert len(cases) == 20_000
    assert cases["case_id"].is_unique
    assert cases["synthetic"].all()
    assert set(cases["category"]) <= set(CATEGORIES)
    assert set(cases["purpose"]) <= set(PURPOSES)
    assert set(cases["channel"]) == set(CHANNELS)
    assert set(cases["registered_level"]) == set(REGISTERED_LEVELS)
    assert set(cases["rating"].dropna()) == {"满意", "基本满意", "不满意"}
    assert set(cases["rating_state"]) == {"待评价", "已评价", "超期未评价"}
    assert set(cases["status"]) <= {"registered", "accepted", "replied", "closed",
                                    "not_accepted"}
    top_two = cases["category"].value_counts().index[:2]
    assert set(top_two) == {"城乡建设", "劳动和社会保障"}


def test_lifecycle_is_ordered_and_nothing_lies_after_as_of(cases):
    steps = ["registered_at", "transferred_at", "accepted_at", "replied_at", "closed_at"]
    for earlier, later in zip(steps, steps[1:]):
        both = cases[earlier].notna() & cases[later].notna()
        assert (cases.loc[both, earlier] <= cases.loc[both, later]).all(), (earlier, later)
        # a later step never exists without the earlier one
        assert not (cases[later].notna() & cases[earlier].isna()).any(), (earlier, later)
    stamps = cases[[c for c in cases.columns if c.endswith("_at") and c != "due_at"]]
    assert (stamps.max() < END).all()
    assert cases["registered_at"].min() >= END - 365 * DAY
    assert (cases["rated_at"].notna() <= cases["replied_at"].notna()).all()
    assert (cases["followed_up_at"].dropna() > cases.loc[cases["followed_up_at"].notna(),
                                                         "closed_at"]).all()


def test_steps_respect_the_deadlines(cases):
    settings = Settings()
    assert ((cases["transferred_at"] - cases["registered_at"]).max() <= 15 * DAY)
    assert ((cases["accepted_at"] - cases["transferred_at"]).max() <= 15 * DAY)
    accepted = cases[cases["accepted_at"].notna() & (cases["status"] != "not_accepted")]
    days = np.where(accepted["extended"], 90, 60)
    expected_due = accepted["accepted_at"] + pd.to_timedelta(days, unit="D")
    assert (accepted["due_at"] == expected_due).all()
    assert cases.loc[cases["accepted_at"].isna(), "due_at"].isna().all()
    assert 0.01 < cases["extended"].mean() < 0.08
    # on-time completion (按期办结) over every case due before as_of: at least 95 %
    due = cases[cases["due_at"] < END]
    on_time = (due["closed_at"] <= due["due_at"]).mean()
    assert 0.95 <= on_time < 1.0
    # timely acceptance (及时受理): almost always within 15 days of registration
    accepted_days = (accepted["accepted_at"] - accepted["registered_at"]) / DAY
    assert 0.95 <= (accepted_days <= settings.acceptance_days).mean() < 1.0
    # most closed cases close well inside the 60 days
    closed = cases[cases["closed_at"].notna()]
    assert ((closed["closed_at"] - closed["accepted_at"]) / DAY).median() < 30


def test_open_cases_cluster_near_as_of_and_backlog_has_leaders(cases):
    open_ = cases[cases["closed_at"].isna() & (cases["status"] != "not_accepted")]
    recent = open_["registered_at"] > END - 90 * DAY
    assert len(open_) > 0 and recent.mean() > 0.8
    backlog = cases[cases["is_backlog"]]
    assert len(backlog) > 0
    assert 0.75 < backlog["backlog_leader"].notna().mean() < 1.0  # mostly a 包案领导
    assert cases.loc[~cases["is_backlog"], "backlog_leader"].isna().all()
    assert backlog["backlog_at"].notna().all() and cases.loc[~cases["is_backlog"],
                                                             "backlog_at"].isna().all()
    assert (backlog["backlog_at"] > backlog["due_at"]).all()  # listed once it ran over
    cleared = backlog[backlog["closed_at"].notna()]
    assert (cleared["backlog_at"] < cleared["closed_at"]).all()
    assert backlog["closed_at"].notna().any() and backlog["closed_at"].isna().any()
    overdue_open = backlog[backlog["closed_at"].isna()]
    assert (overdue_open["due_at"] < END).all()


def test_full_lifecycles_extensions_reviews_stuck_cases_and_headcounts(cases):
    extended = cases[cases["extended"]]
    assert extended["extended_at"].notna().all()
    assert (extended["extended_at"] > extended["accepted_at"]).all()
    assert (extended["extended_at"] < extended["accepted_at"] + 60 * DAY).all()
    assert cases.loc[~cases["extended"], "extended_at"].isna().all()
    not_accepted = cases[cases["status"] == "not_accepted"]
    assert len(not_accepted) > 0 and not_accepted["accepted_at"].notna().all()  # the decision
    assert not_accepted[["due_at", "replied_at", "closed_at"]].isna().all().all()
    stuck = (cases["status"] == "registered") & (cases["registered_at"] < END - 15 * DAY)
    assert 0 < stuck.sum() < 0.002 * len(cases)  # still 登记 past the acceptance limit
    reviewed = cases[cases["reviewed_at"].notna()]
    assert len(reviewed) > 0 and (reviewed["rating"] == "不满意").all()
    assert (reviewed["reviewed_at"] > reviewed["rated_at"]).all()
    rechecked = cases[cases["rechecked_at"].notna()]
    assert 0 < len(rechecked) < len(reviewed)
    assert (rechecked["rechecked_at"] > rechecked["reviewed_at"]).all()
    replied = cases[cases["replied_at"].notna()]
    assert replied["rating"].isna().any()  # some never rate
    assert replied["followed_up_at"].notna().mean() > 0.7  # most get a 回访
    counts = cases["people_count"]
    assert (counts >= 1).all() and 0.8 < (counts == 1).mean() < 0.95
    assert 0.003 < (counts >= 5).mean() < 0.05  # rare groups (集体访)


def test_history_in_two_exports_adds_up_to_the_current_one(units, cases):
    history = demo_history(units["village"], n=20_000, seed=11, as_of=AS_OF,
                           streets=units["street"], districts=units["district"])
    (label_a, earlier), (label_b, incremental) = history
    assert (label_a, label_b) == ("earlier", "incremental")
    assert (earlier["registered_at"] < END - 14 * DAY).all()
    assert 0 < len(incremental) < 0.3 * len(cases)
    latest = pd.concat([earlier, incremental]).drop_duplicates("case_id", keep="last")
    latest = latest.set_index("case_id").loc[cases["case_id"]].reset_index()
    pd.testing.assert_frame_equal(latest, cases)
    moved = earlier.set_index("case_id").loc[
        incremental["case_id"][incremental["case_id"].isin(earlier["case_id"])]]
    assert (moved["status"] != "closed").any()  # cases that progressed in between


def test_rating_states_follow_the_rating_window(cases):
    window = Settings().rating_window_days * DAY
    rated = cases["rating"].notna()
    assert (cases.loc[rated, "rating_state"] == "已评价").all()
    expired = ~rated & cases["replied_at"].notna() & (cases["replied_at"] + window < END)
    assert (cases.loc[expired, "rating_state"] == "超期未评价").all()
    assert (cases.loc[~rated & ~expired, "rating_state"] == "待评价").all()
    satisfaction = cases.loc[rated, "rating"].isin(["满意", "基本满意"]).mean()
    assert 0.85 <= satisfaction <= 0.98


def test_points_lie_inside_their_village(units, cases):
    geometry = dict(zip(units["village"]["code"], units["village"].geometry))
    polygons = np.array([geometry[c] for c in cases["village_code"]], dtype=object)
    assert shapely.contains_xy(polygons, cases["lon"], cases["lat"]).all()
    assert (cases["street_code"] == cases["village_code"].str[:9] + "000").all()
    assert (cases["district_code"] == cases["village_code"].str[:6] + "000000").all()


def test_addresses_name_the_units(cases):
    first = cases.iloc[0]
    assert first["address"].startswith("广州市")
    assert first["address"].endswith("号")
    street = {"440103001000": "甲一街道", "440103101000": "甲镇", "440104001000": "乙一街道",
              "440104002000": "乙二街道"}[first["street_code"]]
    district = "甲区" if first["district_code"] == "440103000000" else "乙区"
    assert first["address"].startswith(f"广州市{district}{street}")


def test_repeats_point_to_an_earlier_case_of_the_same_petitioner(cases):
    repeats = cases[cases["is_repeat"]]
    assert 0.01 < len(repeats) / len(cases) < 0.1
    assert cases.loc[~cases["is_repeat"], "repeat_of"].isna().all()
    origin = cases.set_index("case_id").loc[repeats["repeat_of"]]
    assert (origin["registered_at"].to_numpy() < repeats["registered_at"].to_numpy()).all()
    for column in ("petitioner_id", "petitioner_name", "petitioner_phone", "village_code",
                   "category"):
        assert (origin[column].to_numpy() == repeats[column].to_numpy()).all(), column
    assert not origin["is_repeat"].any()
    # first-time cases come from distinct people (IDs are drawn, not reused)
    firsts = cases.loc[~cases["is_repeat"], "petitioner_id"]
    assert firsts.nunique() > 0.99 * len(firsts)


def test_personal_data_is_invented_and_can_never_be_real(cases):
    ids = cases["petitioner_id"]
    assert ids.str.fullmatch(r"\d{17}[\dX]").all()
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    digits = np.array([[int(ch) for ch in s[:17]] for s in ids.head(500)])
    valid = np.array(list("10X98765432"))[(digits * weights).sum(axis=1) % 11]
    assert (valid != ids.head(500).str[17].to_numpy()).all()
    assert cases["petitioner_phone"].str.fullmatch(r"154\d{8}").all()
    assert cases["petitioner_name"].str.len().between(2, 3).all()


def test_urban_communities_petition_more_per_resident_and_hotspots_stand_out(units, cases):
    population = units["village"].set_index("code")["population"]
    per_10k = cases["village_code"].value_counts() / population * 10_000
    assert per_10k.max() >= 3 * per_10k.median()  # a hotspot
    normal = per_10k[per_10k < 2 * per_10k.median()]
    urban = normal[normal.index.str[9:] < "200"]
    rural = normal[normal.index.str[9:] >= "200"]
    assert urban.mean() > rural.mean()


def test_many_cases_come_out_whole_and_ordered(units):
    """Scale smoke test: 200,000 cases (10× the other tests) come out whole and ordered."""
    big = demo_cases(units["village"], n=200_000, seed=3, as_of=AS_OF)
    assert len(big) == 200_000 and big["registered_at"].is_monotonic_increasing


def test_zero_cases_give_an_empty_frame_with_the_columns(units):
    empty = demo_cases(units["village"], n=0, seed=1, as_of=AS_OF)
    assert len(empty) == 0 and tuple(empty.columns) == CASE_COLUMNS


# -------------------------------------------------------------------------- stations


def test_station_network_has_halls_centres_and_gaps(units, stations):
    assert tuple(stations.columns) == STATION_COLUMNS
    assert stations["station_id"].is_unique and stations["synthetic"].all()
    by_type = stations.groupby("station_type")["serves_code"].apply(set)
    assert by_type["hall"] == set(units["district"]["code"])
    assert by_type["centre"] == set(units["street"]["code"])
    served = by_type["station"]
    gaps = set(units["village"]["code"]) - served
    assert 1 <= len(gaps) <= 2  # ~12 % of 8 villages
    assert "mediation" in by_type


def test_stations_stand_inside_the_unit_they_serve(units, stations):
    geometry = {}
    for frame in units.values():
        geometry.update(zip(frame["code"], frame.geometry))
    polygons = np.array([geometry[c] for c in stations["serves_code"]], dtype=object)
    assert shapely.contains_xy(polygons, stations["lon"], stations["lat"]).all()


def test_station_gaps_fall_mostly_on_rural_villages():
    """On a bigger made-up grid (40 streets × 10 villages), gaps are ~12 % and mostly rural."""
    rows = []
    for s in range(40):
        street = f"4401031{s:02d}000"
        for v in range(10):
            suffix = f"{v + 1:03d}" if v < 5 else f"{200 + v:03d}"
            rows.append({"code": street[:9] + suffix, "parent_code": street, "population": 3000,
                         "name": f"村{s}-{v}",
                         "geometry": shapely.box(113 + s * 0.01, 23 + v * 0.01,
                                                 113.01 + s * 0.01, 23.01 + v * 0.01)})
    import geopandas as gpd

    villages = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    streets = pd.DataFrame({"code": villages["parent_code"].unique(), "name": "某镇"})
    districts = pd.DataFrame({"code": ["440103000000"], "name": ["甲区"]})
    stations = demo_stations(villages, streets, districts, seed=5)
    served = set(stations.loc[stations["station_type"] == "station", "serves_code"])
    gaps = villages[~villages["code"].isin(served)]
    assert len(gaps) == 48  # 12 % of 400
    assert (gaps["code"].str[9:] >= "200").mean() > 0.6  # mostly 村委会
    per_street = gaps.groupby("parent_code").size()
    assert per_street.max() >= 4  # concentrated: a couple of streets are badly served


# -------------------------------------------------------------------------- messy export


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "wgs84"])
def test_messy_export_coordinates_round_trip_within_one_metre(cases, crs):
    messy = messy_export(cases, crs=crs, seed=2)
    info = messy.attrs["messy"]
    n = info["rows_in"]
    touched = set().union(*(info[k] for k in ("swapped", "missing_coords_address",
                                               "missing_coords_code", "bad_coords")))
    clean = np.array(sorted(set(range(n)) - touched))
    lon = pd.to_numeric(messy["经度"].iloc[clean]).to_numpy()
    lat = pd.to_numeric(messy["纬度"].iloc[clean]).to_numpy()
    back_lon, back_lat = to_wgs84(lon, lat, crs)
    metres = np.hypot((back_lon - cases["lon"].to_numpy()[clean]) * 102_500,
                      (back_lat - cases["lat"].to_numpy()[clean]) * 110_800)
    assert metres.max() < 1.0
    if crs != "wgs84":  # the shift is real: hundreds of metres
        shifted = np.hypot((lon - cases["lon"].to_numpy()[clean]) * 102_500,
                           (lat - cases["lat"].to_numpy()[clean]) * 110_800)
        assert shifted.min() > 100


def test_messy_export_damage_is_as_documented(cases):
    messy = messy_export(cases, seed=4, swap_share=0.01, missing_coord_share=0.02,
                         bad_share=0.006, duplicate_share=0.005)
    info = messy.attrs["messy"]
    assert list(messy.columns) == list(EXPORT_HEADERS_ZH.values())
    assert len(messy) == 20_000 + 100 and len(info["duplicates"]) == 100
    assert len(info["swapped"]) == 200
    assert len(info["missing_coords_address"]) + len(info["missing_coords_code"]) == 400
    assert len(info["bad_date"]) + len(info["missing_id"]) + len(info["bad_coords"]) == 120
    # swapped: 经度 holds a latitude
    swapped = messy.iloc[list(info["swapped"])]
    assert pd.to_numeric(swapped["经度"]).between(20, 30).all()
    # no coordinates, but an address or a 问题属地代码 to attach by
    address_only = messy.iloc[list(info["missing_coords_address"])]
    assert (address_only["经度"] == "").all() and (address_only["问题属地代码"] == "").all()
    assert address_only["地址"].str.startswith("广州市").all()
    code_only = messy.iloc[list(info["missing_coords_code"])]
    assert (code_only["地址"] == "").all() and code_only["问题属地代码"].str.len().eq(12).all()
    # unusable rows
    assert (messy.iloc[list(info["missing_id"])]["信访件编号"] == "").all()
    bad_dates = pd.to_datetime(messy.iloc[list(info["bad_date"])]["登记时间"], errors="coerce",
                               format="%Y-%m-%d %H:%M:%S")
    assert bad_dates.isna().all()
    # duplicates are exact copies of an original row
    copies = messy.iloc[list(info["duplicates"])]
    originals = messy.iloc[:20_000]
    assert copies["信访件编号"].isin(originals["信访件编号"]).all()
    first = copies.iloc[0]
    match = originals[originals["信访件编号"] == first["信访件编号"]].iloc[0]
    assert first.equals(match)
    # values as an export writes them
    assert set(messy["初重件"]) == {"初件", "重件"} and set(messy["演示数据"]) == {"是"}
    assert set(messy["办理状态"]) <= {"登记", "受理", "答复", "办结", "不予受理"}


def test_messy_export_is_reproducible(cases):
    a = messy_export(cases.head(3000), seed=9)
    b = messy_export(cases.head(3000), seed=9)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs == b.attrs


# -------------------------------------------------------------------------- build_demo


def test_build_demo_loads_stations_and_cases_through_the_etl(tiny_engine):
    import sqlalchemy as sa

    from geo import schema

    summary = build_demo(Store(tiny_engine, Settings()), n_cases=2_000, seed=5, as_of=AS_OF)
    assert summary["cases"] == 2_000 and summary["as_of"] == "2026-06-30"
    with tiny_engine.connect() as conn:
        n_cases = conn.execute(sa.select(sa.func.count()).select_from(schema.cases)).scalar()
        synthetic = conn.execute(
            sa.select(sa.func.count()).select_from(schema.cases)
            .where(schema.cases.c.synthetic.is_(True))
        ).scalar()
        n_stations = conn.execute(sa.select(sa.func.count()).select_from(schema.station)).scalar()
        unassigned = conn.execute(
            sa.select(sa.func.count()).select_from(schema.cases)
            .where(schema.cases.c.attach_method != "point")
        ).scalar()
    assert n_cases == synthetic == 2_000
    assert n_stations == summary["stations"]
    assert unassigned == 0
    assert len(summary["case_run_ids"]) == 2 and summary["lifecycle_events"] > 0  # history, updated
    # the same demo again changes nothing
    again = build_demo(Store(tiny_engine, Settings()), n_cases=2_000, seed=5, as_of=AS_OF)
    assert "未变 2000" in again["reconciliation"]


def test_a_demo_over_one_batch_is_drawn_and_loaded_batch_by_batch(tmp_path, monkeypatch):
    import sqlalchemy as sa

    from etl import demo
    from geo import schema
    from geo.grid import load_units
    from geo.store import make_engine, upgrade_schema
    from tests.grids import tiny_grid

    engine = make_engine(f"sqlite:///{tmp_path / 'batches.db'}")
    upgrade_schema(engine)
    load_units(engine, tiny_grid(), kind="bundled", note="tiny test grid")
    monkeypatch.setattr(demo, "DEMO_BATCH", 300)  # 700 cases: batches of 300, 300 and 100
    summary = build_demo(Store(engine, Settings()), n_cases=700, seed=5, as_of=AS_OF)
    assert summary["cases"] == 700 and len(summary["case_run_ids"]) == 6  # two exports a batch
    with engine.connect() as conn:
        ids = conn.execute(sa.select(schema.cases.c.case_id)).scalars().all()
        n_stations = conn.execute(sa.select(sa.func.count()).select_from(schema.station)).scalar()
    assert len(ids) == len(set(ids)) == 700  # numbered after the earlier batches: none replaced
    assert n_stations == summary["stations"]  # the stations loaded once
    engine.dispose()
