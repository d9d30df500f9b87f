"""``taxopost serve``: the admin, the review pages and the REST API on the embedded default."""

from __future__ import annotations

import errno
from typing import Annotated

import typer

from taxopost.cli.app import app
from taxopost.cli.output import err
from taxopost.errors import InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = 8000,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            help="Request threads kept between requests, each with its database connection.",
            min=0,
            max=1024,
        ),
    ] = 32,
) -> None:
    """Run the web app (admin, review pages, REST API) in this process.

    Django's development server with DEBUG off, its request threads kept between requests with
    their database connections: enough for one team on a laptop or a lab machine; jobs started from
    the web run on a background thread of this process (or on Celery workers when
    TAXOPOST_BROKER_URL is set). Static files are served by WhiteNoise.
    On a loopback address it is a server on your own machine (development mode: the public
    key is allowed); on any other address it needs TAXOPOST_SECRET_KEY (or TAXOPOST_DEVELOPMENT=1).
    """
    from taxopost.django_setup import setup

    setup()
    from django.conf import settings
    from django.core.management import call_command

    from taxopost.security import refuse_public_key, warn_if_insecure

    if host in LOOPBACK:
        settings.DEVELOPMENT = True  # only this machine can reach it
    # One process: its own session cache is every request's (settings._session_engine).
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    refuse_public_key()
    _check_port(host, port)  # before the banner: a busy port must not be announced as the web app
    warn_if_insecure()
    if host not in settings.ALLOWED_HOSTS and host not in ("0.0.0.0", "::"):
        settings.ALLOWED_HOSTS.append(host)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    err.print(f"taxopost web app on http://{shown}:{port}/admin/  (API: /api/v1/, schema: /api/v1/schema/)")
    err.print(f"Database: {settings.DATABASES['default']['NAME']}. Stop with Ctrl-C.")
    if host in ("0.0.0.0", "::"):
        err.print("Listening on every interface: add this machine's name to TAXOPOST_ALLOWED_HOSTS.")
    from taxopost.web_server import pooled_runserver

    address = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    call_command(pooled_runserver(threads), address, use_reloader=False, use_threading=False)


def _check_port(host: str, port: int) -> None:
    """Bind ``host:port`` as the server will (address reuse on, as Django's), then let it go."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise InputError("--host", host, f"is not an address of this machine ({exc.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            busy = exc.errno == errno.EADDRINUSE
            reason = (
                "is in use: another server listens there; stop it or give another --port"
                if busy
                else (f"cannot be listened on at {host} ({exc.strerror})")
            )
            raise InputError("--port", port, reason) from None
