"""Files, processes and machines: atomic stores and locks, checkpoints, torchrun helpers, the
environment record, progress lines, the stage ledger and sample grids.
"""
