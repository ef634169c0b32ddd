"""`python -m bench.perf`: the performance experiments and their report (bench/perf/cli.py)."""
import sys

from bench.perf.cli import main

sys.exit(main())
