"""``python -m firehook``: the command line (supervised children are started this way)."""

from __future__ import annotations

from firehook.cli.main import main

if __name__ == "__main__":
    main()
