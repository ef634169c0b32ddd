"""`python -m bench.run --suite NAME`: the command line of bench/runner/cli.py."""
import sys

from bench.runner.cli import main

if __name__ == "__main__":
    sys.exit(main())
