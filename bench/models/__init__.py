"""Diffusion models: the VP process math, the UNet, training with label dropout, and how a network
is run fast on this machine (precision, memory format, compile, decided by measuring).
"""
