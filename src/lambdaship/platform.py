"""The target platform: one value for the architecture and Python runtime, read by every stage.

Lambda, OCI, Docker, wheel tags and the host's ``uname -m`` each spell the architecture their
own way; this module is the only place that knows the spellings.
"""

from __future__ import annotations

import os
import platform as _host
from dataclasses import dataclass
from enum import StrEnum

from lambdaship.errors import LambdashipError


def usable_cores() -> int:
    """The host's cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Architecture(StrEnum):
    """A Lambda architecture. The value is Lambda's own spelling (``Architectures=[...]``)."""

    x86_64 = "x86_64"
    arm64 = "arm64"

    @property
    def lambda_name(self) -> str:
        return self.value

    @property
    def oci(self) -> str:
        """OCI / Go spelling (image config ``architecture``, index ``platform.architecture``)."""
        return {"x86_64": "amd64", "arm64": "arm64"}[self.value]

    @property
    def docker_platform(self) -> str:
        """``docker build --platform`` spelling."""
        return f"linux/{self.oci}"

    @property
    def machine(self) -> str:
        """``uname -m`` / wheel-tag spelling."""
        return {"x86_64": "x86_64", "arm64": "aarch64"}[self.value]

    @classmethod
    def parse(cls, value: str | Architecture) -> Architecture:
        """Any spelling (x86_64, amd64, arm64, aarch64) → the architecture; one-line error otherwise."""
        if isinstance(value, Architecture):
            return value
        v = str(value).strip().lower()
        alias = {"x86_64": "x86_64", "amd64": "x86_64", "x86-64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}
        if v not in alias:
            raise LambdashipError(f"unknown architecture {value!r}", "use x86_64 or arm64")
        return cls(alias[v])

    @classmethod
    def host(cls) -> Architecture | None:
        """This machine's architecture, or None when Lambda has no such architecture."""
        try:
            return cls.parse(_host.machine())
        except LambdashipError:
            return None


DEFAULT_ARCHITECTURE = Architecture.x86_64
DEFAULT_PYTHON = "3.12"
SUPPORTED_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
AWS_BASE_REPOSITORY = "public.ecr.aws/lambda/python"  # AWS's Lambda Python base images, tagged by version


@dataclass(frozen=True)
class Platform:
    """What a function runs on: architecture + Python version, in every spelling a stage needs."""

    architecture: Architecture = DEFAULT_ARCHITECTURE
    python: str = DEFAULT_PYTHON

    @classmethod
    def of(cls, architecture: str | Architecture, python: str) -> Platform:
        return cls(Architecture.parse(architecture), str(python).removeprefix("python"))

    @property
    def python_minor(self) -> int:
        return int(self.python.split(".")[1])

    @property
    def lambda_runtime(self) -> str:
        """Lambda's runtime identifier for zip functions (``python3.12``)."""
        return f"python{self.python}"

    @property
    def amazon_linux(self) -> str:
        """python3.12+ runs on Amazon Linux 2023, older runtimes on Amazon Linux 2."""
        return "al2023" if self.python_minor >= 12 else "al2"

    @property
    def glibc(self) -> tuple[int, int]:
        return (2, 34) if self.python_minor >= 12 else (2, 26)

    @property
    def manylinux_max(self) -> int:
        """The newest ``manylinux_2_N`` wheel tag the runtime accepts (measured: 2_28 / 2_17)."""
        return 28 if self.python_minor >= 12 else 17

    @property
    def uv_platform(self) -> str:
        """uv's ``--python-platform``."""
        level = "manylinux_2_28" if self.python_minor >= 12 else "manylinux2014"
        return f"{self.architecture.machine}-{level}"

    @property
    def wheel_platforms(self) -> list[str]:
        """pip's ``--platform`` tags, newest first."""
        arch = self.architecture.machine
        tags = [f"manylinux_2_{m}_{arch}" for m in range(self.manylinux_max, 16, -1)] + [f"manylinux2014_{arch}"]
        if arch == "x86_64":
            tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
        return tags

    @property
    def default_base_image(self) -> str:
        return f"{AWS_BASE_REPOSITORY}:{self.python}"

    @property
    def is_host(self) -> bool:
        """True when this machine can run the target's binaries natively."""
        return Architecture.host() == self.architecture
