"""Datasets: the registry of offline image sets, their splits and their ranges.
"""
