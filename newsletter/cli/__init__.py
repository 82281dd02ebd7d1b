"""The ``newsletter`` command line: one click group, one module per pipeline stage.

Errors are mapped here and nowhere else: a ``UserError`` is one line on stderr (a JSON object
with ``--json``) and exit code 2; any other ``NewsletterError`` is one line and exit code 1;
anything else is a bug: one line saying so and exit code 1, and with ``--debug`` (anywhere on
the command line) its traceback as well.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

import click

from newsletter.cli import articles, bounces, content, db, delivery, demo, issues, subscribers, web
from newsletter.cli.context import cli
from newsletter.errors import NewsletterError, UserError

EXIT_USER_ERROR = 2
EXIT_FAILURE = 1
DEBUG_FLAG = "--debug"

for module in (content, articles, db, issues, subscribers, delivery, bounces, web, demo):
    module.register(cli)


def main(argv: list[str] | None = None) -> Any:
    args = list(sys.argv[1:] if argv is None else argv)
    # Taken out before click parses the line, so it may follow a subcommand too.
    debug = DEBUG_FLAG in _options(args)
    if debug:
        args.remove(DEBUG_FLAG)
    wants_json = "--json" in _options(args)
    try:
        return cli.main(args=args, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # bad option, missing argument, ...
        _fail(exc.format_message(), EXIT_USER_ERROR, wants_json, debug)
    except UserError as exc:
        _fail(str(exc), EXIT_USER_ERROR, wants_json, debug)
    except NewsletterError as exc:
        _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILURE, wants_json, debug)
    except Exception as exc:
        # A bug. The user gets one line and where to look; the traceback is one flag away.
        _fail(
            f"unexpected {type(exc).__name__}: {exc} (this is a bug; run the command again "
            f"with {DEBUG_FLAG} to see where it happened)",
            EXIT_FAILURE,
            wants_json,
            debug,
        )


def _options(args: list[str]) -> list[str]:
    """The arguments before a ``--`` (after it, "--json" is a value, not an option)."""
    return args[: args.index("--")] if "--" in args else args


def _fail(message: str, code: int, wants_json: bool, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    line = " ".join(message.split())
    if wants_json:
        click.echo(json.dumps({"error": line}), err=True)
    else:
        click.echo(f"error: {line}", err=True)
    sys.exit(code)
