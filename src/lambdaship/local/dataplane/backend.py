"""The data plane's :class:`~lambdaship.local.dataplane.workers.Backend`: the local execution
engine (``lambdaship.local.engine``), the one way lambdaship runs a function locally.

An image function runs its image (pinned by digest, pulled from the local registry, verified
and unpacked once into the rootfs cache) with the function's ``ImageConfig`` overrides; a zip
function runs its unpacked zip at ``/var/task`` on the offline Lambda-like base. Both get the
function's environment, memory, timeout, ephemeral storage and version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lambdaship.local.dataplane.workers import CodeSpec, Outcome


class EngineBackend:
    def __init__(self, max_workers: int = 2) -> None:
        from lambdaship.local.engine import Engine

        self.engine = Engine(max_workers=max_workers)

    def start(self, spec: CodeSpec) -> Any:
        from lambdaship.local.engine import image_spec, zip_spec

        common: dict[str, Any] = dict(
            name=spec.function_name, environment=dict(spec.environment), memory_mb=spec.memory,
            timeout_s=spec.timeout, ephemeral_mb=spec.ephemeral, version=spec.version, region=spec.region)
        if spec.kind == "zip":
            assert spec.code_dir and spec.handler
            return zip_spec(Path(spec.code_dir), spec.runtime or "python3.11", spec.handler, **common)
        assert spec.image_ref
        if spec.image_command:
            common["handler"] = spec.image_command[0]
        if spec.image_entrypoint:
            common["entrypoint"] = spec.image_entrypoint
        if spec.image_workdir:
            common["workdir"] = spec.image_workdir
        return image_spec(spec.image_ref, **common)

    def invoke(self, handle: Any, payload: bytes, timeout: float) -> Outcome:
        r = self.engine.invoke(handle, payload, timeout=timeout)
        return Outcome(r.request_id, r.payload, r.function_error, r.duration_ms, r.init_duration_ms,
                       r.max_memory_mb, r.timed_out, list(r.logs))

    def stop(self, handle: Any) -> None:
        self.engine.discard(handle)

    def close(self) -> None:
        self.engine.close()
