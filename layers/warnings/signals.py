"""Strong signals (强信号): the rule-based warnings, each a pure function of the case table.

Each function takes the columnar case table (:class:`layers.casedata.CaseTable`), the case
state on the data date (:class:`layers.rules.CaseState`, where every deadline already lives:
these functions read its masks and never recompute a deadline) and the settings, and returns
:class:`layers.warnings.records.Warning` objects. The rule each implements is written out in
:data:`layers.warnings.definitions.RULES` (and on the 指标说明 page):

* :func:`deadline_warnings` — 受理 / 答复 / 办结 临期 and 超期, one per case (放大镜);
* :func:`repeat_petitioners` — 重复访, grouped by person (the int32 person index of the table:
  salted ID hash, else phone; the id itself is never read);
* :func:`collective_people` — 集体访: 涉及人数 ≥ 5;
* :func:`collective_clusters` — 群体性苗头: ≥ 5 petitioners, one category, 300 m, 7 days;
* :func:`skip_level` — 越级访;
* :func:`unhappy_without_followup` — 不满意 with neither 复查 nor 回访;
* :func:`backlog_without_leader` — 积案 without a 包案领导.

Domain background (limits, levels, the five-representative rule) is in docs/domain.md §1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geo.crs import lonlat_to_xy
from geo.settings import Settings
from geo.vocab import BAD_RATING, CHANNELS, HIGH_LEVELS, LOCAL_LEVELS
from layers.casedata import NULL, CaseTable
from layers.rules import CaseState
from layers.warnings.records import (
    Warning,
    case_ids_of,
    case_units,
    common_unit,
    day_text,
    unit_names,
)

VISIT_CHANNEL = CHANNELS[0]
"""来访 (走访): the channel 条例 Art. 20's level rule is about."""


def strong_signals(table: CaseTable, state: CaseState, settings: Settings) -> list[Warning]:
    """Return every strong-signal warning on the data date of ``state``."""
    return [
        *deadline_warnings(table, state, settings),
        *repeat_petitioners(table, state, settings),
        *collective_people(table, state, settings),
        *collective_clusters(table, state, settings),
        *skip_level(table, state, settings),
        *unhappy_without_followup(table, state, settings),
        *backlog_without_leader(table, state, settings),
    ]


# --------------------------------------------------------------------------- 放大镜: deadlines


def deadline_warnings(table: CaseTable, state: CaseState, settings: Settings) -> list[Warning]:
    """受理 / 答复 / 办结 临期 and 超期, one warning per case and rule (masks of layers.rules).

    答复 and 办结 share the handling limit (Art. 34); a case not yet replied is warned as 答复
    临期/超期, a replied case not yet closed as 办结 临期/超期, so no case is warned twice for
    one deadline.
    """
    registered = table.days("registered_at")
    accepted = table.days("accepted_at")
    due = table.days("due_at")
    as_of = state.as_of_day
    handling_start = np.where(accepted != NULL, accepted, registered)
    limit = np.where(due != NULL, due - handling_start, NULL)
    masks = {
        "acceptance_due_soon": state.acceptance_due_soon,
        "acceptance_overdue": state.acceptance_overdue,
        "reply_due_soon": state.reply_due_soon,
        "reply_overdue": state.reply_overdue,
        "handling_due_soon": state.handling_due_soon & ~state.reply_pending,
        "handling_overdue": state.handling_overdue & ~state.reply_pending,
    }
    units = case_units(table)
    categories = _category_values(table)
    out: list[Warning] = []
    for rule, mask in masks.items():
        rows = np.flatnonzero(mask)
        acceptance = rule.startswith("acceptance")
        ends = state.due_day("acceptance", rows) if acceptance else due[rows]
        for row, case_id, end in zip(rows, case_ids_of(table, rows), ends, strict=True):
            start = int(registered[row] if acceptance else handling_start[row])
            end = int(end)
            days_limit = settings.acceptance_days if acceptance else int(limit[row])
            elapsed = as_of - start
            out.append(Warning(
                rule=rule, subject=case_id, unit_code=units[row], period_start=start,
                period_end=end, observed=float(elapsed), expected=float(days_limit),
                rows=np.array([row]), category=categories[row],
                reason=_deadline_reason(rule, case_id, elapsed, days_limit, end - as_of,
                                        day_text(end)),
                **_point(table, row),
            ))
    return out


