"""Test support shipped with the package: the op/module registry behind the generic tests and
``manualgrad check``."""
