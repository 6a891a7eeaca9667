"""The store's schema: one set of tables for SQLite (embedded) and PostGIS (server).

Geometry is WKB in a BLOB on SQLite (this Python cannot load SpatiaLite, so spatial
work happens in shapely/geopandas) and a real ``geometry(…, 4326)`` column with a GiST
index on PostGIS; :class:`Geometry` hides the difference. Case and station points are
plain ``lon``/``lat`` columns (WGS-84) on both, which keeps bulk loading fast; on
PostGIS a migration adds a generated ``geom`` point column with a GiST index.

Tables
------
boundary_version  one row per grid load or boundary import (边界版本)
grid_unit         every grid cell of every level, one table (mapit style), versioned
station           service stations (区信访超市, 镇街综治中心, 村居服务站, 人民调解工作室)
cases             petition cases (信访件), one row per 信访件编号
case_event        status-change history of cases (流转记录)
placement_correction  an office's correction of where a case lies (人工更正), kept across ingests
store_version     one counter every data write bumps, so caches know when to refresh
ingest_run        the run ledger: every ingest/reattach/demo run with its reconciliation
reject            every rejected input row with its line number, raw values and reason
warning           early warnings (预警): one row per warning, with its current state
warning_event     every state change of a warning (who, when, from, to, note)
warning_run       every computation of the warnings, with the store version it read
users             accounts: role, scope unit, validity, argon2 password hash, lockout state
user_session      server-side login sessions (the cookie carries only a random token)
audit_log         the append-only audit trail, each row chained to the previous one's hash
audit_head        the chain's last sequence number and hash (one row; locks concurrent writers)
api_key           Open311 API keys: name, scope unit, channel, SHA-256 of the token, revocation
intake_request    every case that came in live (API, QR form): its source, Idempotency-Key and
                  submission hash, so a repeated submission returns the first case
report_point      QR-code reporting points (信访受理二维码): the token in the poster's URL → unit
"""

from __future__ import annotations

from typing import Any

import shapely
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class Geometry(TypeDecorator):
    """A geometry column: shapely in Python, WKB on SQLite, PostGIS geometry on PostgreSQL."""

    impl = LargeBinary
    cache_ok = True
    # geoalchemy2's DDL hooks read these; the GiST index is created by the migration.
    spatial_index = False
    use_N_D_index = False

    def __init__(self, geometry_type: str = "MULTIPOLYGON", srid: int = 4326) -> None:
        super().__init__()
        self.geometry_type = geometry_type
        self.srid = srid

    def load_dialect_impl(self, dialect: Dialect | None) -> Any:
        if dialect is None:  # geoalchemy2's DDL hooks probe without a dialect
            return LargeBinary()
        if dialect.name == "postgresql":
            import geoalchemy2  # PostGIS only: a SQLite store never loads it (7 MB per process)

            return dialect.type_descriptor(
                geoalchemy2.Geometry(self.geometry_type, srid=self.srid, spatial_index=False)
            )
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        wkb = value if isinstance(value, bytes) else shapely.to_wkb(value)
        if dialect.name == "postgresql":
            import geoalchemy2

            return geoalchemy2.WKBElement(wkb, srid=self.srid)
        return wkb

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            import geoalchemy2.elements
            import geoalchemy2.shape

            if isinstance(value, geoalchemy2.elements._SpatialElement):
                return geoalchemy2.shape.to_shape(value)
        return shapely.from_wkb(bytes(value))


boundary_version = Table(
    "boundary_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False),
    Column("kind", String(16), nullable=False, doc="bundled | import"),
    Column("level", String(16), doc="level imported; NULL for the bundled grid"),
    Column("source_file", Text),
    Column("sha256", String(64)),
    Column("note", Text),
)

grid_unit = Table(
    "grid_unit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(15), nullable=False),
    Column("name", Text, nullable=False),
    Column("level", String(16), nullable=False),
    Column("parent_code", String(15)),
    Column("kind", String(16), doc="街道/镇/居委会/村委会 … as the code says"),
    Column("geometry", Geometry("MULTIPOLYGON"), nullable=False),
    Column("web_geometry", Geometry("MULTIPOLYGON"), doc="simplified copy for maps"),
    Column("area_km2", Float, nullable=False),
    Column("population", Integer),
    Column("population_estimated", Boolean, nullable=False, default=False),
    Column("geometry_source", String(16), nullable=False, doc="official/generated/imported"),
    Column("boundary_version", Integer, ForeignKey("boundary_version.version"), nullable=False),
    Column("is_current", Boolean, nullable=False, default=True),
    Index("ix_grid_unit_code_version", "code", "boundary_version", unique=True),
    Index("ix_grid_unit_level_current", "level", "is_current"),
    Index("ix_grid_unit_parent", "parent_code"),
)