def _deadline_reason(rule: str, case_id: str, elapsed: int, limit: int, left: int,
                     due: str) -> str:
    share = round(100 * elapsed / limit) if limit > 0 else 100
    texts = {
        "acceptance_due_soon": f"信访件 {case_id} 登记已 {elapsed} 天仍未受理，{limit} 天受理期限已用去"
                               f" {share}%，{due} 到期（还剩 {left} 天）。",
        "acceptance_overdue": f"信访件 {case_id} 登记已 {elapsed} 天仍未受理，超过 {limit} 天受理期限"
                              f" {-left} 天。",
        "reply_due_soon": f"信访件 {case_id} 尚未答复，办理期限 {due} 还剩 {left} 天（{limit} 天期限已用去"
                          f" {share}%）。",
        "reply_overdue": f"信访件 {case_id} 已超过办理期限（{due}）{-left} 天仍未答复。",
        "handling_due_soon": f"信访件 {case_id} 已答复未办结，办理期限 {due} 还剩 {left} 天（已用去"
                             f" {share}%）。",
        "handling_overdue": f"信访件 {case_id} 已答复但超过办理期限（{due}）{-left} 天仍未办结。",
    }
    return texts[rule]


# --------------------------------------------------------------------------- 重复访


def repeat_petitioners(table: CaseTable, state: CaseState, settings: Settings) -> list[Warning]:
    """重复访: one warning per petitioner with ≥ 3 cases, or cases in ≥ 2 villages, in 90 days.

    The person is the table's int32 index (same salted ID hash, else same phone); the warning
    names the person's cases, never the person. Its subject is the person's first case in the
    whole table, so the warning keeps its id as the window moves.
    """
    person = table.numbers["person"]
    day = table.days("registered_at")
    window = (state.exists & (person >= 0) & (day != NULL)
              & (day > state.as_of_day - settings.repeat_window_days) & (day <= state.as_of_day))
    rows = np.flatnonzero(window)
    if not len(rows):
        return []
    village = table.levels["village"].case_unit if "village" in table.levels else \
        np.full(len(table), -1, dtype=np.int32)
    frame = pd.DataFrame({"row": rows, "person": person[rows], "day": day[rows],
                          "village": village[rows]})
    groups = frame.groupby("person", sort=False)
    counts = groups["row"].size()
    villages = frame[frame["village"] >= 0].groupby("person")["village"].nunique()
    villages = villages.reindex(counts.index, fill_value=0)
    flagged = counts.index[(counts >= settings.repeat_min_cases)
                           | (villages >= settings.repeat_min_villages)]
    if not len(flagged):
        return []
    first_case = _first_case_of_person(table, state, np.asarray(flagged))
    units = case_units(table)
    names = unit_names(table)
    village_codes = (table.levels["village"].units["code"].astype(str).to_numpy(dtype=object)
                     if "village" in table.levels else np.array([], dtype=object))
    chosen = frame[frame["person"].isin(flagged)].sort_values(["person", "day", "row"])
    out: list[Warning] = []
    for key, group in chosen.groupby("person", sort=True):
        member_rows = group["row"].to_numpy()
        n_villages = int(villages.loc[key])
        place_names = [names.get(village_codes[v], "") for v in
                       pd.unique(group.loc[group["village"] >= 0, "village"])]
        last = int(member_rows[-1])
        unit = common_unit(units[member_rows])
        out.append(Warning(
            rule="repeat_petitioner", subject=first_case[int(key)], unit_code=unit,
            period_start=int(group["day"].min()), period_end=int(group["day"].max()),
            observed=float(len(member_rows)), expected=float(settings.repeat_min_cases),
            statistic=float(n_villages), rows=member_rows,
            reason=(f"同一信访人近 {settings.repeat_window_days} 天内反映 {len(member_rows)} 件"
                    f"，涉及 {n_villages} 个村居（{'、'.join(place_names) or '属地不详'}），"
                    f"最近一次于 {day_text(day[last])} 登记。"),
            **_point(table, last),
        ))
    return out


