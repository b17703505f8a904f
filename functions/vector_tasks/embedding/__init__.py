"""Deployed embedding models: the registry and the providers that turn items into vectors."""
