"""Known events for the demo (演示预警事件): the story the early-warning layer must tell.

The background demo (:mod:`etl.demo`) is noise drawn from stationary rates. On top of it,
:func:`inject_events` adds five events, each meant for one warning rule, and returns a
manifest saying exactly what it added, so a test (and a presenter) can check that every event
is found by its rule:

* ``collective_petition`` — one case with 15 people involved (涉及人数), two days before the
  data date: rule ``collective_people``;
* ``category_surge`` — one street gets a week of one category at several times its usual
  weekly count, spread over its villages and petitioners: rule ``surge``;
* ``repeat_petitioner`` — one person (one invented ID number and phone) petitions three times
  in 50 days about three villages of one street: rule ``repeat_petitioner``;
* ``hot_villages`` — a village and its touching neighbours get four times their usual cases
  in the last three weeks: rule ``hotspot`` (emerging hot spot, Getis-Ord Gi*);
* ``skip_level`` — a petitioner whose case at the street office is still open petitions the
  province (省) about it: rule ``skip_level`` (越级访).

Everything is drawn with the demo's seed, placed in different districts where the grid has
them, and marked ``synthetic`` like the rest of the demo; invented ID numbers use area code
990101 (no such area) and keep a wrong check digit, phones the unassigned 154 segment.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import GridgovError

EVENT_RULES = {
    "collective_petition": "collective_people",
    "category_surge": "surge",
    "repeat_petitioner": "repeat_petitioner",
    "hot_villages": "hotspot",
    "skip_level": "skip_level",
}
"""Each injected event and the warning rule meant to find it."""

_BASELINE_WEEKS = 9  # the surge rule's guard week + 8 baseline weeks, in the demo's default
_HOT_FACTOR = 4.0


def inject_events(
    cases: pd.DataFrame,
    villages: gpd.GeoDataFrame,
    *,
    as_of: date,
    seed: int = 7,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Add the five demo events to a frame of demo cases.

    Parameters
    ----------
    cases
        Cases in the shape of :func:`etl.demo.demo_cases` (its ``CASE_COLUMNS``).
    villages
        The village units the cases were drawn on (``code``, ``parent_code``, ``population``,
        ``name``, ``geometry`` WGS-84); at least three.
    as_of
        The demo's data date: every event lies in the weeks before it.

    Returns
    -------
    (pandas.DataFrame, list of dict)
        The cases with the events appended (and a ``people_count`` column), and the manifest:
        one entry per event with ``event``, ``rule``, ``case_ids``, ``unit_codes``,
        ``category`` (where it matters) and a Chinese ``description``.
    """
    if len(villages) < 3:
        raise GridgovError("注入演示事件至少需要 3 个村居 / demo events need at least 3 villages")
    rng = np.random.default_rng([seed, as_of.toordinal(), 0xE7E5])
    units = _Villages(villages)
    picks = _choose_places(units, rng)
    maker = _CaseMaker(cases, units, as_of=as_of, rng=rng)
    manifest = [
        _collective_petition(maker, picks["collective"]),
        _category_surge(maker, cases, units, picks["surge_street"], as_of=as_of),
        _repeat_petitioner(maker, picks["repeat"]),
        _hot_villages(maker, cases, picks["hot"], as_of=as_of),
        _skip_level(maker, picks["skip"]),
    ]
    added = pd.DataFrame(maker.rows)
    out = cases.copy()
    if "people_count" not in out:
        out["people_count"] = pd.array([None] * len(out), dtype="Int64")
    added["people_count"] = pd.array(added["people_count"], dtype="Int64")
    for column in out.columns:
        if column not in added:
            added[column] = None
    combined = pd.concat([out, added[list(out.columns)]], ignore_index=True)
    return combined, manifest


# ----------------------------------------------------------------------------- places


class _Villages:
    def __init__(self, villages: gpd.GeoDataFrame) -> None:
        frame = villages.sort_values("code").reset_index(drop=True)
        self.code = frame["code"].astype(str).to_numpy()
        self.street = frame["parent_code"].astype(str).to_numpy()
        self.district = np.array([c[:6] + "000000" for c in self.code])
        self.name = (frame["name"].astype(str).to_numpy() if "name" in frame
                     else self.code.copy())
        self.geometry = np.asarray(frame.geometry.values, dtype=object)
        shapely.prepare(self.geometry)

    def neighbours(self, i: int) -> np.ndarray:
        """Villages touching village ``i`` (shared edge or corner, 1e-6° tolerance)."""
        grown = shapely.buffer(self.geometry[i], 1e-6)
        hits = shapely.intersects(self.geometry, grown)
        hits[i] = False
        return np.flatnonzero(hits)

    def point(self, i: int, rng: np.random.Generator) -> tuple[float, float]:
        geom = self.geometry[i]
        minx, miny, maxx, maxy = shapely.bounds(geom)
        for _ in range(200):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if shapely.contains_xy(geom, x, y):
                return float(x), float(y)
        inner = shapely.point_on_surface(geom)
        return float(inner.x), float(inner.y)


