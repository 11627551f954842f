"""``python -m clipviz.bench [SECTION ...]`` / ``clipviz bench``."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import SECTIONS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sections", nargs="*", metavar="SECTION",
                   help=f"sections to run (default: all of {', '.join(SECTIONS)})")
    p.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")


def run(args: argparse.Namespace) -> int:
    for name in args.sections or list(SECTIONS):
        sys.stdout.write(f"== {name}\n")
        for line in importlib.import_module(SECTIONS[name]).run(quick=args.quick):
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m clipviz.bench", description=__doc__)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
