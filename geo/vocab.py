"""Every controlled vocabulary (词表) of gridgov, in one place.

The ETL normalises input onto these values, the layers count them, the dashboard labels
them and exports spell them out; none of them keeps its own copy. Spellings a source may
use for the same value (aliases such as 网信 for 网上) are input rules and stay with the
ETL's column mapping (:mod:`etl.columns`); what a value *is* lives here.

Sources are the 信访工作条例 (2022) and the published Guangdong petition statistics
(docs/domain.md lists them).
"""

from __future__ import annotations

# --------------------------------------------------------------------------- the grid

LEVELS: tuple[str, ...] = ("city", "district", "street", "village", "grid")
"""Grid levels from the top down: 市 → 区 → 镇街 → 村居 → 基础网格."""

LEVEL_NAMES_ZH: dict[str, str] = {
    "city": "市",
    "district": "区",
    "street": "镇街",
    "village": "村居",
    "grid": "网格",
}

CITY_CODE = "440100000000"
"""广州市: the city every bundled unit nests in."""

CRS_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")
"""Coordinate systems an input may use: WGS-84 (GPS), GCJ-02 (AMap, Tencent), BD-09 (Baidu)."""

ATTACH_METHODS: dict[str, str] = {
    "point": "坐标落格",
    "nearest": "就近落格",
    "code": "代码落格",
    "address": "地址落格",
    "unassigned": "未落格",
    "corrected": "人工更正",
}
"""How a case was tied to the grid (落格方式), in the order the ETL tries them; ``corrected``
is an office's correction, which overrides them all."""

STATION_TYPES: tuple[str, ...] = ("hall", "centre", "station", "mediation")
STATION_TYPE_ZH: dict[str, str] = {
    "hall": "区信访超市",
    "centre": "镇街综治中心",
    "station": "村居服务站",
    "mediation": "人民调解工作室",
}
"""Service stations: district petition hall, street governance centre, village service
station, people's mediation room (信访工作条例 Art. 18 joint reception)."""

# --------------------------------------------------------------------------- case attributes

CATEGORIES: tuple[str, ...] = (
    "农村农业", "自然资源", "城乡建设", "劳动和社会保障", "卫生健康", "教育", "经济管理",
    "市场监管", "交通运输", "民政与应急", "政法", "军队事务", "科技与信息产业", "生态环境",
    "文体旅游", "党务政务", "组织人事", "纪检监察", "其他",
)
"""The 19 first-level content classes (信访内容分类 一级) of the current scheme."""

OLD_CATEGORY_MAP: dict[str, str] = {
    "国土资源": "自然资源",
    "教育文体": "教育",
    "卫生计生": "卫生健康",
    "环境保护": "生态环境",
    "民政": "民政与应急",
    "商贸旅游": "市场监管",  # judgement: 商贸 (commerce) outweighs 旅游 in petitions
}
"""Older 17-class names that differ from the 19-class list; the other 11 are identical."""

PURPOSES: tuple[str, ...] = ("求决", "申诉", "揭发控告", "意见建议", "其他")
"""信访目的: demand, appeal, accusation, suggestion, other."""

CHANNELS: tuple[str, ...] = ("来访", "来信", "网上", "电话", "二维码", "网格员上报")
"""信访渠道 (Art. 17 channels, plus the QR-code and grid-worker reports Guangzhou runs)."""
CHANNEL_ONLINE = "网上"
CHANNEL_QR = "二维码"

SERVICE_CODES: dict[str, str] = {f"{i:02d}": name for i, name in enumerate(CATEGORIES, start=1)}
"""Open311 ``service_code`` → 信访内容分类 (一级): the 19 first-level classes numbered in their
order (01 农村农业 … 19 其他), so a client's URL and form values stay ASCII."""

RATINGS: tuple[str, ...] = ("满意", "基本满意", "不满意")
"""The three levels of the satisfaction rating (满意度评价)."""
GOOD_RATINGS: tuple[str, ...] = ("满意", "基本满意")
BAD_RATING = "不满意"

RATING_PENDING = "待评价"
RATED = "已评价"
RATING_EXPIRED = "超期未评价"
RATING_STATES: tuple[str, ...] = (RATING_PENDING, RATED, RATING_EXPIRED)
"""评价状态: awaiting a rating, rated, rating window passed without a rating."""

REGISTERED_LEVELS: tuple[str, ...] = ("国家", "省", "市", "区", "镇街", "村居")
"""登记机构级别: the level of the office that registered the case, from the top."""
LOCAL_LEVELS: tuple[str, ...] = ("区", "镇街", "村居")
"""登记机构级别 that count as 属地 (district level or below)."""
HIGH_LEVELS: tuple[str, ...] = ("国家", "省", "市")
"""登记机构级别 at city level or above (a case there may have skipped levels, 越级)."""

STATUSES: tuple[str, ...] = ("registered", "accepted", "replied", "closed", "not_accepted")
STATUS_ZH: dict[str, str] = {
    "registered": "登记",
    "accepted": "受理",
    "replied": "答复",
    "closed": "办结",
    "not_accepted": "不予受理",
}
"""办理状态 as stored, and how it reads."""

