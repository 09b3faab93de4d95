"""The ``loket-adapter`` command: thin click commands that parse, call a service and print.

Every failure the user can cause prints one readable line on stderr and exits non-zero. Commands live
by concern in ``server.py`` (serve, check-config, db, validate), ``messages.py`` (the message log,
resend), ``operations.py`` (mappings, jobs, werkmap) and ``retention.py`` (purge).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine

from adapter.config import Settings, load_settings, sqlite_beside
from adapter.errors import AdapterError

P = ParamSpec("P")
R = TypeVar("R")
DEFAULT_CONFIG = "config.example.toml"


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def readable_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn our own errors into one line on stderr and exit status 1 (no traceback)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except AdapterError as exc:
            _fail(str(exc))
        except OSError as exc:  # e.g. the SQLite file's folder cannot be created
            _fail(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError  # here, so `validate` does not pay for the import

            if not isinstance(exc, SQLAlchemyError):
                raise
            # A store failure the store layer did not translate (e.g. "file is not a database").
            orig = getattr(exc, "orig", None)
            text = (str(orig) if orig is not None else str(exc)).strip()
            _fail(f"store unavailable: {text.splitlines()[0] if text else type(exc).__name__}")

    return wrapper


def _settings(ctx: click.Context, db: str | None = None) -> Settings:
    """The settings; unset variables of targets, loket and werkmap are left for the commands that reach them
    (``open_services`` and ``mappings check --online`` call ``Settings.require_env``)."""
    path = ctx.obj["config"]
    settings = load_settings(path, strict_env=False)
    if db:  # given on the command line: a relative SQLite file is relative to where the command runs
        settings = settings.with_overrides(**{"store.url": sqlite_beside(db, "<defaults>")})
    return settings


def _engine(settings: Settings) -> Engine:
    """The store for a command that only reads or resets rows (no writer, no workers)."""
    from adapter.store.db import make_engine

    return make_engine(settings.store_url(), lock_timeout_ms=settings.store.lock_timeout_ms)


class _OneLineErrors(click.Group):
    """click's usage errors (a wrong option, a missing argument) as one line on stderr, like our own errors
    (``error: …``, exit status 2), instead of click's usage block: an operator's script or a log reader sees
    one line per mistake."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            _fail(f"{exc.format_message()}{where}", exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted")
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_OneLineErrors)
@click.version_option(package_name="loket-adapter", prog_name="loket-adapter")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=lambda: os.environ.get("LOKET_ADAPTER_CONFIG", DEFAULT_CONFIG),
    show_default=f"$LOKET_ADAPTER_CONFIG or {DEFAULT_CONFIG}",
    help="TOML configuration file.",
)
@click.pass_context
def main(ctx: click.Context, config: str) -> None:
    """Koppeling between the Omgevingsloket and a zaaksysteem."""
    os.umask(0o077)  # whatever any command creates (database, WAL, documents, exports) is the service's alone
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


def _parse_since(value: str | None) -> datetime | None:
    from adapter.text import parse_moment

    if not value:
        return None
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--since'") from None


def _safe_url(url: str) -> str:
    from adapter.envsubst import redact_url

    return redact_url(url)


# Register the commands (they import ``main`` and the helpers above).
from adapter.cli import advies, messages, operations, postbox, retention, server, simulate, users  # noqa: E402, F401
