"""Thin adapters around the outside world: git, Node-RED, secrets, state, clock."""
