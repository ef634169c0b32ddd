"""Performance experiments (python -m bench.perf): throughput, the fast-path decision, feature
extraction, roofline, and their report under results/perf/.
"""
