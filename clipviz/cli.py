"""The ``clipviz`` command line.

Each subcommand lives in its own module, imported only when used, with two
functions: ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("clipviz.web.serve", "start the web app (development server)"),
    "bench": ("clipviz.bench.__main__", "run the benchmark scripts"),
    "train": ("clipviz.training.cli_train", "train an RNN on one of the paper's tasks"),
    "reproduce": ("clipviz.training.reproduce", "rerun the paper's Table 1, Table 2 or Figure 7, or "
                  "measure section 2.4's wall"),
    "data": ("clipviz.fetch", "download the public data sets (clipviz data fetch NAME)"),
    "store": ("clipviz.store.cli", "look at a run store, or copy one into another (SQLite -> PostgreSQL)"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="clipviz", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``clipviz`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except ValueError as exc:  # bad arguments: a message, not a traceback
        print(f"clipviz {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
