"""CLI commands for accounts and the audit trail: ``gridgov users …`` and ``gridgov audit …``.

Thin: each command parses its options and calls :mod:`geo.accounts` or :mod:`geo.audit`. The
operating-system user running the command is the actor of every audit row it writes
(``cli:<user>``). One-time passwords are printed (or, for an import, written to the file named
by ``--passwords``) once and never stored: only their argon2 hash is.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
import pandas as pd

from geo import accounts, audit
from geo.store import require_store
from geo.tabular import write_csv
from geo.vocab import AUDIT_ACTIONS, ROLE_ZH, ROLES

ROLE_HELP = "角色 / role: " + ", ".join(f"{r} ({ROLE_ZH[r]})" for r in ROLES)


def _store(ctx: click.Context):  # noqa: ANN202 - (engine, settings)
    store = ctx.obj["store"]
    require_store(store.engine)
    return store.engine, store.settings


def _role(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    role = accounts.parse_role(value)
    if role not in ROLES:
        raise click.BadParameter(f"未知角色 {value!r} / unknown role; {ROLE_HELP}")
    return role


@click.group()
def users() -> None:
    """账户：新建、列出、停用、重置密码、批量导入 / accounts: add, list, disable, reset, import."""


@users.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="姓名 / display name")
@click.option("--role", required=True, callback=_role, help=ROLE_HELP)
@click.option("--scope", "scope_code", default=None,
              help="辖区代码 / scope unit code (12 digits; 15 for a basic grid; none for 管理员)")
@click.option("--valid-from", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="生效日期 / first day the account may log in")
@click.option("--valid-to", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="失效日期 / the account may not log in from this day on")
@click.pass_context
def users_add(ctx: click.Context, username: str, display_name: str, role: str,
              scope_code: str | None, valid_from: datetime | None,
              valid_to: datetime | None) -> None:
    """新建账户并打印一次性密码 / create an account and print its one-time password."""
    engine, settings = _store(ctx)
    password = accounts.new_password()
    account = accounts.add_user(engine, username=username.lower(), display_name=display_name,
                                role=role, scope_code=scope_code, password=password,
                                settings=settings, actor=accounts.cli_actor(),
                                valid_from=valid_from, valid_to=valid_to)
    click.echo(f"已新建 {account.username}（{account.role_zh}，辖区 {account.scope_code or '无'}）"
               f" / created {account.username} ({account.role})")
    click.echo(f"一次性密码 / one-time password: {password}")
    click.echo("首次登录须修改密码 / the password must be changed at first login", err=True)


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """列出账户 / list every account with its role, scope and state."""
    engine, _settings = _store(ctx)
    now = datetime.now()
    for a in accounts.list_users(engine):
        state = "停用 disabled" if not a.active else (
            "锁定 locked" if a.locked_until and a.locked_until > now else "正常 active")
        valid = (f" {a.valid_from:%Y-%m-%d}–" if a.valid_from else " –") + (
            f"{a.valid_to:%Y-%m-%d}" if a.valid_to else "") if a.valid_from or a.valid_to else ""
        click.echo(f"{a.username}\t{a.display_name}\t{a.role_zh}({a.role})\t"
                   f"{a.scope_code or '-'}\t{state}{valid}{' 演示 demo' if a.demo else ''}")


@users.command("disable")
@click.argument("username")
@click.pass_context
def users_disable(ctx: click.Context, username: str) -> None:
    """停用账户（立即结束其会话）/ disable an account and end its sessions at once."""
    engine, _settings = _store(ctx)
    accounts.disable_user(engine, username.lower(), actor=accounts.cli_actor())
    click.echo(f"已停用 {username} / disabled {username}")


@users.command("reset-password")
@click.argument("username")
@click.pass_context
def users_reset(ctx: click.Context, username: str) -> None:
    """重置密码并解锁，打印一次性密码 / reset, unlock, print a one-time password."""
    engine, settings = _store(ctx)
    password = accounts.new_password()
    accounts.reset_password(engine, username.lower(), password, settings=settings,
                            actor=accounts.cli_actor())
    click.echo(f"已重置 {username} 的密码并解锁 / reset and unlocked {username}")
    click.echo(f"一次性密码 / one-time password: {password}")


@users.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--passwords", "passwords_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="一次性密码写入此 CSV（请妥善转交后删除）/ write the one-time passwords here")
@click.pass_context
def users_import(ctx: click.Context, file: Path, passwords_file: Path) -> None:
    """批量导入名单（用户名,姓名,角色,辖区代码[,有效期起,有效期止]）/ import a staff list (CSV).

    All or nothing: any bad row rejects the file, and every bad row is listed.
    """
    engine, settings = _store(ctx)
    result = accounts.import_users(engine, file, settings=settings, actor=accounts.cli_actor())
    frame = pd.DataFrame(result.created, columns=["用户名", "一次性密码"])
    write_csv([frame], passwords_file)
    passwords_file.chmod(0o600)
    click.echo(f"已导入 {len(result.created)} 个账户，一次性密码见 {passwords_file} / imported "
               f"{len(result.created)} accounts; one-time passwords in {passwords_file}")


@click.group("audit")
def audit_group() -> None:
    """审计记录：导出、校验 / the audit trail: export, verify."""


@audit_group.command("export")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M"]),
              default=None, help="起始时间（含）/ from (inclusive)")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M"]),
              default=None, help="截止时间（不含）/ to (exclusive)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="输出 CSV（默认标准输出）/ output CSV (default: standard output)")
@click.pass_context
def audit_export(ctx: click.Context, date_from: datetime | None, date_to: datetime | None,
                 output: Path | None) -> None:
    """导出审计记录 CSV / export audit rows as CSV (with both hashes, for verification)."""
    engine, _settings = _store(ctx)
    trail = audit.read_trail(engine, date_from=date_from, date_to=date_to)
    trail["action"] = trail["action"].map(lambda a: f"{AUDIT_ACTIONS.get(a, a)}({a})")
    frame = trail.rename(columns=audit.EXPORT_COLUMNS_ZH)
    if output is None:
        sys.stdout.write(frame.to_csv(index=False))
    else:
        write_csv([frame], output)
        click.echo(f"已导出 {len(frame)} 条审计记录 / exported {len(frame)} audit rows to {output}",
                   err=True)


@audit_group.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """校验审计哈希链；发现篡改时退出码 1 / verify the hash chain; exit 1 on tampering."""
    engine, _settings = _store(ctx)
    result = audit.verify(engine)
    if result.ok:
        click.echo(f"审计记录完整：{result.rows} 行，末行哈希 {result.head_hash} / audit trail "
                   f"intact: {result.rows} rows, head hash {result.head_hash}")
        return
    click.echo(f"审计记录被篡改：发现 {len(result.problems)} 处问题 / the audit trail was tampered "
               f"with: {len(result.problems)} problem(s)")
    for problem in result.problems:
        click.echo(f"  - {problem}")
    ctx.exit(1)


def echo_demo_accounts(store) -> None:  # noqa: ANN001 - a geo.store.Store
    """Create one demo account per role and print their names and the password (gridgov demo)."""
    password, created = accounts.create_demo_accounts(store.engine, settings=store.settings)
    click.echo("演示账户（仅在 GRIDGOV_MODE=demo 时可登录）/ demo accounts (log in only with "
               "GRIDGOV_MODE=demo):")
    for account in created:
        click.echo(f"  {account.username:<14} {account.role_zh}（{account.role}） 辖区 / scope "
                   f"{account.scope_code or '—'}")
    click.echo(f"演示密码 / demo password: {password}")


commands = [users, audit_group]
