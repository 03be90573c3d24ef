"""The `gb28181` command: options -> config -> gb28181.server. No protocol logic here."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from gb28181 import config as config_mod
from gb28181 import server


@click.group()
@click.version_option("0.1.0", prog_name="gb28181")
def main() -> None:
    """GB/T 28181 platform: SIP signalling server and device registry."""


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config file.")
@click.option("--sip-id", help="Platform SIP ID (20 digits).")
@click.option("--domain", help="SIP domain (default: first 10 digits of the ID).")
@click.option("--listen", multiple=True, help="udp://HOST:PORT or tcp://HOST:PORT (repeatable).")
@click.option("--db", help="Database file.")
@click.option("--password", help="Default device password.")
@click.option("--admin-listen", help="Admin API HOST:PORT.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(config_path: str | None, log_level: str, **flags: object) -> None:
    """Run the platform."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_mod.override(config_mod.load(config_path), **flags)
    except config_mod.ConfigError as exc:
        click.echo(f"gb28181: config error: {exc}", err=True)
        sys.exit(2)
    if cfg.media or cfg.upstream:
        logging.getLogger("gb28181").warning("[media] and [[upstream]] are not implemented in this version; ignored")
    try:
        import uvloop
    except ImportError:  # uvloop does not exist on Windows
        code = asyncio.run(server.serve(cfg))
    else:
        code = uvloop.run(server.serve(cfg))
    sys.exit(code)


if __name__ == "__main__":
    main()
