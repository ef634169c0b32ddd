"""`python -m bench.regression --suite ci`: re-measure the CI gate's baseline and tolerances
(bench/runner/baseline.py)."""
import sys

from bench.runner.baseline import main

if __name__ == "__main__":
    sys.exit(main())
