"""The ``newsletter`` command line: one click group, one module per pipeline stage.

Errors are mapped here and nowhere else: a ``UserError`` is one line on stderr (a JSON object
with ``--json``) and exit code 2; any other ``NewsletterError`` is one line and exit code 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from newsletter.cli import bounces, content, db, delivery, demo, issues, subscribers, web
from newsletter.cli.context import cli
from newsletter.errors import NewsletterError, UserError

EXIT_USER_ERROR = 2
EXIT_FAILURE = 1

for module in (content, db, issues, subscribers, delivery, bounces, web, demo):
    module.register(cli)


def main(argv: list[str] | None = None) -> Any:
    wants_json = "--json" in (argv if argv is not None else sys.argv[1:])
    try:
        return cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # bad option, missing argument, ...
        _fail(exc.format_message(), EXIT_USER_ERROR, wants_json)
    except UserError as exc:
        _fail(str(exc), EXIT_USER_ERROR, wants_json)
    except NewsletterError as exc:
        _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILURE, wants_json)


def _fail(message: str, code: int, wants_json: bool) -> None:
    line = " ".join(message.split())
    if wants_json:
        click.echo(json.dumps({"error": line}), err=True)
    else:
        click.echo(f"error: {line}", err=True)
    sys.exit(code)
