"""Statistics: bootstrap intervals and their replicates, FID extrapolated in N, cell intervals,
paired differences, power, and the lower envelope shared by verdicts and ranking.
"""
