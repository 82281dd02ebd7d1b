"""``newsletter web [--host] [--port] [--workers N]``: serve the web app with uvicorn.

With several workers, each is its own process built by ``newsletter.web.app:create_app``;
they share nothing but the database and Redis, and report request metrics through
prometheus-client's multiprocess mode (a fresh ``PROMETHEUS_MULTIPROC_DIR`` per run). The web
app is imported only here, after that directory is set, because prometheus-client reads it
when it is first imported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import click

from newsletter.cli.context import database
from newsletter.errors import InvalidInput

APP_FACTORY = "newsletter.web.app:create_app"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def register(cli: click.Group) -> None:
    cli.add_command(web)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (one per core is a good start).",
)
def web(host: str, port: int, workers: int) -> None:
    """Serve the subscribers' pages, webhooks, /healthz and /metrics until interrupted.

    Put it behind a TLS proxy and list that proxy in NEWSLETTER_TRUSTED_PROXIES.
    """
    # A bad variable or a database that is not ready is one line here, not an error page on
    # every request (embedded mode creates or upgrades the SQLite file, as every command does).
    config = database()
    check_port_free(host, port)
    click.echo(f"serving {config.base_url} on http://{host}:{port} ({workers} workers)")
    serve(APP_FACTORY, host=host, port=port, workers=workers)


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    listening: socket.socket | None = None,
) -> None:
    """Run uvicorn on ``app`` (an app, or the factory's import string) until Ctrl-C.

    An app object is served by this one process, with its in-process metrics, on
    ``listening`` when given (a socket the caller bound, so the address answers before the
    server has started); the factory's import string may run in several workers, in
    multiprocess mode.
    """
    import uvicorn

    options: dict[str, Any] = {
        # The app reads X-Forwarded-* itself, from NEWSLETTER_TRUSTED_PROXIES only.
        "proxy_headers": False,
        "server_header": False,
        # Access logs would write every unsubscribe and confirmation token to disk;
        # /metrics times the requests instead.
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    if listening is not None:
        # The server re-raises the Ctrl-C it shut down on; uvicorn.run swallows it, as here.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[listening])
        return
    with metrics_directory() if isinstance(app, str) else nullcontext():
        uvicorn.run(
            app,
            factory=isinstance(app, str),
            host=host,
            port=port,
            workers=workers if isinstance(app, str) else None,
            **options,
        )


def check_port_free(host: str, port: int) -> None:
    """One line for a port that is taken (uvicorn would log it and exit 3 after starting up).

    The port is bound and released at once, as uvicorn binds it (SO_REUSEADDR); another
    process could still take it in between, and uvicorn then reports that itself.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:  # taken, not ours to bind (< 1024), or no such address here
            raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


@contextmanager
def metrics_directory() -> Iterator[None]:
    """A fresh multiprocess directory for this run, unless the operator gave one."""
    if os.environ.get(MULTIPROCESS_ENV):
        yield
        return
    path = tempfile.mkdtemp(prefix="newsletter-metrics-")
    os.environ[MULTIPROCESS_ENV] = path
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_ENV]
        shutil.rmtree(path, ignore_errors=True)
