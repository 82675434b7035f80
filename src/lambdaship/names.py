"""Everything derived from a function's name, in one place: repository, role, log group, tags."""

from __future__ import annotations

from dataclasses import dataclass

LOCAL_ACCOUNT = "123456789012"
"""The account of the local stack and of local runs (moto's default account)."""
LOCAL_REGION = "us-east-1"

MANAGED_TAG = "lambdaship:function"
# Registry tag of an app model stored next to a function's images (lambdaship.api.modelstore).
MODEL_TAG_PREFIX = "lambdaship-model-"
"""Tag on every resource lambdaship creates; its value is always the Lambda function name."""


@dataclass(frozen=True)
class Names:
    function: str
    repository_override: str | None = None

    @property
    def repository(self) -> str:
        """ECR repository (the configured one, else the function name lowercased, '_' → '-')."""
        return self.repository_override or self.function.lower().replace("_", "-")

    @property
    def owns_repository(self) -> bool:
        """True when the repository is this function's own (not shared with other functions)."""
        return self.repository == self.function.lower().replace("_", "-")

    @property
    def role(self) -> str:
        return f"{self.function}-lambdaship-exec"[:64]

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    def deployed_tag(self, version: str) -> str:
        """The tag that protects a deployed version's image from the lifecycle rule."""
        return f"deployed-{self.function}-{version}" if not self.owns_repository else f"deployed-{version}"

    @property
    def tags(self) -> dict[str, str]:
        return {MANAGED_TAG: self.function}
