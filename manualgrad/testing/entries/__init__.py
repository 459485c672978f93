"""Registry entries, one module per family (see tests/registry.py)."""
