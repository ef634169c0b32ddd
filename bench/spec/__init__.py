"""What a run is, before anything runs: the frozen spec sections and their rules, the registry type,
the error types, canonical hashing and KEY=VALUE overrides. Imports nothing heavy.
"""
