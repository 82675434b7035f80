"""Compatibility shim for callers still being moved (deploy/): use ``lambdaship.registries.push_image``
(composed keychain + ECR PutImage) or ``lambdaship.oci.push``. Removed once no module imports it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lambdaship.oci.push import PushResult, check_target
from lambdaship.oci.reference import TAG_RE

__all__ = ["TAG_RE", "PushResult", "check_target", "push_image"]


def push_image(image: Any, target: str, tags: Sequence[str] = (), *, progress: bool = False,
               on_event: Any = None) -> PushResult:
    """``progress`` is ignored: the library draws nothing; pass ``on_event`` (see
    ``commands/_push_progress.PushRenderer``)."""
    from lambdaship.registries import push_image as push

    return push(image, target, tags, on_event=on_event)
