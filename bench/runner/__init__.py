"""Running suites: validation before work, the cell's models, one cell, the scheduler with locks,
rescoring, plans and the command line (python -m bench.run).
"""