station = Table(
    "station",
    metadata,
    Column("station_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("station_type", String(16), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("serves_code", String(15), doc="the unit it serves (12-digit code)"),
    Column("village_code", String(15)),
    Column("street_code", String(15)),
    Column("district_code", String(15)),
    Column("address", Text),
    Column("synthetic", Boolean, nullable=False, default=False),
    Column("run_id", Integer),
)

cases = Table(
    "cases",
    metadata,
    Column("case_id", String(64), primary_key=True, doc="信访件编号"),
    Column("registered_at", DateTime, nullable=False, doc="登记"),
    Column("transferred_at", DateTime, doc="转送/交办"),
    Column("accepted_at", DateTime, doc="受理"),
    Column("due_at", DateTime, doc="办理期限"),
    Column("extended", Boolean, nullable=False, default=False, doc="延期 (+30 days)"),
    Column("extended_at", DateTime, doc="延期 approved"),
    Column("replied_at", DateTime, doc="答复"),
    Column("closed_at", DateTime, doc="办结"),
    Column("followed_up_at", DateTime, doc="回访"),
    Column("rating", String(8), doc="满意/基本满意/不满意"),
    Column("rated_at", DateTime),
    Column("rating_state", String(8), doc="待评价/已评价/超期未评价"),
    Column("reviewed_at", DateTime, doc="复查 opinion given (Art. 35)"),
    Column("rechecked_at", DateTime, doc="复核 opinion given (Art. 36)"),
    Column("status", String(16), nullable=False, doc="registered/accepted/replied/closed/not_accepted"),
    Column("category", String(32), doc="信访内容分类 (19 first-level classes)"),
    Column("purpose", String(16), doc="求决/申诉/揭发控告/意见建议/其他"),
    Column("channel", String(16), doc="来访/来信/网上/电话/二维码/网格员上报"),
    Column("is_repeat", Boolean, nullable=False, default=False, doc="重件 (vs 初件)"),
    Column("repeat_of", String(64), doc="the case it repeats, where known"),
    Column("is_backlog", Boolean, nullable=False, default=False, doc="积案"),
    Column("backlog_leader", Text, doc="包案领导"),
    Column("backlog_at", DateTime, doc="listed as 积案 (flagged for clearance)"),
    Column("registered_level", String(16), doc="登记机构级别: 国家/省/市/区/镇街/村居"),
    Column("handling_unit", Text, doc="承办单位"),
    Column("people_count", Integer, doc="涉及人数 (5 or more: 集体访)"),
    Column("lon", Float, doc="WGS-84"),
    Column("lat", Float, doc="WGS-84"),
    Column("address", Text),
    Column("village_code", String(15)),
    Column("street_code", String(15)),
    Column("district_code", String(15)),
    Column("grid_code", String(15)),
    Column("attach_method", String(16), nullable=False, doc="point/nearest/code/address/unassigned"),
    Column("attach_distance_m", Float),
    Column("attach_level", String(16),
           doc="level reached by code/address/correction (village/street/…); empty for a point"),
    Column("attach_note", Text, doc="why not finer, e.g. 村居名称不唯一 / 村居与镇街不符 / 未识别村居"),
    Column("attach_candidates", Text, doc="the units the text could mean: 'code 名称; …'"),
    Column("address_match", Text, doc="which parts of the address matched, and how (全称/简称/…)"),
    Column("boundary_version", Integer),
    Column("petitioner_name", Text),
    Column("petitioner_phone", Text),
    Column("petitioner_id_hash", String(64), doc="salted SHA-256 of the ID number"),
    Column("description", Text),
    Column("synthetic", Boolean, nullable=False, default=False),
    Column("row_hash", String(32), nullable=False, doc="hash of the source values, for unchanged"),
    Column("run_id", Integer, doc="the run that last wrote this case"),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_cases_village", "village_code"),
    Index("ix_cases_street", "street_code"),
    Index("ix_cases_district", "district_code"),
    Index("ix_cases_registered", "registered_at"),
)

case_event = Table(
    "case_event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("event", String(32), nullable=False, doc="a geo.vocab.EVENT_KINDS value"),
    Column("status", String(16)),
    Column("detail", Text),
    Column("run_id", Integer),
    Column("recorded_at", DateTime, doc="when gridgov learnt of it (``at`` is when it happened)"),
    Column("source", String(16), doc="import/api/user/system"),
    Column("actor", Text, doc="the user or API key behind it, for user and api events"),
    Index("ix_case_event_case", "case_id"),
)

placement_correction = Table(
    "placement_correction",
    metadata,
    Column("case_id", String(64), primary_key=True, doc="信访件编号"),
    Column("village_code", String(15), nullable=False, doc="the village the office placed it in"),
    Column("actor", Text, nullable=False, doc="who corrected it"),
    Column("note", Text),
    Column("corrected_at", DateTime, nullable=False),
)

store_version = Table(
    "store_version",
    metadata,
    Column("id", Integer, primary_key=True, doc="always 1: one row"),
    Column("version", Integer, nullable=False, doc="bumped by every write of data"),
    Column("changed_at", DateTime),
)

ingest_run = Table(
    "ingest_run",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False, doc="cases/stations/reattach/demo"),
    Column("source_file", Text),
    Column("sha256", String(64)),
    Column("source_crs", String(8)),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(16), nullable=False, doc="running/ok/failed/aborted"),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("inserted", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("rejected", Integer, nullable=False, default=0),
    Column("unassigned", Integer, nullable=False, default=0),
    Column("swapped_fixed", Integer, nullable=False, default=0),
    Column("moved", Integer, nullable=False, default=0, doc="reattach: cases whose cell changed"),
    Column("duration_s", Float),
    Column("message", Text),
    Column("pid", Integer, doc="process that ran it (to tell a killed run)"),
    Column("host", String(255)),
)