# --------------------------------------------------------------------------- lifecycle events

EVENT_ZH: dict[str, str] = {
    "registered": "登记",
    "accepted": "受理",
    "not_accepted": "不予受理",
    "transferred": "交办/转送",
    "extended": "延期",
    "replied": "答复",
    "closed": "办结",
    "followed_up": "回访",
    "rated": "评价",
    "reviewed": "复查",
    "rechecked": "复核",
    "corrected": "更正",
    "reattached": "重新落格",
    "updated": "信息更新",
    "created": "入库",
}
"""Events of a case's timeline (流转记录), in the order they normally happen; the last four
are bookkeeping (a correction by an office, a re-attachment after a boundary change, an
update from a later export, the first load)."""
EVENT_KINDS: tuple[str, ...] = tuple(EVENT_ZH)

LIFECYCLE_COLUMNS: dict[str, str] = {
    "registered": "registered_at",
    "accepted": "accepted_at",
    "transferred": "transferred_at",
    "extended": "extended_at",
    "replied": "replied_at",
    "closed": "closed_at",
    "followed_up": "followed_up_at",
    "rated": "rated_at",
    "reviewed": "reviewed_at",
    "rechecked": "rechecked_at",
}
"""Lifecycle event → the case column that holds when it happened (登记 … 复核). A case
whose status is ``not_accepted`` has its 不予受理 decision in ``accepted_at``."""

UPDATE_EVENTS: dict[str, str] = {
    "受理": "accepted",
    "不予受理": "not_accepted",
    "交办": "transferred",
    "延期": "extended",
    "答复": "replied",
    "办结": "closed",
    "回访": "followed_up",
    "评价": "rated",
}
"""The lifecycle events a status update may report (Open311 ``updates.json``), by their Chinese
name; :mod:`etl.transitions` holds which may follow which."""

EVENT_SOURCES: tuple[str, ...] = ("import", "api", "user", "system")
"""Where an event came from: a loaded export, the Open311 API, a user, gridgov itself."""

# --------------------------------------------------------------------------- early warning

WARNING_LEVELS: dict[str, str] = {"red": "红", "yellow": "黄"}
"""预警等级: 红 for strong signals (强信号, a rule met), 黄 for weak ones (弱信号, statistical)."""

WARNING_STATES: dict[str, str] = {
    "new": "新",
    "seen": "已查看",
    "handling": "处置中",
    "resolved": "已解除",
    "false_alarm": "误报",
}
"""States of a warning (预警状态), in the order a warning normally passes through them."""
WARNING_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("seen", "handling", "resolved", "false_alarm"),
    "seen": ("handling", "resolved", "false_alarm"),
    "handling": ("resolved", "false_alarm"),
    "resolved": ("handling",),
    "false_alarm": ("seen",),
}
"""Which state may follow which (新 → 已查看 → 处置中 → 已解除 / 误报; a closed warning can be
reopened: 已解除 → 处置中, 误报 → 已查看)."""
WARNING_OPEN_STATES: tuple[str, ...] = ("new", "seen", "handling")
"""States in which a warning still asks for work (counted on the views)."""

# --------------------------------------------------------------------------- accounts and audit

ROLES: tuple[str, ...] = ("grid_worker", "street", "district", "city", "admin")
ROLE_ZH: dict[str, str] = {
    "grid_worker": "网格员",
    "street": "镇街",
    "district": "区",
    "city": "市",
    "admin": "管理员",
}
"""Account roles (角色): a grid worker (网格员) holds a village or a basic grid below it, a street
office (镇街) a street, a district (区) a district, the city (市) the whole city; an administrator
(管理员) manages accounts and the audit trail and sees no case data unless given a scope."""
ROLE_SCOPE_LEVELS: dict[str, tuple[str, ...]] = {
    "grid_worker": ("village", "grid"),
    "street": ("street",),
    "district": ("district",),
    "city": ("city",),
    "admin": ("city", "district", "street", "village", "grid"),
}
"""The levels a role's scope unit may have (an administrator's scope is optional)."""
REVEAL_ROLES: tuple[str, ...] = ("grid_worker", "street")
"""Roles that may reveal one case's contact in their own scope, with a reason (回访 …)."""
CORRECT_ROLES: tuple[str, ...] = ("street", "district", "city")
"""Roles that may place a case in a village of their own scope (人工更正落格): the street office
that knows the place, and the district and city above it."""
REVEAL_REASONS: dict[str, str] = {"followup": "回访", "appointment": "约访", "verify": "核实"}
"""Why a contact is revealed: a follow-up call (回访), arranging a visit (约访), checking facts
(核实); the 信访工作条例 keeps petitioners' information confidential otherwise (docs/domain.md §8)."""

AUDIT_ACTIONS: dict[str, str] = {
    "login": "登录",
    "login_failed": "登录失败",
    "logout": "退出",
    "view": "查看",
    "export": "导出",
    "reveal": "查看联系方式",
    "refused": "拒绝访问",
    "account": "账户变更",
    "warning": "预警处置",
    "correct": "更正落格",
    "api": "接口调用",
    "apikey": "接口密钥变更",
    "report": "扫码上报",
}
"""What an audit row (审计记录) records."""
