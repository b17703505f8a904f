"""Shapes at the edges: the HTTP API (api.py) and queue messages (messages.py)."""
