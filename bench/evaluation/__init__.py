"""Evaluation: feature extractors (the domain evaluator, the FID Inception), reference features,
point metrics, and a cell's scoring with its intervals.
"""
