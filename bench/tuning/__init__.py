"""Tuning a guidance method's strength: the search (`search.py`, on any evaluator of strengths, so a synthetic
response proves it) and its evaluation by ordinary cells of a suite (`cells.py`); `python -m bench.tune`."""
