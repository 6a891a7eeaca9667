"""审计与账户 (administration): the accounts and the latest audit rows, for 管理员 only.

Read-only: accounts are changed with ``gridgov users …`` (each change audited). The audit rows
show who saw, exported, revealed or was refused what — case ids and counts, never a
petitioner's contact. Whether the chain is intact is checked on every page view.
"""

from __future__ import annotations

import dash
from dash import html

from dashboard import access, state
from geo import accounts, audit
from geo.vocab import AUDIT_ACTIONS, ROLE_ZH

dash.register_page(__name__, path="/admin", name="审计与账户",
                   title="审计与账户 · 广州市信访网格化治理", order=8)

AUDIT_ROWS = 200
"""Latest audit rows shown (the full trail: gridgov audit export)."""
AUDIT_TABLE = "admin-audit"
ACCOUNTS_TABLE = "admin-accounts"


@access.guard_layout
def layout(**_params) -> html.Div:
    """Render the accounts and the latest audit rows (管理员 only; others are refused)."""
    who = access.account()
    if not who.scope.is_admin:
        access.refuse("仅管理员可查看审计与账户。", detail="page=admin")
    engine = state.store().engine
    access.record("view", detail="审计与账户")
    check = audit.verify(engine)
    trail = audit.read_trail(engine, limit=AUDIT_ROWS, newest_first=True)
    users = accounts.list_users(engine)
    return html.Div(className="page page-admin", children=[
        html.Div(className="page-title", children=[html.H1("审计与账户"),
                                                   html.Span("账户变更请使用 gridgov users 命令")]),
        html.Div(id="admin-chain", role="status",
                 className="badge badge-demo" if check.ok else "badge badge-warn",
                 children=f"审计哈希链完整（{check.rows:,} 行）" if check.ok
                 else f"审计记录被篡改：{len(check.problems)} 处问题（gridgov audit verify 查看）"),
        html.Section(className="card", children=[
            html.H2(f"最近 {min(AUDIT_ROWS, len(trail))} 条审计记录"),
            html.Div(className="table-scroll", children=_table(AUDIT_TABLE, [
                "序号", "时间", "用户", "角色", "操作", "单位", "案件", "件数", "地址", "说明"], [
                [r.seq, f"{r.at:%Y-%m-%d %H:%M:%S}", r.username, ROLE_ZH.get(r.role, ""),
                 AUDIT_ACTIONS.get(r.action, r.action), r.unit_code, r.case_ids,
                 None if _blank(r.count) else int(r.count), r.address, r.detail]
                for r in trail.itertuples()])),
        ]),
        html.Section(className="card", children=[
            html.H2(f"账户（{len(users)} 个）"),
            html.Div(className="table-scroll", children=_table(ACCOUNTS_TABLE, [
                "用户名", "姓名", "角色", "辖区", "状态", "最近登录"], [
                [a.username, a.display_name, a.role_zh, a.scope_code or "—",
                 "停用" if not a.active else "正常", f"{a.last_login_at:%Y-%m-%d %H:%M}"
                 if a.last_login_at else ""] for a in users])),
        ]),
    ])


def _table(id_: str, headers: list[str], rows: list[list]) -> html.Table:
    return html.Table(id=id_, className="audit-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in headers])),
        html.Tbody([html.Tr([html.Td("" if _blank(v) else str(v)) for v in row])
                    for row in rows]),
    ])


def _blank(value: object) -> bool:
    """None, NaN (a missing value read into a frame) or empty."""
    return value is None or value != value or value == ""
