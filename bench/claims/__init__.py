"""Claims: verdicts on the paper's claims as statistical tests, the method ranking, and the CI
regression gate's comparison.
"""
