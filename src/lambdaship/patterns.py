"""The name rules lambdaship checks input against, in one place (AWS, OCI, requirement files).

Each pattern is the service's own rule where it publishes one (Lambda function and alias names,
ECR and OCI repository names, tags, digests); modules import them from here rather than keeping
their own copy.
"""

from __future__ import annotations

import re

# AWS
ACCOUNT_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ALIAS_RE = re.compile(r"^(?!\d+$)[A-Za-z0-9_-]{1,128}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
ECR_REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
ECR_HOST_RE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
# an API Gateway integration URI's Lambda function ARN
INTEGRATION_URI_RE = re.compile(r"functions/(?P<arn>arn:[^/]+)/invocations")



def arn_pattern(function_arn: str) -> re.Pattern[str]:
    """Matches the function's ARN with an optional qualifier (alias, version or ``${stageVariables.x}``)."""
    return re.compile(re.escape(function_arn) + r"(?::(?P<qualifier>[^/:]+))?(?=/invocations|$)")


# OCI distribution
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
OCI_REPOSITORY_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

# pip requirement files: a line that includes another file (-r / -c)
REQUIREMENTS_INCLUDE_RE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)")
