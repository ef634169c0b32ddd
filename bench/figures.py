"""`python -m bench.figures --suite NAME`: rebuild a suite's table, figures and report from stored
results (bench/report/cli.py)."""
import sys

from bench.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