def _first_case_of_person(table: CaseTable, state: CaseState, persons: np.ndarray
                          ) -> dict[int, str]:
    """Person index → the id of their first registered case (ties: the smaller id), for ``persons``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    person = table.numbers["person"]
    rows = np.flatnonzero(state.exists & np.isin(person, persons))
    ids = pa.array(case_ids_of(table, rows), type=pa.string())
    order = pc.sort_indices(pa.table({"p": person[rows], "m": table.minutes("registered_at")[rows],
                                      "c": ids}),
                            sort_keys=[("p", "ascending"), ("m", "ascending"), ("c", "ascending")])
    order = order.to_numpy()
    keys = person[rows][order]
    first = np.r_[True, keys[1:] != keys[:-1]] if len(keys) else np.array([], dtype=bool)
    chosen = ids.take(pa.array(order[first])).to_pylist()
    return {int(k): str(c) for k, c in zip(keys[first], chosen, strict=True)}


# --------------------------------------------------------------------------- 集体访 / 群体性苗头


def collective_people(table: CaseTable, state: CaseState, settings: Settings) -> list[Warning]:
    """集体访: a case registered in the look-back window with ≥ 5 people involved (涉及人数)."""
    people = table.numbers["people_count"]
    rows = np.flatnonzero(_recent(table, state, settings)
                          & (people >= settings.collective_min_people))
    units = case_units(table)
    categories = _category_values(table)
    day = table.days("registered_at")
    return [
        Warning(
            rule="collective_people", subject=case_id, unit_code=units[row],
            period_start=int(day[row]), period_end=int(day[row]), observed=float(people[row]),
            expected=float(settings.collective_min_people), rows=np.array([row]),
            category=categories[row],
            reason=(f"信访件 {case_id} 涉及 {int(people[row])} 人（"
                    f"{settings.collective_min_people} 人及以上为集体访），{day_text(day[row])} 登记，"
                    f"内容分类：{categories[row] or '未分类'}。"),
            **_point(table, row),
        )
        for row, case_id in zip(rows, case_ids_of(table, rows), strict=True)
    ]


def collective_clusters(table: CaseTable, state: CaseState, settings: Settings) -> list[Warning]:
    """群体性苗头: ≥ 5 petitioners, one category, within 300 m and 7 days of the latest case.

    For every recent case (the *anchor*), the cases of its category registered on its day or
    the ``cluster_days - 1`` days before, within ``cluster_radius_m`` of it (EPSG:4547, found
    with a k-d tree), are counted by distinct petitioner (a case without a known petitioner
    counts as one). Anchors reaching ``cluster_min_cases`` make a cluster; clusters that share
    a case are merged (connected components), one warning each.
    """
    day = table.days("registered_at")
    recent = _recent(table, state, settings)
    span = settings.cluster_days - 1
    lookback = state.as_of_day - settings.warning_lookback_days + 1
    pool = (state.exists & (day != NULL) & (day >= lookback - span) & (day <= state.as_of_day)
            & ~table.is_missing("category") & np.isfinite(table.numbers["lon"])
            & np.isfinite(table.numbers["lat"]))
    rows = np.flatnonzero(pool)
    if len(rows) < settings.cluster_min_cases:
        return []
    x, y = lonlat_to_xy(table.numbers["lon"][rows].astype(float),
                        table.numbers["lat"][rows].astype(float))
    codes = table.codes("category")[rows]
    person = table.numbers["person"][rows].astype(np.int64)
    person = np.where(person >= 0, person, -1 - np.arange(len(rows)))  # unknown: one each
    anchors, members = _space_time_pairs(x, y, codes, day[rows], radius=settings.cluster_radius_m,
                                         span=span)
    anchor_ok = recent[rows]
    keep = anchor_ok[anchors]
    anchors, members = anchors[keep], members[keep]
    if not len(anchors):
        return []
    distinct = pd.DataFrame({"a": anchors, "p": person[members]}).drop_duplicates()
    petitioners = np.bincount(distinct["a"].to_numpy(), minlength=len(rows))
    flagged = petitioners >= settings.cluster_min_cases
    edge = flagged[anchors]
    if not edge.any():
        return []
    graph = coo_matrix((np.ones(int(edge.sum())), (anchors[edge], members[edge])),
                       shape=(len(rows), len(rows)))
    _n, labels = connected_components(graph, directed=False)
    involved = np.zeros(len(rows), dtype=bool)
    involved[anchors[edge]] = True
    involved[members[edge]] = True
    units = case_units(table)
    names = table.categories("category")
    out: list[Warning] = []
    for label in np.unique(labels[involved]):
        local = np.flatnonzero(involved & (labels == label))
        local_ids = np.asarray(case_ids_of(table, rows[local]), dtype=object)
        order = np.lexsort((local_ids, table.minutes("registered_at")[rows[local]]))
        local, first_id = local[order], str(local_ids[order[0]])
        member_rows = rows[local]
        n_people = len(np.unique(person[local]))
        cx, cy = float(x[local].mean()), float(y[local].mean())
        reach = float(np.max(np.hypot(x[local] - cx, y[local] - cy)))
        category = str(names[codes[local[0]]])
        first_day, last_day = int(day[member_rows].min()), int(day[member_rows].max())
        from geo.crs import xy_to_lonlat

        lon, lat = xy_to_lonlat(cx, cy)
        out.append(Warning(
            rule="collective_cluster", subject=f"{category}|{first_id}",
            unit_code=common_unit(units[member_rows]), period_start=first_day,
            period_end=last_day, observed=float(n_people),
            expected=float(settings.cluster_min_cases), statistic=float(len(member_rows)),
            rows=member_rows, category=category,
            reason=(f"{day_text(first_day)} 至 {day_text(last_day)}，约 {max(reach, 1):.0f} 米范围内"
                    f" {n_people} 名信访人反映同类问题“{category}”（共 {len(member_rows)} 件），"
                    f"达到群体性苗头标准（{settings.cluster_radius_m:g} 米、{settings.cluster_days} 天内"
                    f" {settings.cluster_min_cases} 人）。"),
            lon=float(lon), lat=float(lat), radius_m=max(reach, settings.cluster_radius_m),
        ))
    return out


def _space_time_pairs(x: np.ndarray, y: np.ndarray, category: np.ndarray, day: np.ndarray, *,
                      radius: float, span: int) -> tuple[np.ndarray, np.ndarray]:
    """(anchor, member) index pairs: same category, within ``radius`` m, member 0–span days earlier.

    Every case is its own member (a self pair), so an anchor's members include itself.
    """
    anchors, members = [np.arange(len(x))], [np.arange(len(x))]
    for code in np.unique(category):
        idx = np.flatnonzero(category == code)
        if len(idx) < 2:
            continue
        tree = cKDTree(np.column_stack([x[idx], y[idx]]))
        pairs = tree.query_pairs(r=radius, output_type="ndarray")
        if not len(pairs):
            continue
        i, j = idx[pairs[:, 0]], idx[pairs[:, 1]]
        for a, m in ((i, j), (j, i)):
            gap = day[a].astype(np.int64) - day[m].astype(np.int64)
            ok = (gap >= 0) & (gap <= span)
            anchors.append(a[ok])
            members.append(m[ok])
    return np.concatenate(anchors), np.concatenate(members)


# --------------------------------------------------------------------------- 越级访


def skip_level(table: CaseTable, state: CaseState, settings: Settings) -> list[Warning]:
    """越级访: a recent case registered at 市 level or above that skipped the levels below.

    Either (1) a visit (来访) whose petitioner never registered a case at 区/镇街/村居 level
    before it, or (2) any case whose petitioner had a case registered below that was still open
    when it was registered. Cases without a known petitioner are not judged.
    """
    person = table.numbers["person"]
    registered = table.minutes("registered_at")
    high = _recent(table, state, settings) & table.is_value("registered_level", HIGH_LEVELS) \
        & (person >= 0)
    high_rows = np.flatnonzero(high)
    if not len(high_rows):
        return []
    local = state.exists & table.is_value("registered_level", LOCAL_LEVELS) & (person >= 0)
    local_rows = np.flatnonzero(local & np.isin(person, person[high_rows]))
    closed = table.minutes("closed_at")
    ended = np.where(closed != NULL, closed, np.iinfo(np.int32).max)
    not_accepted = state.not_accepted
    decided = table.minutes("accepted_at")
    ended = np.where(not_accepted & (decided != NULL), np.minimum(ended, decided), ended)
    highs = pd.DataFrame({"row": high_rows, "person": person[high_rows],
                          "at": registered[high_rows]})
    lows = pd.DataFrame({"low": local_rows, "person": person[local_rows],
                         "low_at": registered[local_rows], "low_end": ended[local_rows]})
    joined = highs.merge(lows, on="person", how="left")
    earlier = joined["low_at"] < joined["at"]
    had_local = joined[earlier].groupby("row").size()
    still_open = joined[earlier & (joined["low_end"] > joined["at"])]
    open_below = still_open.sort_values("low_at").groupby("row")["low"].first()
    visit = table.is_value("channel", (VISIT_CHANNEL,))
    levels = table.categoricals["registered_level"]
    units = case_units(table)
    categories = _category_values(table)
    day = table.days("registered_at")
    out: list[Warning] = []
    for row, case_id in zip(high_rows, case_ids_of(table, high_rows), strict=True):
        level = str(levels[row])
        if row in open_below.index:
            other = case_ids_of(table, [int(open_below.loc[row])])[0]
            reason = (f"信访件 {case_id} 在{level}级登记时，同一信访人在属地登记的信访件 {other} "
                      f"仍在办理中（越级访）。")
            rows = np.array([row, int(open_below.loc[row])])
            how = 2.0
        elif visit[row] and row not in had_local.index:
            reason = (f"信访件 {case_id} 以走访形式直接到{level}级登记，同一信访人此前未在区、镇街、"
                      f"村居反映过（越级访）。")
            rows = np.array([row])
            how = 1.0
        else:
            continue
        out.append(Warning(
            rule="skip_level", subject=case_id, unit_code=units[row], period_start=int(day[row]),
            period_end=int(day[row]), observed=1.0, expected=0.0, statistic=how, rows=rows,
            category=categories[row], reason=reason, **_point(table, row),
        ))
    return out


# --------------------------------------------------------------------------- 不满意 / 积案


def unhappy_without_followup(table: CaseTable, state: CaseState, settings: Settings
                             ) -> list[Warning]:
    """不满意 rated cases (rated in the look-back window) with neither 复查 nor 回访 by the data date."""
    as_of = state.as_of

    def happened(name: str) -> np.ndarray:
        minutes = table.minutes(name)
        return (minutes != NULL) & (minutes <= as_of)

    everyone = np.arange(len(table))
    reply_day = state.since_day("reply", everyone)
    rated_day = np.where(table.days("rated_at") != NULL, table.days("rated_at"), reply_day)
    lookback = state.as_of_day - settings.warning_lookback_days + 1
    mask = (state.rated & table.is_value("rating", (BAD_RATING,)) & ~happened("reviewed_at")
            & ~happened("followed_up_at") & (rated_day != NULL) & (rated_day >= lookback)
            & (rated_day <= state.as_of_day))
    units = case_units(table)
    categories = _category_values(table)
    out = []
    rows = np.flatnonzero(mask)
    for row, case_id in zip(rows, case_ids_of(table, rows), strict=True):
        start = int(reply_day[row]) if reply_day[row] != NULL else int(rated_day[row])
        out.append(Warning(
            rule="unhappy_no_followup", subject=case_id, unit_code=units[row],
            period_start=min(start, int(rated_day[row])), period_end=int(rated_day[row]),
            observed=float(state.as_of_day - rated_day[row]), expected=None,
            rows=np.array([row]), category=categories[row],
            reason=(f"信访件 {case_id} 于 {day_text(rated_day[row])} 评价为不满意，至今 "
                    f"{state.as_of_day - int(rated_day[row])} 天未复查、也未回访。"),
            **_point(table, row),
        ))
    return out


def backlog_without_leader(table: CaseTable, state: CaseState, settings: Settings
                           ) -> list[Warning]:
    """积案 still open (未化解) with no 包案领导 named."""
    mask = state.backlog_open & ~table.flags["has_leader"]
    units = case_units(table)
    categories = _category_values(table)
    out = []
    rows = np.flatnonzero(mask)
    flagged = state.since_day("backlog", rows)
    for row, case_id, since in zip(rows, case_ids_of(table, rows), flagged, strict=True):
        since = int(since)
        out.append(Warning(
            rule="backlog_no_leader", subject=case_id, unit_code=units[row],
            period_start=since, period_end=state.as_of_day,
            observed=float(state.as_of_day - since), expected=None, rows=np.array([row]),
            category=categories[row],
            reason=(f"积案 {case_id} 列为积案已 {state.as_of_day - since} 天，尚未化解，"
                    f"也未明确包案领导。"),
            **_point(table, row),
        ))
    return out


# --------------------------------------------------------------------------- helpers


def _recent(table: CaseTable, state: CaseState, settings: Settings) -> np.ndarray:
    """Cases registered in the look-back window (the data date and the days before it)."""
    day = table.days("registered_at")
    low = state.as_of_day - settings.warning_lookback_days + 1
    return state.exists & (day != NULL) & (day >= low) & (day <= state.as_of_day)


def _category_values(table: CaseTable) -> np.ndarray:
    """Per case, its category as text (None when missing), memoised."""

    def build() -> np.ndarray:
        names = np.append(np.asarray(table.categories("category"), dtype=object), None)
        return names[table.codes("category")]

    return table.memo(("warning_categories",), build)


def _point(table: CaseTable, row: int) -> dict:
    lon, lat = table.numbers["lon"][row], table.numbers["lat"][row]
    if not (np.isfinite(lon) and np.isfinite(lat)):
        return {}
    return {"lon": round(float(lon), 6), "lat": round(float(lat), 6)}
