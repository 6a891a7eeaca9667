"""Synthetic demo data (演示数据): a year of petition cases and the service-station network.

The dashboard must show something meaningful on a fresh machine, and the ETL and the
benchmarks need millions of realistic rows without touching anybody's personal data.
This module draws them, seeded and reproducible, on whatever grid the store holds:

* :func:`demo_cases`: a year of cases (信访件) whose density follows population, with more
  per resident in urban communities (居委会) than in rural villages (村委会), a few hotspot
  villages, a backlog (积案) with responsible leaders (包案领导), and lifecycles that respect
  the deadlines of the 信访工作条例 (docs/domain.md §1.1) — transfer ≤ 15 days, acceptance ≤ 15
  days, reply within 60 days of acceptance (90 with an extension) — except for a few late
  ones. Each street gets a *quality factor* that moves its on-time, first-time-resolution
  and satisfaction rates inside the ranges seen in practice (≈ 95–100 %, 90–97 %, 85–98 %),
  so the map has something to say.
* :func:`demo_stations`: one 区信访超市 per district, one 镇街综治中心 per street, a 村居服务站
  in most villages (with deliberate gaps, mostly rural and concentrated in two streets) and
  人民调解工作室 in a subset.
* :func:`messy_export`: the same cases as a real export looks (Chinese headers, GCJ-02 or
  BD-09 coordinates, swapped lat/lon, missing coordinates, unusable rows, duplicates), for
  the ETL's tests and benchmark. What was damaged is listed in ``frame.attrs["messy"]``.
* :func:`build_demo`: a complete demo store (grid, stations, cases) through the ETL.

Every row carries ``synthetic=True``. Names, phone numbers and ID numbers are invented:
phone numbers use the unassigned 154 mobile segment and ID numbers (身份证号) carry a
deliberately wrong check digit, so none of them can be a real person's.

Everything is vectorised with numpy (no per-row Python): 2,000,000 cases take seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from sqlalchemy.engine import Engine

from geo.codes import is_urban, unit_kind
from geo.crs import from_wgs84
from geo.errors import GridgovError
from geo.settings import Settings
from geo.store import Store
from geo.vocab import LOCAL_LEVELS, RATINGS, REGISTERED_LEVELS, STATUS_ZH

__all__ = [
    "CASE_COLUMNS",
    "CATEGORIES",
    "CHANNELS",
    "EXPORT_HEADERS_ZH",
    "PURPOSES",
    "REGISTERED_LEVELS",
    "STATION_COLUMNS",
    "STATUS_ZH",
    "build_demo",
    "demo_cases",
    "demo_stations",
    "messy_export",
]

# ----------------------------------------------------------------------------- vocabulary

CASE_COLUMNS: tuple[str, ...] = (
    "case_id", "registered_at", "transferred_at", "accepted_at", "due_at", "extended",
    "extended_at", "replied_at", "closed_at", "followed_up_at", "rating", "rated_at",
    "rating_state", "reviewed_at", "rechecked_at", "status", "category", "purpose", "channel",
    "is_repeat", "repeat_of", "is_backlog", "backlog_leader", "backlog_at", "registered_level",
    "handling_unit", "people_count", "lon", "lat", "address", "village_code", "street_code",
    "district_code", "petitioner_name", "petitioner_phone", "petitioner_id", "description",
    "synthetic",
)
"""Columns of :func:`demo_cases`: the source columns of the ``cases`` table (what an export
carries; the ETL computes attach_*, boundary_version, the ID hash, row_hash and run ids),
with the raw fake ID number ``petitioner_id`` that the ETL hashes."""

STATION_COLUMNS: tuple[str, ...] = (
    "station_id", "name", "station_type", "lon", "lat", "serves_code", "address", "synthetic",
)
"""Columns of :func:`demo_stations` (the source columns of the ``station`` table)."""

#: The 19 first-level content classes (docs/domain.md §3) with their share among urban and rural
#: cases (judgement: 城乡建设 and 劳动和社会保障 lead everywhere; land and village affairs weigh
#: more in rural 村委会), and second-level topics used in the description.
CATEGORIES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "城乡建设": (0.24, 0.18, ("国有土地上房屋征收与补偿", "集体土地上房屋拆迁与补偿", "城市建设和管理",
                         "违法建设", "物业服务", "拖欠工程款")),
    "劳动和社会保障": (0.17, 0.13, ("拖欠农民工工资", "社会保险", "工资福利", "退休待遇",
                            "劳动关系")),
    "农村农业": (0.02, 0.12, ("村务管理", "土地承包经营", "农村宅基地", "惠农补贴")),
    "自然资源": (0.03, 0.08, ("土地征收", "不动产登记", "林业管理")),
    "卫生健康": (0.05, 0.04, ("医政药政", "医患纠纷")),
    "教育": (0.05, 0.04, ("考试招生", "教育收费", "教师待遇")),
    "经济管理": (0.07, 0.04, ("集资融资", "企业改制", "营商环境")),
    "市场监管": (0.07, 0.04, ("食品药品", "市场秩序", "消费投诉")),
    "交通运输": (0.04, 0.04, ("客货运输", "出租车和网约车")),
    "民政与应急": (0.05, 0.06, ("社会救助", "基层选举", "养老服务", "安全生产")),
    "政法": (0.07, 0.06, ("诉讼", "仲裁与调解", "社会治安", "户籍")),
    "军队事务": (0.01, 0.01, ("退役安置", "优待抚恤")),
    "科技与信息产业": (0.01, 0.005, ("通信服务",)),
    "生态环境": (0.04, 0.05, ("水污染", "大气污染", "噪音污染", "建设项目审批")),
    "文体旅游": (0.01, 0.01, ("文化市场", "旅游服务")),
    "党务政务": (0.02, 0.02, ("政务公开", "政务服务")),
    "组织人事": (0.01, 0.01, ("干部人事",)),
    "纪检监察": (0.02, 0.03, ("贪污贿赂", "失职渎职", "干部作风")),
    "其他": (0.02, 0.025, ("历史遗留问题", "其他事项")),
}

#: District department (承办单位) that handles each class once transferred to district level.
_DEPARTMENTS: dict[str, str] = {
    "城乡建设": "住房和城乡建设局", "劳动和社会保障": "人力资源和社会保障局", "农村农业": "农业农村局",
    "自然资源": "规划和自然资源分局", "卫生健康": "卫生健康局", "教育": "教育局", "经济管理": "发展和改革局",
    "市场监管": "市场监督管理局", "交通运输": "交通运输局", "民政与应急": "民政局", "政法": "司法局",
    "军队事务": "退役军人事务局", "科技与信息产业": "科技和工业信息化局", "生态环境": "生态环境分局",
    "文体旅游": "文化广电旅游体育局", "党务政务": "政务服务数据管理局", "组织人事": "人力资源和社会保障局",
    "纪检监察": "纪委监委", "其他": "信访局",
}

PURPOSES: dict[str, float] = {"求决": 0.55, "申诉": 0.12, "揭发控告": 0.07, "意见建议": 0.16, "其他": 0.10}
"""信访目的 with their shares (揭发控告 rises for 纪检监察 cases)."""

CHANNELS: dict[str, float] = {
    "来访": 0.17, "来信": 0.07, "网上": 0.38, "电话": 0.16, "二维码": 0.10, "网格员上报": 0.12,
}
"""信访渠道 with their shares."""

_LEVEL_SHARES = np.array([0.006, 0.03, 0.08, 0.36, 0.40, 0.124])
"""Shares of 登记机构级别 (geo.vocab.REGISTERED_LEVELS, from the top down)."""
_LOCAL_LEVELS = REGISTERED_LEVELS.index(LOCAL_LEVELS[0])  # 区, 镇街, 村居 and below

EXPORT_HEADERS_ZH: dict[str, str] = {
    "case_id": "信访件编号", "registered_at": "登记时间", "transferred_at": "转送交办时间",
    "accepted_at": "受理时间", "due_at": "办理期限", "extended": "是否延期", "extended_at": "延期时间",
    "replied_at": "答复时间", "closed_at": "办结时间", "followed_up_at": "回访时间", "rating": "满意度",
    "rated_at": "评价时间", "rating_state": "评价状态", "reviewed_at": "复查时间",
    "rechecked_at": "复核时间", "status": "办理状态", "category": "内容分类", "purpose": "信访目的",
    "channel": "信访渠道", "is_repeat": "初重件", "repeat_of": "重复件原件编号",
    "is_backlog": "积案标志", "backlog_leader": "包案领导", "backlog_at": "列为积案时间",
    "registered_level": "登记机构级别", "handling_unit": "承办单位", "people_count": "涉及人数",
    "lon": "经度", "lat": "纬度", "address": "地址",
    "village_code": "问题属地代码", "petitioner_name": "信访人姓名", "petitioner_phone": "联系电话",
    "petitioner_id": "身份证号码", "description": "信访事项摘要", "synthetic": "演示数据",
}
"""Canonical column → Chinese header of :func:`messy_export`, in output order. Values:
timestamps ``YYYY-MM-DD HH:MM:SS``, flags 是/否, 初重件 初件/重件, status per
:data:`STATUS_ZH`, 问题属地代码 the 12-digit village code, missing values empty strings."""

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁郑谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱覃武戴孔"
)
_GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红文辉"
    "玉萍鹏宇浩凯婷雪琳晨欣怡涵轩嘉俊宏健荣锦泽炜颖慧思永福德"
)
_ROADS = (
    "中山路", "解放路", "人民路", "建设路", "东风路", "环市路", "新港路", "工业大道", "沿江路", "花城大道",
    "天河路", "江南大道", "同福路", "南华路", "白云大道", "广园路", "迎宾路", "市桥路", "清河路", "光明路",
    "新华路", "凤凰路", "桥东路", "兴华路", "龙口路", "文明路", "朝阳路", "新兴路", "和平路", "幸福路",
)
_LEADER_TITLES = ("副区长", "区委常委", "区人大常委会副主任", "区政协副主席")
_OTHER_PROVINCE_AREAS = (430102, 450103, 360102, 510104, 420102, 350102, 410105, 460105, 520102,
                         130102)

_DAY = 86_400.0
_WINDOW_DAYS = 365
_HOTSPOT_SHARE = 0.005
_BACKLOG_SHARE = 0.004
_NOT_ACCEPTED_SHARE = 0.015
_EXTENDED_SHARE = 0.035
_STUCK_SHARE = 0.0002  # still 登记 past the 15-day acceptance limit (nobody told)
_REVIEW_SHARE = 0.35  # of 不满意 ratings: the petitioner asks for 复查 (Art. 35)
_RECHECK_SHARE = 0.2  # of 复查: then 复核 (Art. 36)
_BACKLOG_LEADER_SHARE = 0.9  # 积案 with a 包案领导 assigned
_HEADCOUNT_SHARES = np.array([0.88, 0.06, 0.03, 0.015, 0.015])  # 1, 2, 3, 4, 5+ people
EARLIER_EXPORT_DAYS = 14
"""A fresh demo store first loads the export of this many days before ``as_of`` (all
cases then known), then the incremental export since (new cases and those whose state
moved), so the ETL's update path and its lifecycle events run as they do in practice."""
_STATION_GAP_SHARE = 0.12
_MEDIATION_SHARE = 0.3
_GAP_STREETS = 2


