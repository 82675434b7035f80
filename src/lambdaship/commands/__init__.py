"""CLI commands, one module per concept. Each module defines ``register(app)``.

Shared options and output helpers live in ``lambdaship.commands._common``.
"""