def _choose_places(units: _Villages, rng: np.random.Generator) -> dict[str, Any]:
    """Put the events in different districts (and streets) where the grid allows it."""
    n = len(units.code)
    degree = np.array([len(units.neighbours(i)) for i in range(n)]) if n <= 64 else None
    districts = list(dict.fromkeys(units.district[rng.permutation(n)]))
    used_streets: set[str] = set()

    def villages_of(district: str | None = None, street: str | None = None) -> np.ndarray:
        keep = np.ones(n, dtype=bool)
        if district is not None:
            keep &= units.district == district
        if street is not None:
            keep &= units.street == street
        return np.flatnonzero(keep)

    # hot villages: a village with at least three touching neighbours, in the first district
    hot_centre = None
    for i in rng.permutation(villages_of(districts[0])):
        count = degree[i] if degree is not None else len(units.neighbours(i))
        if count >= 3:
            hot_centre = int(i)
            break
    if hot_centre is None:
        hot_centre = int(rng.integers(n))
    hot = [hot_centre, *units.neighbours(hot_centre)[:4].tolist()]
    used_streets.update(units.street[hot])
    other = districts[1] if len(districts) > 1 else districts[0]
    streets = [s for s in dict.fromkeys(units.street[villages_of(other)])
               if s not in used_streets] or list(dict.fromkeys(units.street))
    surge_street = max(streets, key=lambda s: (len(villages_of(street=s)), s))
    used_streets.add(surge_street)
    third = districts[2] if len(districts) > 2 else other
    candidates = [s for s in dict.fromkeys(units.street[villages_of(third)])
                  if s not in used_streets and len(villages_of(street=s)) >= 3]
    if candidates:
        repeat = villages_of(street=candidates[0])[:3].tolist()
        used_streets.add(candidates[0])
    else:
        repeat = [i for i in range(n) if i not in hot][:3] or list(range(3))
    spare = [i for i in rng.permutation(n).tolist()
             if units.street[i] not in used_streets] or rng.permutation(n).tolist()
    return {"hot": hot, "surge_street": surge_street, "repeat": repeat,
            "collective": int(spare[0]), "skip": int(spare[1 % len(spare)])}


# ----------------------------------------------------------------------------- cases


class _CaseMaker:
    """Builds demo-shaped case rows (open, accepted, within every deadline) one at a time."""

    def __init__(self, cases: pd.DataFrame, units: _Villages, *, as_of: date,
                 rng: np.random.Generator) -> None:
        self.units = units
        self.as_of = as_of
        self.rng = rng
        self.rows: list[dict[str, Any]] = []
        self.categories = (cases["category"].dropna().astype(str).value_counts().index.tolist()
                           or ["城乡建设"])
        self.people = 0

    def person(self) -> dict[str, str]:
        """A new invented petitioner (name, 154 phone, ID with area 990101 and a wrong check)."""
        self.people += 1
        k = self.people
        id17 = f"990101{1950 + k % 50:04d}{1 + k % 12:02d}{1 + k % 28:02d}{k % 1000:03d}"
        return {"petitioner_name": "演示" + "甲乙丙丁戊己庚辛壬癸"[k % 10] + "某",
                "petitioner_phone": f"154{99_000_000 + k:08d}",
                "petitioner_id": id17 + _wrong_check(id17)}

    def add(self, village: int, *, days_ago: int, category: str, person: dict[str, str],
            level: str = "镇街", channel: str = "网上", people: int | None = None,
            hour: int = 10) -> str:
        when = datetime.combine(self.as_of - timedelta(days=days_ago), datetime.min.time()) \
            + timedelta(hours=hour, minutes=int(self.rng.integers(0, 50)))
        case_id = f"XFEV{when:%Y%m%d}{len(self.rows) + 1:06d}"
        accepted = when + timedelta(days=1) if days_ago >= 2 else None
        lon, lat = self.units.point(village, self.rng)
        street, district = self.units.street[village], self.units.district[village]
        self.rows.append({
            "case_id": case_id, "registered_at": when,
            "transferred_at": when + timedelta(hours=2), "accepted_at": accepted,
            "due_at": accepted + timedelta(days=60) if accepted else None, "extended": False,
            "replied_at": None, "closed_at": None, "followed_up_at": None, "rating": None,
            "rated_at": None, "rating_state": None,
            "status": "accepted" if accepted else "registered", "category": category,
            "purpose": "求决", "channel": channel, "is_repeat": False, "repeat_of": None,
            "is_backlog": False, "backlog_leader": None, "registered_level": level,
            "handling_unit": "镇街办事处", "lon": lon, "lat": lat,
            "address": f"{self.units.name[village]}演示路{len(self.rows) + 1}号",
            "village_code": self.units.code[village], "street_code": street,
            "district_code": district, **person,
            "description": f"反映{category}问题（演示预警事件）", "synthetic": True,
            "people_count": people,
        })
        return case_id


