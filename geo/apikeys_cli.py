"""CLI commands for Open311 API keys: ``gridgov apikeys add|list|revoke``.

Thin: each command parses its options and calls :mod:`geo.apikeys`. The token is printed once
by ``add`` and never stored (only its SHA-256 is); the operating-system user running the
command is the actor of the audit row (``cli:<user>``).
"""

from __future__ import annotations

import click

from geo import apikeys
from geo.accounts import cli_actor
from geo.store import require_store
from geo.vocab import CHANNEL_ONLINE, CHANNELS


def _engine(ctx: click.Context):  # noqa: ANN202 - an Engine
    store = ctx.obj["store"]
    require_store(store.engine)
    return store.engine


@click.group("apikeys")
def apikeys_group() -> None:
    """Open311 接口密钥：新建、列出、吊销 / Open311 API keys: add, list, revoke."""


@apikeys_group.command("add")
@click.option("--name", required=True, help="密钥名称（调用方系统）/ key name (the calling system)")
@click.option("--scope", "scope_code", required=True,
              help="辖区代码：密钥只能提交、查询该单位内的信访件 / scope unit code (12 digits)")
@click.option("--channel", default=CHANNEL_ONLINE, show_default=True,
              type=click.Choice(CHANNELS),
              help="所建信访件的渠道 / channel of the cases the key creates")
@click.pass_context
def apikeys_add(ctx: click.Context, name: str, scope_code: str, channel: str) -> None:
    """新建密钥并打印一次（只存其摘要）/ create a key and print its token once."""
    key, token = apikeys.add_key(_engine(ctx), name=name, scope_code=scope_code, channel=channel,
                                 actor=cli_actor())
    click.echo(f"已新建接口密钥 {key.name}（辖区 {key.scope_code}，渠道 {key.channel}）/ created "
               f"API key {key.name}")
    click.echo(f"密钥 / token: {token}")
    click.echo("密钥只显示这一次，请妥善转交 / the token is shown only this once", err=True)


@apikeys_group.command("list")
@click.pass_context
def apikeys_list(ctx: click.Context) -> None:
    """列出密钥（不含密钥本身）/ list keys (never the tokens)."""
    for key in apikeys.list_keys(_engine(ctx)):
        state = "有效 active" if key.active else f"已吊销 revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        click.echo(f"{key.name}\t{key.token_prefix}…\t{key.scope_code}\t{key.channel}\t{state}")


@apikeys_group.command("revoke")
@click.argument("name")
@click.pass_context
def apikeys_revoke(ctx: click.Context, name: str) -> None:
    """吊销密钥（立即生效）/ revoke a key (refused from its next call on)."""
    key = apikeys.revoke_key(_engine(ctx), name, actor=cli_actor())
    click.echo(f"已吊销接口密钥 {key.name} / revoked API key {key.name}")


commands = [apikeys_group]
