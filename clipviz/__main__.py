"""``python -m clipviz ...``: the same command line as the ``clipviz`` script (clipviz.cli)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
