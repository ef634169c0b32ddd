"""Tuning a guidance method's strength: the search (`search.py`, on any evaluator of strengths, so a synthetic
response proves it: `synthetic.py`), its evaluation by ordinary cells of a suite or frontier (`cells.py`), one
more choice compared at its optima (`choices.py`: several methods, or one more parameter), and frontiers, best
against best (`frontiers.py`, `best_against_best.py`); `python -m bench.tune`."""
