"""GitHub Actions used by generated workflows, pinned to full commit SHAs.

Each SHA was read from the action's own repository (``git rev-parse <tag>^{commit}``), never
typed by hand; the tag goes into a ``# vX.Y.Z`` comment so Dependabot/Renovate and zizmor's
``ref-version-mismatch`` audit can check it. To update: fetch the repository, read the new
tag's commit, change one line here, re-run ``lambdaship ci github``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PinnedAction:
    repo: str
    sha: str
    tag: str

    @property
    def uses(self) -> str:
        """The ``uses:`` value with its version comment."""
        return f"{self.repo}@{self.sha} # {self.tag}"


CHECKOUT = PinnedAction("actions/checkout", "3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1")
SETUP_PYTHON = PinnedAction("actions/setup-python", "5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0")
CONFIGURE_AWS = PinnedAction(
    "aws-actions/configure-aws-credentials", "e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"
)

ALL = (CHECKOUT, SETUP_PYTHON, CONFIGURE_AWS)
