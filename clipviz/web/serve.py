"""``clipviz serve``: the development server (production: ``gunicorn app:server``)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.add_argument("--debug", action="store_true", help="Dash debug mode with hot reload")


def run(args: argparse.Namespace) -> int:
    from .app import create_app

    create_app().run(host=args.host, port=args.port, debug=args.debug)
    return 0