# ----------------------------------------------------------------------------- public API


def demo_cases(
    villages: gpd.GeoDataFrame,
    *,
    n: int = 200_000,
    seed: int = 7,
    as_of: date | None = None,
    streets: pd.DataFrame | None = None,
    districts: pd.DataFrame | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Draw a year of synthetic petition cases (演示信访件) ending on ``as_of``.

    Parameters
    ----------
    villages
        Village units (村居): ``code``, ``parent_code`` (street), ``population``, ``kind``
        (居委会/村委会; derived from the code when absent), ``name`` and ``geometry``
        (WGS-84). Optional ``street_name``/``district_name`` columns name the parents in
        addresses and handling units.
    n
        Number of cases.
    seed
        Same ``(seed, as_of, n, villages)`` gives an identical frame.
    as_of
        Export date: cases are registered during the 365 days ending with this day, and no
        timestamp lies after it (later lifecycle steps are simply not there yet). Default
        today (not reproducible across days; pass a date for that).
    streets, districts
        Units with ``code`` and ``name``, used for names when ``villages`` lacks them.
    settings
        Deadlines (60/30/15 days) and rating window; default ``Settings()``.

    Returns
    -------
    pandas.DataFrame
        :data:`CASE_COLUMNS`, one row per case, ordered by ``registered_at``; timestamps
        naive local time, lon/lat WGS-84 inside the case's village, ``synthetic`` True.
    """
    history = _History.draw(villages, n=n, seed=seed, as_of=as_of, streets=streets,
                            districts=districts, settings=settings)
    return history.export(end_days=0.0)


def demo_history(
    villages: gpd.GeoDataFrame,
    *,
    n: int = 200_000,
    seed: int = 7,
    as_of: date | None = None,
    streets: pd.DataFrame | None = None,
    districts: pd.DataFrame | None = None,
    settings: Settings | None = None,
    earlier_days: int = EARLIER_EXPORT_DAYS,
) -> list[tuple[str, pd.DataFrame]]:
    """The exports a fresh demo store is loaded from, oldest first (a case's history).

    The same cases as :func:`demo_cases` (same arguments), seen twice: the full export of
    ``earlier_days`` before ``as_of`` (every case registered by then, as it stood then),
    then the incremental export up to ``as_of``: the cases registered since, and the
    earlier ones whose state moved (accepted, replied, rated, 复查 …). Loaded in order,
    they leave the store exactly as :func:`demo_cases` would, plus the lifecycle events of
    every update.

    Returns
    -------
    list of (label, DataFrame)
        ``("earlier", …)`` and ``("incremental", …)``, frames of :data:`CASE_COLUMNS`.
    """
    return _history_exports(villages, n=n, seed=seed, as_of=as_of, streets=streets,
                            districts=districts, settings=settings, earlier_days=earlier_days)[0]


def _history_exports(villages: gpd.GeoDataFrame, *, earlier_days: int = EARLIER_EXPORT_DAYS,
                     id_offset: int = 0,
                     **kwargs: Any) -> tuple[list[tuple[str, pd.DataFrame]], pd.DataFrame]:
    """:func:`demo_history`'s exports and the current export they add up to."""
    history = _History.draw(villages, **kwargs)
    history.draw_["id_offset"] = id_offset  # running numbers after the earlier batches'
    earlier, earlier_frame = history.cut(end_days=-earlier_days)
    final, final_frame = history.cut(end_days=0.0)
    moved = _moved(earlier, final)
    exports = [("earlier", earlier_frame),
               ("incremental", final_frame[moved].reset_index(drop=True))]
    return exports, final_frame


def demo_stations(
    villages: gpd.GeoDataFrame,
    streets: pd.DataFrame,
    districts: pd.DataFrame,
    *,
    seed: int = 7,
) -> pd.DataFrame:
    """Place the demo service network: halls, street centres, village stations, mediation rooms.

    One 区信访超市 (``hall``) per district, in its most populous village; one 镇街综治中心
    (``centre``) per street, in the street's most populous village; a 村居服务站
    (``station``) in most villages, leaving about 12 % without one — mostly rural 村委会 and
    concentrated in two streets, so that coverage gaps show on the map; a 人民调解工作室
    (``mediation``) in about 30 % of villages.

    Parameters
    ----------
    villages
        As for :func:`demo_cases` (``code``, ``parent_code``, ``population``, ``name``,
        ``geometry``).
    streets, districts
        Units with ``code``, ``name`` (and ``parent_code`` for streets).
    seed
        Same seed and units give an identical frame.

    Returns
    -------
    pandas.DataFrame
        :data:`STATION_COLUMNS`; points WGS-84 inside the unit they serve.
    """
    units = _village_table(villages, streets=streets, districts=districts)
    rng = np.random.default_rng([seed, 0x57A7])
    frames = [
        _hall_rows(units, rng=rng),
        _centre_rows(units, rng=rng),
        _station_rows(units, rng=rng),
        _mediation_rows(units, rng=rng),
    ]
    out = pd.concat(frames, ignore_index=True)
    out["synthetic"] = True
    return out[list(STATION_COLUMNS)]


def messy_export(
    cases: pd.DataFrame,
    *,
    crs: str = "gcj02",
    seed: int = 7,
    swap_share: float = 0.01,
    missing_coord_share: float = 0.02,
    bad_share: float = 0.005,
    duplicate_share: float = 0.002,
) -> pd.DataFrame:
    """Make cases look like a real export: the input the ETL must survive.

    What is done, in this order (row sets are disjoint, drawn with ``seed``):

    1. Columns renamed to Chinese headers (:data:`EXPORT_HEADERS_ZH`); every value becomes
       text (timestamps ``YYYY-MM-DD HH:MM:SS``, flags 是/否, 初件/重件, Chinese status);
       street/district codes, which an export does not carry, are dropped.
    2. Coordinates converted from WGS-84 to ``crs`` (wgs84/gcj02/bd09), 6 decimals.
    3. ``swap_share`` of rows get 经度 and 纬度 exchanged.
    4. ``missing_coord_share`` of rows lose their coordinates: half keep only the 地址
       (问题属地代码 emptied), half keep only the 问题属地代码 (地址 emptied).
    5. ``bad_share`` of rows become unusable, in turn: an impossible 登记时间, an empty
       信访件编号, or garbage coordinates (text, 0/0, or far outside China).
    6. ``duplicate_share`` of the untouched rows are exported twice: exact copies appended
       at the end, as when an export's pages overlap.

    Parameters
    ----------
    cases
        A frame of :data:`CASE_COLUMNS` (e.g. from :func:`demo_cases`).
    crs
        Coordinate system of the exported 经度/纬度.
    seed
        Same inputs give an identical export.

    Returns
    -------
    pandas.DataFrame
        Chinese headers, all columns text. ``attrs["messy"]`` records what was done, as
        0-based row positions in the returned frame (CSV line = position + 2):
        ``crs``, ``swapped``, ``missing_coords_address``, ``missing_coords_code``,
        ``bad_date``, ``missing_id``, ``bad_coords``, ``duplicates`` (the appended copies)
        and ``rows_in``. The first ``rows_in`` rows are the input rows in input order.
    """
    _check_shares(swap_share, missing_coord_share, bad_share, duplicate_share)
    rng = np.random.default_rng([seed, len(cases), 0x3E55])
    text = _export_text(cases, crs=crs)
    picks = _pick_messy_rows(
        len(cases), rng=rng, shares=(swap_share, missing_coord_share, bad_share, duplicate_share)
    )
    _swap_coords(text, picks["swapped"])
    _drop_coords(text, picks["missing_coords_address"], picks["missing_coords_code"])
    _spoil_rows(text, picks["bad_date"], picks["missing_id"], picks["bad_coords"])
    out, positions = _with_duplicates(text, picks)
    out.attrs["messy"] = {"crs": crs, "rows_in": len(cases), **positions}
    return out


def build_demo(
    store: Store,
    *,
    n_cases: int = 200_000,
    seed: int = 7,
    as_of: date | None = None,
    events: bool = False,
) -> dict[str, Any]:
    """Build a complete demo store: the grid, the station network and a year of cases.

    A store without a grid gets the bundled Guangzhou grid (``geo.grid.init_store``); a
    store that already holds a grid keeps it, so a demo can run on any grid (tests use the
    tiny one). Stations and cases go through the ETL (``etl.ingest``), exactly as a user's
    files would, and are marked ``synthetic``. A store without cases gets the cases'
    history (:func:`demo_history`: an earlier export, then the incremental one, so updates
    and their lifecycle events are exercised); running it again with the same arguments
    loads the current export, which changes nothing (the ETL upserts by id). With
    ``events``, the early-warning story of :mod:`etl.demo_events` is added on top of the
    background cases (its cases arrive with the latest export: recent reports).

    Returns
    -------
    dict
        ``cases``, ``stations`` (rows generated), ``as_of`` (ISO date), ``seed``,
        ``station_run_id``, ``case_run_id`` (the last cases run), ``case_run_ids``,
        ``lifecycle_events`` (events the updates added), ``reconciliation`` (the last cases
        run's line), ``reconciliations`` (every cases run's), ``duration_s`` and ``events``
        (the manifest of injected early-warning events; empty without them),
        ``street_level_cases`` (the ids of :func:`street_addressed_cases`, with the events).
    """
    started = time.perf_counter()
    engine, settings = store.engine, store.settings
    as_of = as_of or date.today()
    _ensure_grid(engine)
    villages, streets, districts = _read_grid(engine)
    stations = demo_stations(villages, streets, districts, seed=seed)
    kwargs = {"n": n_cases, "seed": seed, "as_of": as_of, "streets": streets,
              "districts": districts, "settings": settings}
    if _holds_cases(engine):  # history already loaded: the current export changes nothing
        current = demo_cases(villages, **kwargs)
        exports = [("full", current)]
    elif n_cases > DEMO_BATCH:
        return _build_in_batches(store, stations, villages, kwargs, events=events,
                                 started=started)
    else:
        exports, current = _history_exports(villages, **kwargs)
    manifest: list[dict[str, Any]] = []
    if events:
        from etl.demo_events import inject_events

        combined, manifest = inject_events(current, villages, as_of=as_of, seed=seed)
        street_only = street_addressed_cases(current, streets, districts, as_of=as_of,
                                             seed=seed)
        label, last = exports[-1]
        exports[-1] = (label, pd.concat([last, combined.iloc[len(current):], street_only],
                                        ignore_index=True))
        street_level = list(street_only["case_id"])
    else:
        street_level = []
    station_report, case_reports = _ingest(store, stations, exports, seed=seed, as_of=as_of)
    case_report = case_reports[-1]
    return {
        "cases": n_cases,
        "stations": len(stations),
        "as_of": as_of.isoformat(),
        "seed": seed,
        "station_run_id": station_report.run_id,
        "case_run_id": case_report.run_id,
        "case_run_ids": [r.run_id for r in case_reports],
        "lifecycle_events": sum(r.events for r in case_reports),
        "reconciliation": case_report.reconciliation_line(),
        "reconciliations": [r.reconciliation_line() for r in case_reports],
        "duration_s": round(time.perf_counter() - started, 3),
        "events": manifest,
        "street_level_cases": street_level,
    }


DEMO_BATCH = 1_000_000
"""Cases drawn and loaded at a time: a batch's arrays and frames peak at about 4 GB."""


def _build_in_batches(store: Store, stations: pd.DataFrame, villages: gpd.GeoDataFrame,
                      kwargs: dict[str, Any], *, events: bool, started: float) -> dict[str, Any]:
    """A demo larger than :data:`DEMO_BATCH` (10,000,000 cases: a province), batch by batch.

    Drawing ten million cases at once would hold some 40 GB; instead each batch of a million
    is drawn with its own seed (``seed + batch``, so the same arguments give the same store),
    numbered after the previous batches (信访件编号 stay unique), and loaded through the ETL
    like a one-batch demo (its earlier and incremental exports) before the next is drawn.
    The early-warning story, if asked for, comes with the last batch. Not re-runnable on a
    store that holds cases (a one-batch demo is).
    """
    n, seed = kwargs["n"], kwargs["seed"]
    reports, manifest, station_report, street_level = [], [], None, []
    for batch, first in enumerate(range(0, n, DEMO_BATCH)):
        size = min(DEMO_BATCH, n - first)
        exports, current = _history_exports(villages, **{**kwargs, "n": size, "seed": seed + batch},
                                            id_offset=first)
        if events and first + size == n:
            from etl.demo_events import inject_events

            combined, manifest = inject_events(current, villages, as_of=kwargs["as_of"], seed=seed)
            street_only = street_addressed_cases(current, kwargs["streets"], kwargs["districts"],
                                                 as_of=kwargs["as_of"], seed=seed)
            street_level = list(street_only["case_id"])
            label, last = exports[-1]
            exports[-1] = (label, pd.concat([last, combined.iloc[len(current):], street_only],
                                            ignore_index=True))
        del current
        done, batch_reports = _ingest(store, stations if station_report is None else None,
                                      exports, seed=seed + batch, as_of=kwargs["as_of"])
        station_report = station_report or done
        reports.extend(batch_reports)
        del exports
        import gc

        gc.collect()
    return {
        "cases": n, "stations": len(stations), "as_of": kwargs["as_of"].isoformat(),
        "seed": seed, "station_run_id": station_report.run_id,
        "case_run_id": reports[-1].run_id, "case_run_ids": [r.run_id for r in reports],
        "lifecycle_events": sum(r.events for r in reports),
        "reconciliation": reports[-1].reconciliation_line(),
        "reconciliations": [r.reconciliation_line() for r in reports],
        "duration_s": round(time.perf_counter() - started, 3), "events": manifest,
        "street_level_cases": street_level,
    }


STREET_ONLY_STREETS = 3
STREET_ONLY_PER_STREET = 4


def street_addressed_cases(cases: pd.DataFrame, streets: pd.DataFrame, districts: pd.DataFrame,
                           *, as_of: date, seed: int) -> pd.DataFrame:
    """Recent cases whose only location is an address naming a street but no village.

    As a 12345 hotline clerk types them (广州市天河区石牌街道天河路12号): no coordinates, no
    division code. The ETL places them at street level (未识别村居) and the street view lists
    them under 待更正落格 for the office to put in their village. Copies of recent open demo
    cases (so every other field is realistic) in :data:`STREET_ONLY_STREETS` streets, with
    new ids ``XFDZ…``.
    """
    rng = np.random.default_rng([seed, as_of.toordinal(), 0xAD0])
    registered = pd.to_datetime(cases["registered_at"])
    recent = cases[(registered >= pd.Timestamp(as_of) - pd.Timedelta(days=40))
                   & cases["closed_at"].isna()]
    by_street = recent.groupby(recent["street_code"].astype(str)).size()
    chosen = list(by_street[by_street >= STREET_ONLY_PER_STREET].index)
    if not chosen or streets.empty:
        return cases.iloc[0:0].copy()
    chosen = [chosen[i] for i in rng.choice(len(chosen), size=min(STREET_ONLY_STREETS,
                                                                   len(chosen)), replace=False)]
    street_names = streets.set_index("code")["name"].astype(str)
    district_names = districts.set_index("code")["name"].astype(str)
    rows = []
    for street in sorted(chosen):
        picks = recent[recent["street_code"].astype(str) == street].head(STREET_ONLY_PER_STREET)
        for _, row in picks.iterrows():
            out = row.copy()
            k = len(rows) + 1
            out["case_id"] = f"XFDZ{pd.Timestamp(row['registered_at']):%Y%m%d}{k:06d}"
            district = district_names.get(street[:6] + "000000", "")
            out["address"] = (f"广州市{district}{street_names.get(street, '')}"
                              f"{_ROADS[int(rng.integers(len(_ROADS)))]}"
                              f"{int(rng.integers(1, 300))}号")
            for column in ("lon", "lat"):
                out[column] = np.nan
            for column in ("village_code", "street_code", "district_code"):
                out[column] = None
            out["is_repeat"], out["repeat_of"] = False, None
            rows.append(out)
    return pd.DataFrame(rows, columns=cases.columns).reset_index(drop=True)


# ----------------------------------------------------------------------------- history


class _History:
    """Every case's whole drawn life (times in seconds relative to the end of ``as_of``),
    from which the export at any moment is cut (:meth:`cut`).

    The drawing is a pipeline of steps over one dict of aligned numpy arrays; a new effect
    (e.g. injected early-warning events) is one more step in :meth:`draw`.
    """

    def __init__(self, draw: dict[str, Any], units: _Units, cutoff: np.datetime64,
                 settings: Settings) -> None:
        self.draw_ = draw
        self.units = units
        self.cutoff = cutoff
        self.settings = settings

    @classmethod
    def draw(cls, villages: gpd.GeoDataFrame, *, n: int, seed: int, as_of: date | None,
             streets: pd.DataFrame | None, districts: pd.DataFrame | None,
             settings: Settings | None) -> _History:
        settings = settings or Settings()
        as_of = as_of or date.today()
        units = _village_table(villages, streets=streets, districts=districts)
        rng = np.random.default_rng([seed, as_of.toordinal(), n, 0xCA5E])
        cutoff = np.datetime64(as_of, "s") + np.timedelta64(1, "D")
        draw = _draw_cases(units, n=n, rng=rng)
        _draw_lifecycle(draw, units, rng=rng, settings=settings)
        _draw_backlog(draw, units, rng=rng, settings=settings)
        _link_repeats(draw, units, rng=rng)
        _draw_ratings(draw, units, rng=rng, settings=settings)
        _draw_reviews(draw, rng=rng)
        _draw_points(draw, units, rng=rng)
        _draw_people(draw, units, rng=rng)
        _draw_headcount(draw, rng=rng)
        return cls(draw, units, cutoff, settings)

    def cut(self, *, end_days: float) -> tuple[dict[str, Any], pd.DataFrame]:
        """The state at ``end_days`` (≤ 0) relative to the end of ``as_of``, and its export."""
        state = _cut(self.draw_, end=end_days * _DAY, settings=self.settings)
        frame = _case_frame(state, self.units, cutoff=self.cutoff)
        known = state["known"]
        return state, frame if known.all() else frame[known].reset_index(drop=True)

    def export(self, *, end_days: float) -> pd.DataFrame:
        """The export at ``end_days`` relative to the end of ``as_of``."""
        return self.cut(end_days=end_days)[1]


_CUT_TIMES = ("transferred", "accepted", "extended_at", "due", "replied", "closed", "followed",
              "rated_at", "reviewed", "rechecked", "backlog_at")


def _moved(earlier: dict[str, Any], final: dict[str, Any]) -> np.ndarray:
    """Cases (rows of the final export) new since the earlier cut or changed in between."""
    known_before = earlier["known"][final["known"]]
    changed = np.zeros(int(final["known"].sum()), dtype=bool)
    keep = final["known"]
    for key in (*_CUT_TIMES, "rating_state", "status", "rating", "leader"):
        a, b = earlier[key][keep], final[key][keep]
        same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
        changed |= ~same
    for key in ("extended", "is_backlog"):
        changed |= earlier[key][keep] != final[key][keep]
    return ~known_before | changed


# ----------------------------------------------------------------------------- the units


class _Units:
    """The village table as aligned numpy arrays (sorted by code), plus parent lookups."""

    def __init__(self, frame: gpd.GeoDataFrame) -> None:
        self.code = frame["code"].to_numpy(dtype=object)
        self.street = frame["parent_code"].to_numpy(dtype=object)
        self.district = np.array([c[:6] + "000000" for c in self.code], dtype=object)
        self.population = frame["population"].to_numpy(dtype=float)
        self.urban = frame["urban"].to_numpy(dtype=bool)
        self.name = frame["short_name"].to_numpy(dtype=object)
        self.street_name = frame["street_name"].to_numpy(dtype=object)
        self.district_name = frame["district_name"].to_numpy(dtype=object)
        self.geometry = np.asarray(frame.geometry.values, dtype=object)
        self.street_codes, self.street_idx = np.unique(self.street.astype(str),
                                                       return_inverse=True)
        self.district_codes, self.district_idx = np.unique(self.district.astype(str),
                                                           return_inverse=True)
        self.prefix = np.array(
            ["广州市" + d + s + v for d, s, v in
             zip(self.district_name, self.street_name, self.name, strict=True)],
            dtype=object,
        )

    def __len__(self) -> int:
        return len(self.code)


def _village_table(
    villages: gpd.GeoDataFrame,
    *,
    streets: pd.DataFrame | None,
    districts: pd.DataFrame | None,
) -> _Units:
    _check_villages(villages)
    frame = pd.DataFrame({
        "code": villages["code"].astype(str).to_numpy(),
        "parent_code": villages["parent_code"].astype(str).to_numpy(),
        "population": pd.to_numeric(villages["population"], errors="coerce").to_numpy(float)
        if "population" in villages else np.nan,
        "kind": villages["kind"].astype(str).to_numpy() if "kind" in villages else None,
        "name": villages["name"].astype(str).to_numpy() if "name" in villages
        else villages["code"].astype(str).to_numpy(),
    })
    frame["geometry"] = np.asarray(villages.geometry.values, dtype=object)
    frame = frame.sort_values("code", kind="stable").reset_index(drop=True)
    frame["urban"] = _urban_flags(frame)
    frame["population"] = _filled_population(frame["population"].to_numpy(dtype=float))
    frame["street_name"] = _parent_names(villages, frame, "street_name", streets,
                                         frame["parent_code"])
    frame["district_name"] = _parent_names(villages, frame, "district_name", districts,
                                           frame["code"].str[:6] + "000000")
    frame["short_name"] = [
        _short_village_name(v, s) for v, s in
        zip(frame["name"], frame["street_name"], strict=True)
    ]
    return _Units(gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326"))


def _check_villages(villages: gpd.GeoDataFrame) -> None:
    missing = {"code", "parent_code", "geometry"} - set(villages.columns)
    if missing:
        raise GridgovError(
            f"村居单元缺少列 {sorted(missing)} / village units lack columns {sorted(missing)}"
        )
    if len(villages) == 0:
        raise GridgovError("没有村居单元，无法生成演示数据 / no village units to put demo data in")
    crs = getattr(villages, "crs", None)
    if crs is not None and crs.to_epsg() != 4326:
        raise GridgovError(
            f"村居单元须为 WGS-84 (EPSG:4326)，实为 {crs} / village units must be WGS-84, got {crs}"
        )


def _urban_flags(frame: pd.DataFrame) -> np.ndarray:
    kinds = frame["kind"]
    if kinds.isna().all() or (kinds.astype(str) == "None").all():
        return np.array([is_urban(c) for c in frame["code"]], dtype=bool)
    return kinds.astype(str).isin(["居委会", "类居委会"]).to_numpy()


def _filled_population(population: np.ndarray) -> np.ndarray:
    good = np.isfinite(population) & (population > 0)
    fill = float(np.median(population[good])) if good.any() else 1000.0
    return np.where(good, population, fill)


def _parent_names(
    villages: pd.DataFrame,
    frame: pd.DataFrame,
    column: str,
    parents: pd.DataFrame | None,
    parent_codes: pd.Series,
) -> list[str]:
    if column in villages:
        by_code = dict(zip(villages["code"].astype(str), villages[column].astype(str),
                           strict=True))
        return [by_code[c] for c in frame["code"]]
    if parents is not None and len(parents):
        names = dict(zip(parents["code"].astype(str), parents["name"].astype(str), strict=True))
        return [names.get(c, "") for c in parent_codes]
    return [""] * len(frame)


def _short_village_name(name: str, street_name: str) -> str:
    """How addresses name a village: 翠洲社区居民委员会 → 翠洲社区, 狮岭居委会 → 狮岭社区,
    沙南村民委员会 → 沙南村, 石井村村民委员会 → 石井村 (a repeated street name dropped)."""
    for suffix, kind in (("社区居民委员会", "社区"), ("社区居委会", "社区"), ("居民委员会", "社区"),
                         ("居委会", "社区"), ("村民委员会", "村"), ("村委会", "村"),
                         ("委员会", "")):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            if kind and not name.endswith(kind):
                name += kind
            break
    if street_name and name.startswith(street_name) and len(name) > len(street_name):
        name = name[len(street_name):]
    return name


def _street_quality(units: _Units, rng: np.random.Generator) -> np.ndarray:
    """A quality factor per street in [0, 1] (1 = model street), broadcast to villages."""
    quality = rng.beta(2.2, 1.3, size=len(units.street_codes))
    return quality[units.street_idx]


def _hotspots(units: _Units, rng: np.random.Generator) -> np.ndarray:
    """Rate multiplier per village: a few hotspots (0.5 %, at least one) get 5–10×."""
    factor = np.ones(len(units))
    k = max(1, round(_HOTSPOT_SHARE * len(units)))
    chosen = rng.choice(len(units), size=min(k, len(units)), replace=False)
    factor[chosen] = rng.uniform(5.0, 10.0, size=len(chosen))
    return factor


# ----------------------------------------------------------------------------- cases


def _draw_cases(units: _Units, *, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """Village, registration time and classification of every case (chronological order)."""
    if n < 0:
        raise GridgovError(f"案件数不能为负：{n} / the number of cases cannot be negative: {n}")
    quality = _street_quality(units, rng)
    hot = _hotspots(units, rng)
    quality = np.where(hot > 1, quality * 0.6, quality)
    per_capita = np.where(units.urban, 1.6, 0.9) * rng.lognormal(0.0, 0.35, size=len(units))
    weight = units.population * per_capita * hot
    village = rng.choice(len(units), size=n, p=weight / weight.sum())
    registered = rng.uniform(-_WINDOW_DAYS * _DAY, 0.0, size=n)
    channel = _categorical(rng, n, np.array(list(CHANNELS.values())))
    registered = _office_hours(registered, channel, rng)
    order = np.argsort(registered, kind="stable")
    registered, village, channel = registered[order], village[order], channel[order]
    q = quality[village]
    urban = units.urban[village]
    category = _draw_category(rng, urban)
    draw: dict[str, Any] = {
        "n": n,
        "village": village,
        "quality": q,
        "hot": hot[village] > 1,
        "registered": registered,
        "channel": channel,
        "category": category,
        "purpose": _draw_purpose(rng, category),
        "level": _draw_level(rng, q, channel),
        "is_repeat": np.zeros(n, dtype=bool),
        "repeat_of": np.full(n, -1, dtype=np.int64),
        "is_backlog": np.zeros(n, dtype=bool),
    }
    draw["subtopic"] = _draw_subtopic(rng, category)
    return draw


def _office_hours(registered: np.ndarray, channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Put visits, letters, calls and grid reports in office hours; online any time 7–23 h."""
    day = np.floor(registered / _DAY) * _DAY
    online = np.isin(channel, [_channel_index("网上"), _channel_index("二维码")])
    start = np.where(online, 7.0, 8.5) * 3600.0
    span = np.where(online, 16.0, 9.0) * 3600.0
    return np.floor(day + start + rng.random(len(registered)) * span)


def _channel_index(name: str) -> int:
    return list(CHANNELS).index(name)


def _categorical(rng: np.random.Generator, n: int, shares: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(shares / shares.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(shares) - 1)


def _draw_category(rng: np.random.Generator, urban: np.ndarray) -> np.ndarray:
    urban_shares = np.array([v[0] for v in CATEGORIES.values()])
    rural_shares = np.array([v[1] for v in CATEGORIES.values()])
    n = len(urban)
    return np.where(urban, _categorical(rng, n, urban_shares), _categorical(rng, n, rural_shares))


def _draw_purpose(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    purpose = _categorical(rng, len(category), np.array(list(PURPOSES.values())))
    accusation = category == list(CATEGORIES).index("纪检监察")
    flip = accusation & (rng.random(len(category)) < 0.7)
    return np.where(flip, list(PURPOSES).index("揭发控告"), purpose)


def _draw_subtopic(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    """Index into the flat list of all second-level topics, within each case's class."""
    counts = np.array([len(v[2]) for v in CATEGORIES.values()])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pick = np.floor(rng.random(len(category)) * counts[category]).astype(np.int64)
    return offsets[category] + pick


def _draw_level(rng: np.random.Generator, quality: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """登记机构级别: mostly local; weaker streets see more cases escalate to 市/省/国家."""
    level = _categorical(rng, len(quality), _LEVEL_SHARES)
    escalate = (level >= _LOCAL_LEVELS) & (rng.random(len(quality)) < 0.12 * (1.0 - quality))
    upper = _categorical(rng, len(quality), np.array([0.05, 0.25, 0.70]))
    level = np.where(escalate, upper, level)
    grid_report = channel == _channel_index("网格员上报")
    level = np.where(grid_report, 5, level)
    qr = (channel == _channel_index("二维码")) & (level < 4)
    return np.where(qr, 5 - (rng.random(len(quality)) < 0.4).astype(np.int64), level)


def _draw_lifecycle(
    draw: dict[str, Any], units: _Units, *, rng: np.random.Generator, settings: Settings
) -> None:
    """Transfer, acceptance, due date, reply and closure, mostly within the deadlines.

    Times are seconds relative to the end of ``as_of`` (negative = in the past), NaN for a
    step that never happens; :func:`_cut` later removes the steps after the export's moment.
    """
    n, q = draw["n"], draw["quality"]
    base = settings.default_deadline_days * _DAY
    accept_limit = settings.acceptance_days * _DAY
    late_accept = rng.random(n) < 0.005 + 0.03 * (1.0 - q)
    local = draw["level"] == 5
    transfer = np.where(local, rng.exponential(0.3 * _DAY, n), rng.exponential(1.5 * _DAY, n))
    transfer = np.minimum(transfer, 10 * _DAY)
    accept = np.minimum(rng.exponential(2.0 * _DAY, n), accept_limit - transfer - 3600.0)
    accept = np.maximum(accept, 0.0)
    late_transfer = rng.uniform(6 * _DAY, 12 * _DAY, n)
    late_gap = rng.uniform(accept_limit - late_transfer + 3600.0, accept_limit - 60.0)
    transfer = np.where(late_accept, late_transfer, transfer)
    accept = np.where(late_accept, late_gap, accept)
    transferred = np.floor(draw["registered"] + transfer)
    accepted = np.floor(transferred + accept)

    not_accepted = rng.random(n) < _NOT_ACCEPTED_SHARE * np.where(draw["purpose"] == 1, 3, 1)
    extended = (rng.random(n) < _EXTENDED_SHARE) & ~not_accepted
    base = settings.default_deadline_days * _DAY
    limit = np.where(extended, base + settings.extension_days * _DAY, base)
    late = rng.random(n) < (0.002 + 0.045 * (1.0 - q) + 0.02 * draw["hot"])
    handling = np.minimum(rng.gamma(2.0, 9.0 * _DAY, n), base - 0.5 * _DAY)
    handling = np.maximum(handling, 0.1 * _DAY)
    extended_span = settings.extension_days * _DAY - 0.5 * _DAY
    handling = np.where(extended, base + rng.random(n) * extended_span, handling)
    handling = np.where(late, limit + 3600.0 + np.minimum(rng.exponential(12 * _DAY, n),
                                                          60 * _DAY), handling)
    closed = np.floor(accepted + handling)
    replied = np.floor(closed - np.minimum(rng.uniform(0.0, 2 * _DAY, n), 0.5 * handling))

    for arr in (closed, replied):  # 不予受理: the decision is in accepted_at, nothing after
        arr[not_accepted] = np.nan
    # a few cases nobody ever accepted: still 登记 past the 15-day limit (if old enough)
    stuck = (rng.random(n) < _STUCK_SHARE) & ~not_accepted
    for arr in (accepted, closed, replied):
        arr[stuck] = np.nan
    # an extension (延期) is approved before the 60 days run out
    extended_at = np.where(extended, np.floor(accepted + rng.uniform(40 * _DAY, base - _DAY, n)),
                           np.nan)
    draw.update(
        transferred=transferred, accepted=accepted, replied=replied, closed=closed,
        extended=extended, extended_at=extended_at, due=accepted + limit,
        not_accepted=not_accepted,
    )


def _draw_backlog(
    draw: dict[str, Any], units: _Units, *, rng: np.random.Generator, settings: Settings
) -> None:
    """积案: old, extended cases with a 包案领导; some cleared (closed late), the rest open."""
    n = draw["n"]
    draw["backlog_at"] = np.full(n, np.nan)
    old = (draw["registered"] < -200 * _DAY) & ~draw["not_accepted"] & ~np.isnan(draw["accepted"])
    candidates = np.flatnonzero(old)
    k = min(len(candidates), round(_BACKLOG_SHARE * n))
    if k == 0:
        draw["leader"] = np.full(n, -1, dtype=np.int64)
        return
    chosen = np.sort(rng.choice(candidates, size=k, replace=False))
    draw["is_backlog"][chosen] = True
    draw["extended"][chosen] = True
    accepted = draw["accepted"][chosen]
    due = accepted + (settings.default_deadline_days + settings.extension_days) * _DAY
    draw["due"][chosen] = due
    cleared = rng.random(k) < 0.3 + 0.45 * draw["quality"][chosen]
    room = np.maximum(-due - 2 * _DAY, 3 * _DAY)
    closed = np.floor(due + 3600.0 + rng.random(k) * room)
    closed = np.minimum(closed, -3600.0)
    replied = np.floor(closed - rng.uniform(0.0, _DAY, k))
    draw["closed"][chosen] = np.where(cleared, closed, np.nan)
    draw["replied"][chosen] = np.where(cleared, replied, np.nan)
    draw["extended_at"][chosen] = np.floor(accepted + rng.uniform(40 * _DAY, 59 * _DAY, k))
    # listed as 积案 some weeks after it ran over (before it was cleared, if it was)
    flagged = due + rng.uniform(5 * _DAY, 45 * _DAY, k)
    flagged = np.where(cleared, np.minimum(flagged, (due + replied) / 2), flagged)
    draw["backlog_at"][chosen] = np.floor(np.minimum(flagged, -3600.0))
    leaders_per_district = len(_LEADER_TITLES)
    leader = np.full(n, -1, dtype=np.int64)
    district = units.district_idx[draw["village"][chosen]]
    led = rng.random(k) < _BACKLOG_LEADER_SHARE
    leader[chosen] = np.where(led, district * leaders_per_district
                              + rng.integers(0, leaders_per_district, k), -1)
    draw["leader"] = leader


def _link_repeats(draw: dict[str, Any], units: _Units, *, rng: np.random.Generator) -> None:
    """重件: some cases repeat an earlier first-time case (初件) of the same village.

    The repeat takes over the earlier case's petitioner, place, class and purpose (set in
    :func:`_draw_points` / :func:`_draw_people` through ``repeat_of``); the earlier case is
    then more often rated 不满意, which is what drives people to petition again.
    """
    n = draw["n"]
    if n == 0:
        return
    wants = (rng.random(n) < 0.015 + 0.05 * (1.0 - draw["quality"])) & np.isnan(draw["backlog_at"])
    order = np.lexsort((np.arange(n), draw["village"]))  # by village, then time
    village_sorted = draw["village"][order]
    wants_sorted = wants[order]
    group_start = np.searchsorted(village_sorted, village_sorted, side="left")
    first_pos = np.flatnonzero(~wants_sorted)  # positions (in sorted order) of 初件
    before_group = np.searchsorted(first_pos, group_start, side="left")
    before_me = np.searchsorted(first_pos, np.arange(n), side="left")
    available = before_me - before_group
    is_repeat_sorted = wants_sorted & (available > 0)
    rows = np.flatnonzero(is_repeat_sorted)
    # bias towards recent cases: petitioners come back within weeks or months
    back = np.floor(available[rows] * rng.random(len(rows)) ** 3).astype(np.int64)
    origin_sorted = first_pos[before_me[rows] - 1 - back]
    repeat = order[rows]
    origin = order[origin_sorted]
    draw["is_repeat"][repeat] = True
    draw["repeat_of"][repeat] = origin
    for key in ("category", "purpose", "subtopic"):
        draw[key][repeat] = draw[key][origin]
    draw["repeat_origin"] = origin


def _draw_ratings(
    draw: dict[str, Any], units: _Units, *, rng: np.random.Generator, settings: Settings
) -> None:
    """Follow-up (回访) and rating (满意度): participation and satisfaction by street quality."""
    n, q = draw["n"], draw["quality"]
    replied = draw["replied"]
    window = settings.rating_window_days * _DAY
    participates = rng.random(n) < 0.78 + 0.18 * q
    rated_at = np.floor(replied + np.minimum(rng.exponential(4 * _DAY, n), window - 3600.0))
    rated_at = np.where(participates, rated_at, np.nan)
    late = draw["closed"] > draw["due"]
    p_unhappy = (0.015 + 0.09 * (1.0 - q)) * np.where(late, 3.0, 1.0)
    origin = draw.get("repeat_origin", np.zeros(0, dtype=np.int64))
    p_unhappy[origin] = np.maximum(p_unhappy[origin], 0.6)
    u = rng.random(n)
    rating = np.where(u < p_unhappy, 2, np.where(rng.random(n) < 0.72, 0, 1))
    followed = np.where(rng.random(n) < 0.85,
                        np.floor(draw["closed"] + rng.uniform(3600.0, 10 * _DAY, n)), np.nan)
    draw.update(rated_at=rated_at, rating=rating, followed=followed)


def _draw_reviews(draw: dict[str, Any], *, rng: np.random.Generator) -> None:
    """复查 after some 不满意 ratings, 复核 after some 复查 (30 days to ask + 30 to answer)."""
    n = draw["n"]
    unhappy = (draw["rating"] == RATINGS.index("不满意")) & ~np.isnan(draw["rated_at"])
    asks = unhappy & (rng.random(n) < _REVIEW_SHARE)
    reviewed = np.where(asks, np.floor(draw["rated_at"] + rng.uniform(8 * _DAY, 58 * _DAY, n)),
                        np.nan)
    again = asks & (rng.random(n) < _RECHECK_SHARE)
    rechecked = np.where(again, np.floor(reviewed + rng.uniform(8 * _DAY, 58 * _DAY, n)),
                         np.nan)
    draw.update(reviewed=reviewed, rechecked=rechecked)


def _draw_headcount(draw: dict[str, Any], *, rng: np.random.Generator) -> None:
    """涉及人数: mostly one person, some 2–4, a few groups of 5 or more (集体访, more often
    in person); a repeat keeps its origin's count."""
    n = draw["n"]
    visit = draw["channel"] == _channel_index("来访")
    shares = np.where(visit[:, None], _HEADCOUNT_SHARES * [0.8, 1.5, 1.5, 1.5, 3.0],
                      _HEADCOUNT_SHARES)
    cdf = np.cumsum(shares / shares.sum(axis=1, keepdims=True), axis=1)
    bucket = (rng.random(n)[:, None] > cdf).sum(axis=1)
    count = np.where(bucket < 4, bucket + 1, 5 + np.floor(rng.exponential(6.0, n)))
    repeat = np.flatnonzero(draw["is_repeat"])
    count[repeat] = count[draw["repeat_of"][repeat]]
    draw["headcount"] = np.minimum(count, 200).astype(np.int64)


def _cut(draw: dict[str, Any], *, end: float, settings: Settings) -> dict[str, Any]:
    """The state at ``end`` (seconds, ≤ 0): steps after it removed, and all steps after a
    missing one; status and rating state as they stood. Returns a new dict (``draw`` is
    left as drawn); ``known`` marks the cases registered by then."""
    state = dict(draw)
    for key in _CUT_TIMES:
        state[key] = draw[key].copy()
    state["known"] = draw["registered"] < end
    alive = state["known"].copy()
    for step in ("transferred", "accepted", "replied", "closed"):
        t = state[step]
        alive = alive & (t < end)
        t[~alive] = np.nan
    accepted = ~np.isnan(state["accepted"])
    ext = state["extended_at"]
    ext[~accepted | ~(ext < end)] = np.nan
    state["extended"] = draw["extended"] & ~np.isnan(ext)
    base = settings.default_deadline_days * _DAY
    limit = np.where(state["extended"], base + settings.extension_days * _DAY, base)
    state["due"] = np.where(accepted & ~draw["not_accepted"], state["accepted"] + limit, np.nan)
    for key, after in (("followed", "closed"), ("rated_at", "replied"),
                       ("reviewed", "rated_at"), ("rechecked", "reviewed")):
        t = state[key]
        t[np.isnan(state[after]) | ~(t < end)] = np.nan
    flagged = state["backlog_at"]
    flagged[~state["known"] | ~(flagged < end)] = np.nan
    state["is_backlog"] = ~np.isnan(flagged)
    state["leader"] = np.where(state["is_backlog"], draw["leader"], -1)
    rated = ~np.isnan(state["rated_at"])
    window = settings.rating_window_days * _DAY
    expired = ~rated & (state["replied"] + window < end)
    state["rating_state"] = np.where(rated, 1, np.where(expired, 2, 0))
    state["rating"] = np.where(rated, draw["rating"], -1)
    state["status"] = np.select(
        [~np.isnan(state["closed"]), ~np.isnan(state["replied"]),
         accepted & draw["not_accepted"], accepted],
        [3, 2, 4, 1],
        default=0,
    )
    return state


# ----------------------------------------------------------------------------- points, people


def _draw_points(draw: dict[str, Any], units: _Units, *, rng: np.random.Generator) -> None:
    """A random point inside each case's village; repeats reuse their origin's point."""
    lon, lat = _points_in_polygons(units, draw["village"], rng=rng)
    number = rng.integers(1, 400, size=draw["n"])
    road = rng.integers(0, len(_ROADS), size=draw["n"])
    repeat = np.flatnonzero(draw["is_repeat"])
    origin = draw["repeat_of"][repeat]
    for arr in (lon, lat, number, road):
        arr[repeat] = arr[origin]
    draw.update(lon=lon, lat=lat, number=number, road=road)


def _points_in_polygons(
    units: _Units,
    which: np.ndarray,
    *,
    rng: np.random.Generator,
    max_rounds: int = 60,
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random points inside ``units.geometry[which]``: sample the bbox, keep, retry."""
    geoms = units.geometry
    shapely.prepare(geoms)
    bounds = shapely.bounds(geoms)
    n = len(which)
    lon, lat = np.empty(n), np.empty(n)
    todo = np.arange(n)
    for _ in range(max_rounds):
        if len(todo) == 0:
            break
        b = bounds[which[todo]]
        x = b[:, 0] + rng.random(len(todo)) * (b[:, 2] - b[:, 0])
        y = b[:, 1] + rng.random(len(todo)) * (b[:, 3] - b[:, 1])
        inside = shapely.contains_xy(geoms[which[todo]], x, y)
        lon[todo[inside]], lat[todo[inside]] = x[inside], y[inside]
        todo = todo[~inside]
    if len(todo):  # slivers: fall back to a point certainly inside
        points = shapely.point_on_surface(geoms[which[todo]])
        lon[todo], lat[todo] = shapely.get_x(points), shapely.get_y(points)
    return lon, lat


def _draw_people(draw: dict[str, Any], units: _Units, *, rng: np.random.Generator) -> None:
    """Invented petitioners: name, 154-segment phone, ID number with a wrong check digit."""
    n = draw["n"]
    surname_weight = 1.0 / (np.arange(len(_SURNAMES)) + 4.0)
    people = {
        "surname": _categorical(rng, n, surname_weight),
        "given1": rng.integers(0, len(_GIVEN), n),
        "given2": np.where(rng.random(n) < 0.7, rng.integers(0, len(_GIVEN), n), -1),
        "phone": 15_400_000_000 + rng.integers(0, 100_000_000, n),
        "id17": _id_first17(draw, units, rng),
        "id_wrong": rng.integers(1, 11, n),
    }
    repeat = np.flatnonzero(draw["is_repeat"])
    origin = draw["repeat_of"][repeat]
    for arr in people.values():
        arr[repeat] = arr[origin]
    draw["people"] = people


def _id_first17(draw: dict[str, Any], units: _Units, rng: np.random.Generator) -> np.ndarray:
    """First 17 digits of an 18-digit ID: area code, birth date, sequence."""
    n = draw["n"]
    local_area = np.array([int(c[:6]) for c in units.district_codes])[
        units.district_idx[draw["village"]]
    ]
    other = np.array(_OTHER_PROVINCE_AREAS)[rng.integers(0, len(_OTHER_PROVINCE_AREAS), n)]
    area = np.where(rng.random(n) < 0.7, local_area, other).astype(np.int64)
    first = np.datetime64("1945-01-01")
    birth = first + rng.integers(0, (np.datetime64("2006-01-01") - first).astype(int), n)
    ymd = _yyyymmdd(birth.astype("datetime64[s]"))
    sequence = rng.integers(0, 1000, n)
    return area * 10**11 + ymd * 1000 + sequence


def _id_numbers(id17: np.ndarray, wrong: np.ndarray) -> pa.Array:
    """Append a check digit that is *not* the ISO 7064 MOD 11-2 one (so no real person)."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = np.zeros(len(id17), dtype=np.int64)
    for power, weight in zip(range(16, -1, -1), weights, strict=True):
        total += (id17 // 10**power % 10) * weight
    check = _take(list("10X98765432"), (total % 11 + wrong) % 11)
    return _join(pa.array(id17).cast(pa.string()), check)


def _yyyymmdd(t: np.ndarray) -> np.ndarray:
    days = t.astype("datetime64[D]")
    year = days.astype("datetime64[Y]")
    month = days.astype("datetime64[M]")
    y = year.astype(np.int64) + 1970
    m = (month - year).astype(np.int64) + 1
    d = (days - month).astype(np.int64) + 1
    return y * 10_000 + m * 100 + d


# ----------------------------------------------------------------------------- the frame
# Text columns are built as Arrow arrays (take + element-wise join): a hundred times
# faster than Python strings for millions of rows, and what pandas' str dtype stores anyway.


def _case_frame(draw: dict[str, Any], units: _Units, *, cutoff: np.datetime64) -> pd.DataFrame:
    n = draw["n"]
    village = draw["village"]
    ids = _case_ids(_timestamps(draw["registered"], cutoff), offset=draw.get("id_offset", 0))
    out: dict[str, Any] = {"case_id": ids}
    for column, key in (("registered_at", "registered"), ("transferred_at", "transferred"),
                        ("accepted_at", "accepted"), ("due_at", "due"),
                        ("extended_at", "extended_at"), ("replied_at", "replied"),
                        ("closed_at", "closed"), ("followed_up_at", "followed"),
                        ("rated_at", "rated_at"), ("reviewed_at", "reviewed"),
                        ("rechecked_at", "rechecked"), ("backlog_at", "backlog_at")):
        out[column] = _timestamps(draw[key], cutoff)
    out["extended"] = draw["extended"] & ~np.isnan(draw["due"])
    out["people_count"] = draw["headcount"]
    out["rating"] = _take([*RATINGS, None], draw["rating"])
    out["rating_state"] = _take(["待评价", "已评价", "超期未评价"], draw["rating_state"])
    out["status"] = _take(list(STATUS_ZH), draw["status"])
    out["category"] = _take(list(CATEGORIES), draw["category"])
    out["purpose"] = _take(list(PURPOSES), draw["purpose"])
    out["channel"] = _take(list(CHANNELS), draw["channel"])
    out["is_repeat"] = draw["is_repeat"]
    out["repeat_of"] = ids.take(pa.array(draw["repeat_of"], mask=~draw["is_repeat"]))
    out["is_backlog"] = draw["is_backlog"]
    out["backlog_leader"] = _leaders(draw["leader"], units)
    out["registered_level"] = _take(list(REGISTERED_LEVELS), draw["level"])
    out["handling_unit"] = _handling_units(draw, units)
    out["lon"], out["lat"] = draw["lon"], draw["lat"]
    out["address"] = _addresses(draw, units)
    out["village_code"] = _take(units.code, village)
    out["street_code"] = _take(units.street, village)
    out["district_code"] = _take(units.district, village)
    out.update(_people_columns(draw["people"]))
    topics = [f"反映{t}问题" for v in CATEGORIES.values() for t in v[2]]
    out["description"] = _take(topics, draw["subtopic"])
    out["synthetic"] = np.ones(n, dtype=bool)
    columns = {
        k: pd.Series(out.pop(k), dtype="str") if isinstance(out[k], pa.Array)
        else pd.Series(out.pop(k))
        for k in CASE_COLUMNS
    }
    return pd.DataFrame(columns, copy=False)


def _timestamps(seconds: np.ndarray, cutoff: np.datetime64) -> np.ndarray:
    """Seconds relative to the cutoff → naive datetime64[us] (NaN → NaT)."""
    out = np.full(len(seconds), np.datetime64("NaT"), dtype="datetime64[s]")
    ok = ~np.isnan(seconds)
    out[ok] = cutoff + seconds[ok].astype(np.int64).astype("timedelta64[s]")
    return out.astype("datetime64[us]")


def _case_ids(registered: np.ndarray, *, offset: int = 0) -> pa.Array:
    """信访件编号 like XF2025031400012345: date of registration + running number."""
    ymd = _yyyymmdd(registered)
    seq = np.arange(offset + 1, offset + len(registered) + 1, dtype=np.int64)
    return _join(_repeat("XF", len(seq)), pa.array(ymd * 10**8 + seq).cast(pa.string()))


def _take(values: Sequence[str | None] | np.ndarray, index: np.ndarray) -> pa.Array:
    """values[index] as an Arrow string array (None stays missing; -1 is the last value)."""
    values = list(values)
    index = np.asarray(index)
    index = np.where(index < 0, index + len(values), index)
    return pa.array(values, type=pa.string()).take(pa.array(index))


def _join(*parts: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _repeat(text: str, n: int) -> pa.Array:
    return pa.array([text], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int64)))


def _int_text(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def _leaders(leader: np.ndarray, units: _Units) -> pa.Array:
    """包案领导: four invented district leaders per district (fixed for a grid)."""
    pool = []
    names = np.random.default_rng([len(units.district_codes), 0x1EAD])
    for _district in units.district_codes:
        for title in _LEADER_TITLES:
            surname = _SURNAMES[names.integers(0, 40)]
            given = "".join(_GIVEN[i] for i in names.integers(0, len(_GIVEN), 2))
            pool.append(f"{surname}{given}（{title}）")
    return _take([*pool, None], np.where(leader >= 0, leader, len(pool)))


def _handling_units(draw: dict[str, Any], units: _Units) -> pa.Array:
    """承办单位: the street office for local cases, the district department otherwise."""
    offices = [
        s + ("人民政府" if s.endswith(("镇", "乡")) else "办事处") if s else "镇街办事处"
        for s in units.street_name
    ]
    departments = list(_DEPARTMENTS.values())
    names = offices + [d + dept for d in units.district_name for dept in departments]
    village = draw["village"]
    dept_index = len(offices) + village * len(departments) + draw["category"]
    return _take(names, np.where(draw["level"] >= 4, village, dept_index))


def _addresses(draw: dict[str, Any], units: _Units) -> pa.Array:
    """广州市X区Y街道Z社区某路N号 (rural: Z村N巷M号)."""
    village = draw["village"]
    roads = list(_ROADS) + [f"{k + 1}巷" for k in range(len(_ROADS))]
    road = np.where(units.urban[village], draw["road"], draw["road"] + len(_ROADS))
    return _join(_take(units.prefix, village), _take(roads, road), _int_text(draw["number"]),
                 _repeat("号", len(village)))


def _people_columns(people: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    given = list(_GIVEN)
    name = _join(_take(list(_SURNAMES), people["surname"]), _take(given, people["given1"]),
                 _take([*given, ""], people["given2"]))
    return {
        "petitioner_name": name,
        "petitioner_phone": _int_text(people["phone"]),
        "petitioner_id": _id_numbers(people["id17"], people["id_wrong"]),
    }


# ----------------------------------------------------------------------------- stations


def _station_frame(
    ids: Sequence[str], names: Sequence[str], kind: str, lon: np.ndarray, lat: np.ndarray,
    serves: Sequence[str], addresses: Sequence[str],
) -> pd.DataFrame:
    return pd.DataFrame({
        "station_id": list(ids), "name": list(names), "station_type": kind,
        "lon": np.asarray(lon, dtype=float), "lat": np.asarray(lat, dtype=float),
        "serves_code": list(serves), "address": list(addresses),
    })


def _most_populous(units: _Units, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the most populous village of each group (ties: smallest code)."""
    order = np.lexsort((np.arange(len(units)), -units.population, groups))
    first = np.searchsorted(groups[order], np.arange(n_groups), side="left")
    return order[first]


def _central_points(units: _Units, which: np.ndarray, rng: np.random.Generator) -> tuple:
    """A point near the middle of each village: its centroid if inside, else a random one."""
    geoms = units.geometry[which]
    centroid = shapely.centroid(geoms)
    lon, lat = shapely.get_x(centroid), shapely.get_y(centroid)
    outside = ~shapely.contains_xy(geoms, lon, lat)
    if outside.any():
        lon2, lat2 = _points_in_polygons(units, which[outside], rng=rng)
        lon[outside], lat[outside] = lon2, lat2
    return lon, lat


def _station_address(units: _Units, which: np.ndarray, rng: np.random.Generator) -> list[str]:
    numbers = rng.integers(1, 300, len(which))
    roads = rng.integers(0, len(_ROADS), len(which))
    return [f"{units.prefix[v]}{_ROADS[r]}{k}号" for v, r, k in
            zip(which, roads, numbers, strict=True)]


def _hall_rows(units: _Units, *, rng: np.random.Generator) -> pd.DataFrame:
    which = _most_populous(units, units.district_idx, len(units.district_codes))
    lon, lat = _central_points(units, which, rng)
    names = [units.district_name[v] + "信访超市" for v in which]
    return _station_frame([f"HALL-{c}" for c in units.district_codes], names, "hall", lon, lat,
                          list(units.district_codes), _station_address(units, which, rng))


def _centre_rows(units: _Units, *, rng: np.random.Generator) -> pd.DataFrame:
    which = _most_populous(units, units.street_idx, len(units.street_codes))
    lon, lat = _central_points(units, which, rng)
    # a street's centre stands a little off its hall when both share a village
    lon = lon + rng.uniform(-1e-4, 1e-4, len(which))
    lat = lat + rng.uniform(-1e-4, 1e-4, len(which))
    inside = shapely.contains_xy(units.geometry[which], lon, lat)
    if not inside.all():
        lon[~inside], lat[~inside] = _points_in_polygons(units, which[~inside], rng=rng)
    names = [units.street_name[v] + "综治中心" for v in which]
    return _station_frame([f"CENTRE-{c}" for c in units.street_codes], names, "centre", lon, lat,
                          list(units.street_codes), _station_address(units, which, rng))


def _station_gaps(units: _Units, rng: np.random.Generator) -> np.ndarray:
    """Villages without a 村居服务站: ~12 %, weighted to rural units and two 'gap streets'."""
    weight = np.where(units.urban, 1.0, 5.0)
    n_streets = len(units.street_codes)
    gap_streets = rng.choice(n_streets, size=min(_GAP_STREETS, max(1, n_streets // 4)),
                             replace=False)
    weight = weight * np.where(np.isin(units.street_idx, gap_streets), 10.0, 1.0)
    k = max(1, round(_STATION_GAP_SHARE * len(units)))
    keys = rng.random(len(units)) ** (1.0 / weight)  # Efraimidis–Spirakis weighted sample
    gaps = np.zeros(len(units), dtype=bool)
    gaps[np.argsort(-keys, kind="stable")[:k]] = True
    return gaps


def _village_station_names(units: _Units, which: np.ndarray, suffix: str) -> list[str]:
    return [units.name[v] + suffix for v in which]


def _station_rows(units: _Units, *, rng: np.random.Generator) -> pd.DataFrame:
    which = np.flatnonzero(~_station_gaps(units, rng))
    lon, lat = _points_in_polygons(units, which, rng=rng)
    names = [units.name[v] + ("党群服务站" if units.urban[v] else "村民服务站") for v in which]
    return _station_frame([f"STATION-{units.code[v]}" for v in which], names, "station",
                          lon, lat, [units.code[v] for v in which],
                          _station_address(units, which, rng))


def _mediation_rows(units: _Units, *, rng: np.random.Generator) -> pd.DataFrame:
    which = np.flatnonzero(rng.random(len(units)) < _MEDIATION_SHARE)
    lon, lat = _points_in_polygons(units, which, rng=rng)
    return _station_frame([f"MEDIATION-{units.code[v]}" for v in which],
                          _village_station_names(units, which, "人民调解工作室"), "mediation",
                          lon, lat, [units.code[v] for v in which],
                          _station_address(units, which, rng))


# ----------------------------------------------------------------------------- messy export


def _check_shares(*shares: float) -> None:
    if any(s < 0 for s in shares) or sum(shares[:3]) > 1:
        raise GridgovError(
            f"比例须为非负，且互斥的三项合计不超过1：{shares} / shares must be ≥ 0 and the "
            f"disjoint ones (swap, missing, bad) must sum to ≤ 1: {shares}"
        )


def _export_text(cases: pd.DataFrame, *, crs: str) -> dict[str, pa.Array]:
    """Every exported column as Arrow text, coordinates converted to ``crs``."""
    missing = set(CASE_COLUMNS) - set(cases.columns)
    if missing:
        raise GridgovError(f"案件表缺少列 {sorted(missing)} / cases lack columns {sorted(missing)}")
    lon, lat = from_wgs84(cases["lon"].to_numpy(float), cases["lat"].to_numpy(float), crs)
    out: dict[str, pa.Array] = {}
    for column in EXPORT_HEADERS_ZH:
        values = cases[column]
        if column in ("lon", "lat"):
            text = pa.array(np.round(lon if column == "lon" else lat, 6), from_pandas=True)
        elif pd.api.types.is_datetime64_any_dtype(values):
            text = pa.array(values.to_numpy().astype("datetime64[s]"))
        elif column == "is_repeat":
            text = _take(["初件", "重件"], values.to_numpy(bool).astype(np.int64))
        elif column == "status":
            index = pd.Index(list(STATUS_ZH)).get_indexer(values)
            text = _take([*STATUS_ZH.values(), None], index)
        elif pd.api.types.is_bool_dtype(values):
            text = _take(["否", "是"], values.to_numpy(bool).astype(np.int64))
        else:
            text = pa.array(values.astype("str").array)
        out[column] = pc.fill_null(text.cast(pa.string()), "")
    return out


def _pick_messy_rows(
    n: int, *, rng: np.random.Generator, shares: tuple[float, float, float, float]
) -> dict[str, np.ndarray]:
    swap, missing, bad, duplicate = (round(s * n) for s in shares)
    perm = rng.permutation(n)
    cuts = np.cumsum([swap, missing // 2, missing - missing // 2, bad])
    swapped, miss_addr, miss_code, bad_rows, clean = np.split(perm, cuts)
    kind = np.arange(len(bad_rows)) % 3
    return {
        "swapped": np.sort(swapped),
        "missing_coords_address": np.sort(miss_addr),
        "missing_coords_code": np.sort(miss_code),
        "bad_date": np.sort(bad_rows[kind == 0]),
        "missing_id": np.sort(bad_rows[kind == 1]),
        "bad_coords": np.sort(bad_rows[kind == 2]),
        "duplicates": clean[:duplicate],  # in the (random) order the copies are appended
    }


def _set(text: dict[str, pa.Array], rows: np.ndarray, column: str, values: Any) -> None:
    """Overwrite ``text[column]`` at the sorted ``rows`` with ``values`` (one per row, or one)."""
    if not len(rows):
        return
    mask = np.zeros(len(text[column]), dtype=bool)
    mask[rows] = True
    if isinstance(values, str):
        values = [values] * len(rows)
    replacement = pa.array(list(values) if not isinstance(values, pa.Array) else values,
                           type=pa.string())
    text[column] = pc.replace_with_mask(text[column], pa.array(mask), replacement)


def _swap_coords(text: dict[str, pa.Array], rows: np.ndarray) -> None:
    index = pa.array(rows)
    lon, lat = text["lon"].take(index), text["lat"].take(index)
    _set(text, rows, "lon", lat)
    _set(text, rows, "lat", lon)


def _drop_coords(
    text: dict[str, pa.Array], address_only: np.ndarray, code_only: np.ndarray
) -> None:
    rows = np.sort(np.concatenate([address_only, code_only]))
    _set(text, rows, "lon", "")
    _set(text, rows, "lat", "")
    _set(text, address_only, "village_code", "")
    _set(text, code_only, "address", "")


def _spoil_rows(
    text: dict[str, pa.Array], bad_date: np.ndarray, missing_id: np.ndarray,
    bad_coords: np.ndarray,
) -> None:
    dates = ("2025-13-45 25:61:00", "待补录", "0000-00-00 00:00:00")
    _set(text, bad_date, "registered_at", [dates[i % 3] for i in range(len(bad_date))])
    _set(text, missing_id, "case_id", "")
    garbage = (("abc", "xyz"), ("0", "0"), ("999.0", "-999.0"))
    _set(text, bad_coords, "lon", [garbage[i % 3][0] for i in range(len(bad_coords))])
    _set(text, bad_coords, "lat", [garbage[i % 3][1] for i in range(len(bad_coords))])


def _with_duplicates(
    text: dict[str, pa.Array], picks: dict[str, np.ndarray]
) -> tuple[pd.DataFrame, dict[str, tuple[int, ...]]]:
    """Append an exact copy of each duplicated row at the end (a later export page)."""
    n = len(text["case_id"])
    dup = pa.array(picks["duplicates"].astype(np.int64))
    columns = {
        EXPORT_HEADERS_ZH[k]: pd.Series(pa.chunked_array([v, v.take(dup)]), dtype="str")
        for k, v in text.items()
    }
    positions = {
        key: tuple(int(p) for p in rows) for key, rows in picks.items() if key != "duplicates"
    }
    positions["duplicates"] = tuple(range(n, n + len(dup)))
    return pd.DataFrame(columns, copy=False), positions


# ----------------------------------------------------------------------------- store


def _ensure_grid(engine: Engine) -> None:
    """Migrate the schema and load the bundled grid unless the store already holds one."""
    from geo.grid import init_store

    init_store(engine)


def _read_grid(engine: Engine) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    from geo.store import read_units

    villages = read_units(engine, level="village")
    streets = read_units(engine, level="street", with_geometry=False)
    districts = read_units(engine, level="district", with_geometry=False)
    if "kind" not in villages or villages["kind"].isna().any():
        villages["kind"] = [unit_kind(c) for c in villages["code"]]
    return villages, streets, districts


def _holds_cases(engine: Engine) -> bool:
    import sqlalchemy as sa

    from geo import schema

    with engine.connect() as conn:
        return conn.execute(sa.select(schema.cases.c.case_id).limit(1)).first() is not None


def _ingest(
    store: Store, stations: pd.DataFrame | None, exports: list[tuple[str, pd.DataFrame]], *,
    seed: int, as_of: date,
) -> tuple[Any, list[Any]]:
    from etl.ingest import ingest_cases_frame
    from etl.stations import ingest_stations_frame

    station_report = None if stations is None else ingest_stations_frame(
        store, stations, source_file=f"<demo stations seed={seed}>"
    )
    reports = [
        ingest_cases_frame(store, cases, source_file=(
            f"<demo cases {label} seed={seed} n={len(cases)} as_of={as_of.isoformat()}>"))
        for label, cases in exports
    ]
    return station_report, reports
