"""`python -m bench`: run the benchmark scenarios (see bench/cli.py for the options)."""

from bench.cli import main

raise SystemExit(main())
