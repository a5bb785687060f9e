"""Shared, model-free helpers used by several apps (CSV reading and writing)."""
