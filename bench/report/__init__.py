"""Reports from stored results only: the suite's table, its figures and report.md. Loads neither
torch nor timm.
"""