reject = Table(
    "reject",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("ingest_run.run_id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("reason_code", String(32), nullable=False),
    Column("reason", Text, nullable=False, doc="in Chinese, for a clerk"),
    Column("raw", Text, nullable=False, doc="the row's raw values as JSON (personal fields masked)"),
    Index("ix_reject_run", "run_id"),
)

warning = Table(
    "warning",
    metadata,
    Column("warning_id", String(32), primary_key=True,
           doc="stable: a hash of the rule, its subject and period (same inputs, same id)"),
    Column("rule", String(32), nullable=False, doc="layers.warnings.definitions.RULES key"),
    Column("rule_version", Integer, nullable=False),
    Column("level", String(8), nullable=False, doc="red (强信号) / yellow (弱信号)"),
    Column("unit_code", String(15), nullable=False, doc="the unit the warning is about"),
    Column("unit_level", String(16), nullable=False),
    Column("category", String(32), doc="信访内容分类, where the rule is per category"),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("observed", Float, nullable=False),
    Column("expected", Float, doc="what the rule or the baseline expects"),
    Column("statistic", Float, doc="the test statistic (z, Gi* z) of a statistical warning"),
    Column("p_value", Float),
    Column("q_value", Float, doc="Benjamini-Hochberg adjusted p-value"),
    Column("case_count", Integer, nullable=False),
    Column("case_ids", Text, nullable=False, doc="信访件编号, semicolon-separated"),
    Column("reason", Text, nullable=False, doc="one Chinese sentence saying why"),
    Column("lon", Float, doc="WGS-84 point of a place-bound warning (cluster, case)"),
    Column("lat", Float),
    Column("radius_m", Float, doc="the cluster radius drawn on the map"),
    Column("as_of", DateTime, nullable=False, doc="data date of the computation that found it"),
    Column("active", Boolean, nullable=False, default=True, doc="found by the latest run"),
    Column("state", String(16), nullable=False, default="new", doc="geo.vocab.WARNING_STATES"),
    Column("state_at", DateTime),
    Column("state_by", Text, doc="who set the state"),
    Column("state_note", Text),
    Column("created_at", DateTime, nullable=False),
    Index("ix_warning_unit", "unit_code"),
    Index("ix_warning_rule_level", "rule", "level"),
)

warning_event = Table(
    "warning_event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("warning_id", String(32), ForeignKey("warning.warning_id"), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("actor", Text, nullable=False, doc="the user (or system) who changed the state"),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("note", Text),
    Index("ix_warning_event_warning", "warning_id"),
)

warning_run = Table(
    "warning_run",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("as_of", DateTime, nullable=False, doc="the data date the rules were judged at"),
    Column("as_of_given", Boolean, nullable=False, default=False,
           doc="as_of was chosen by the caller (else the data's own date)"),
    Column("store_version", Integer, nullable=False, doc="the case data the run read"),
    Column("rules_version", String(64), nullable=False, doc="rule versions + settings hash"),
    Column("status", String(16), nullable=False, doc="running/ok/failed"),
    Column("found", Integer, nullable=False, default=0),
    Column("inserted", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("deactivated", Integer, nullable=False, default=0),
    Column("duration_s", Float),
    Column("message", Text),
    Column("hot_units", Text, doc="JSON: code → hot/emerging of every hot village (the map's "
                                  "layer, so the server never recomputes Gi*)"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("role", String(16), nullable=False, doc="a geo.vocab.ROLES value"),
    Column("scope_code", String(15), doc="the unit the account sees; NULL for an administrator"),
    Column("active", Boolean, nullable=False, default=True),
    Column("valid_from", DateTime),
    Column("valid_to", DateTime),
    Column("password_hash", Text, nullable=False, doc="argon2id (argon2-cffi)"),
    Column("must_change_password", Boolean, nullable=False, default=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime),
    Column("demo", Boolean, nullable=False, default=False, doc="created by gridgov demo"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("password_changed_at", DateTime),
    Column("last_login_at", DateTime),
)

user_session = Table(
    "user_session",
    metadata,
    Column("token_hash", String(64), primary_key=True, doc="SHA-256 of the cookie's token"),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("ended_at", DateTime),
    Column("end_reason", String(16), doc="logout/idle/disabled"),
    Column("address", String(64)),
    Index("ix_user_session_user", "user_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False, doc="1, 2, 3 … without gaps"),
    Column("at", DateTime, nullable=False),
    Column("username", String(64)),
    Column("role", String(16)),
    Column("scope_code", String(15)),
    Column("action", String(16), nullable=False, doc="a geo.vocab.AUDIT_ACTIONS value"),
    Column("unit_code", String(15)),
    Column("case_ids", Text, doc="the cases concerned, comma-separated (never contact data)"),
    Column("count", Integer, doc="rows exported or cases shown"),
    Column("address", String(64), doc="client address"),
    Column("detail", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
    Index("ix_audit_log_address_at", "address", "at"),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_username_at", "username", "at"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, doc="always 1: one row"),
    Column("seq", Integer, nullable=False, doc="the last row's seq (0: empty trail)"),
    Column("row_hash", String(64), nullable=False, doc="the last row's hash"),
)

api_key = Table(
    "api_key",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True, doc="who holds it (a system, a site)"),
    Column("token_hash", String(64), nullable=False, unique=True,
           doc="SHA-256 of the token (the token itself is shown once and never stored)"),
    Column("token_prefix", String(12), nullable=False, doc="first characters, to tell keys apart"),
    Column("scope_code", String(15), nullable=False, doc="the unit the key may write and read"),
    Column("channel", String(16), nullable=False, doc="信访渠道 of the cases it creates"),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)

intake_request = Table(
    "intake_request",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(80), nullable=False, doc="api:<key name> or qr:<point token>"),
    Column("idempotency_key", String(128), doc="the client's Idempotency-Key header"),
    Column("body_hash", String(64), nullable=False, doc="SHA-256 of the submission's values"),
    Column("case_id", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("address", String(64), doc="client address (QR form rate limit)"),
    Index("ix_intake_request_key", "source", "idempotency_key", unique=True),
    Index("ix_intake_request_body", "source", "body_hash", "created_at"),
    Index("ix_intake_request_case", "case_id"),
    Index("ix_intake_request_address", "address", "created_at"),
)

report_point = Table(
    "report_point",
    metadata,
    Column("token", String(32), primary_key=True, doc="random, in the poster's URL /report/<token>"),
    Column("unit_code", String(15), nullable=False, doc="the village or street it reports into"),
    Column("created_at", DateTime, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)
