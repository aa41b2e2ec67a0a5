"""The pure core: values and decisions, no I/O.

Nothing in this package imports subprocess, requests, grpc, sqlite3 or os.environ;
adapters feed it values and carry out what it decides.
"""
