"""Zero-downtime migration of a zip function to a container image function (``lambdaship migrate``).

:func:`prepare` (read-only + local build) → :class:`Migration` (a plan; ``render()`` /
``to_json()``) → :func:`run` (mutating; undoes everything on failure).
"""

from lambdaship.migrate.core import Migration, MigrationFailed, prepare, run

__all__ = ["Migration", "MigrationFailed", "prepare", "run"]