def _wrong_check(id17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(id17, weights, strict=True))
    return "10X98765432"[(total % 11 + 1) % 11]


def _collective_petition(maker: _CaseMaker, village: int) -> dict[str, Any]:
    category = "劳动和社会保障"
    case_id = maker.add(village, days_ago=2, category=category, person=maker.person(),
                        level="区", channel="来访", people=15)
    return _entry("collective_petition", [case_id], [maker.units.code[village]], category,
                  f"{maker.units.name[village]}：15 人集体来访反映拖欠工资（涉及人数 15）")


def _category_surge(maker: _CaseMaker, cases: pd.DataFrame, units: _Villages, street: str, *,
                    as_of: date) -> dict[str, Any]:
    members = np.flatnonzero(units.street == street)
    in_street = cases["street_code"].astype(str) == street
    registered = pd.to_datetime(cases["registered_at"])
    start = pd.Timestamp(as_of) - pd.Timedelta(days=7 * (_BASELINE_WEEKS + 1) - 1)
    recent = cases[in_street & (registered >= start)]
    counts = recent["category"].value_counts()
    common = [c for c in maker.categories if c in counts.index]
    category = common[len(common) // 3] if common else maker.categories[0]
    weekly = counts.get(category, 0) / (_BASELINE_WEEKS + 1)
    n = int(max(12, round(4 * weekly + 10)))
    ids = [maker.add(int(members[k % len(members)]), days_ago=int(k % 6), category=category,
                     person=maker.person(), hour=9 + k % 8) for k in range(n)]
    return _entry("category_surge", ids, [street], category,
                  f"镇街 {street}：本周“{category}”类 {n} 件（平时每周约 {weekly:.1f} 件）")


def _repeat_petitioner(maker: _CaseMaker, villages: list[int]) -> dict[str, Any]:
    person = maker.person()
    category = "城乡建设"
    ids = [maker.add(v, days_ago=days, category=category, person=person, channel="来访")
           for v, days in zip(villages, (50, 30, 10), strict=False)]
    codes = [maker.units.code[v] for v in villages]
    return _entry("repeat_petitioner", ids, codes, category,
                  "同一信访人 50 天内就三个村居的问题三次来访")


def _hot_villages(maker: _CaseMaker, cases: pd.DataFrame, villages: list[int], *,
                  as_of: date) -> dict[str, Any]:
    registered = pd.to_datetime(cases["registered_at"])
    recent = cases[registered >= pd.Timestamp(as_of) - pd.Timedelta(days=27)]
    counts = recent["village_code"].astype(str).value_counts()
    ids: list[str] = []
    for v in villages:
        usual = counts.get(maker.units.code[v], 0)
        extra = int(max(15, round((_HOT_FACTOR - 1) * usual + 10)))
        for k in range(extra):
            category = maker.categories[int(maker.rng.integers(len(maker.categories)))]
            ids.append(maker.add(v, days_ago=int(maker.rng.integers(0, 21)), category=category,
                                 person=maker.person(), hour=9 + k % 8))
    codes = [maker.units.code[v] for v in villages]
    return _entry("hot_villages", ids, codes, None,
                  f"{len(villages)} 个相邻村居近三周信访量约为平时的 {_HOT_FACTOR:g} 倍")


def _skip_level(maker: _CaseMaker, village: int) -> dict[str, Any]:
    person = maker.person()
    category = "自然资源"
    local = maker.add(village, days_ago=25, category=category, person=person, level="镇街",
                      channel="来访")
    high = maker.add(village, days_ago=4, category=category, person=person, level="省",
                     channel="网上")
    return _entry("skip_level", [high, local], [maker.units.code[village]], category,
                  "镇街登记的信访件尚在办理，同一信访人又向省级反映（越级访）")


def _entry(event: str, case_ids: list[str], units: list[str], category: str | None,
           description: str) -> dict[str, Any]:
    return {"event": event, "rule": EVENT_RULES[event], "case_ids": case_ids,
            "unit_codes": [str(u) for u in units], "category": category,
            "description": description}
