"""Lambda's log lines for every invocation, written to the stack's CloudWatch Logs.

``START RequestId: … Version: …``, the function's own output, ``END RequestId: …`` and
``REPORT RequestId: … Duration … Billed Duration … Memory Size … Max Memory Used [… Init
Duration]`` go to ``/aws/lambda/<name>``, one log stream per worker set
(``YYYY/MM/DD/[version]<id>``), as Lambda names them. Writing is batched on a background
thread, so an invocation does not wait for CloudWatch (which is eventually consistent on AWS
too); ``flush`` waits for what is queued.
"""

from __future__ import annotations

import base64
import queue
import threading
import time
import uuid
from typing import Any

from lambdaship.local.dataplane.workers import CodeSpec, Outcome

TAIL_BYTES = 4096


def lines_for(spec: CodeSpec, out: Outcome) -> list[str]:
    report = (f"REPORT RequestId: {out.request_id}\tDuration: {out.duration_ms:.2f} ms\t"
              f"Billed Duration: {max(1, int(out.duration_ms + 0.999))} ms\tMemory Size: {spec.memory} MB\t"
              f"Max Memory Used: {out.max_memory_mb or 0} MB\t")
    if out.init_duration_ms is not None:
        report += f"Init Duration: {out.init_duration_ms:.2f} ms\t"
    if out.timed_out:
        report += "Status: timeout"
    body = list(out.logs)
    if out.timed_out:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
        body.append(f"{stamp} {out.request_id} Task timed out after {spec.timeout:.2f} seconds")
    return [f"START RequestId: {out.request_id} Version: {spec.version}", *body,
            f"END RequestId: {out.request_id}", report.rstrip("\t")]


def tail(lines: list[str]) -> str:
    """``X-Amz-Log-Result``: base64 of the last 4 KB of the invocation's log."""
    data = ("\n".join(lines) + "\n").encode()
    return base64.b64encode(data[-TAIL_BYTES:]).decode()


class LogWriter:
    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self._q: queue.Queue[tuple[str, str, str, list[dict[str, Any]]] | None] = queue.Queue()
        self._streams: dict[tuple[str, str, str, str], str] = {}
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="dataplane-logs")
        self._thread.start()

    def stream_for(self, spec: CodeSpec) -> str:
        key = (spec.region, spec.function_name, spec.version, spec.fingerprint)
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{spec.version}]{uuid.uuid4().hex}"
                self._streams[key] = stream
            return stream

    def write(self, spec: CodeSpec, lines: list[str]) -> None:
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines]
        self._idle.clear()
        self._q.put((spec.region, f"/aws/lambda/{spec.function_name}", self.stream_for(spec), events))

    def _run(self) -> None:
        from lambdaship.aws import logs
        from lambdaship.aws.session import in_region

        while True:
            item = self._q.get()
            if item is None:
                return
            batch: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
            stop = False
            while item is not None:
                batch.setdefault((item[0], item[1], item[2]), []).extend(item[3])
                try:
                    item = self._q.get(timeout=0.01)
                except queue.Empty:
                    break
                stop = item is None
            for (region, group, stream), events in batch.items():
                try:
                    with in_region(region):  # the function's region's CloudWatch Logs
                        logs.put_events(group, stream, events)
                except Exception:
                    self.errors += 1
            if self._q.empty():
                self._idle.set()
            if stop:
                return

    def flush(self, timeout: float = 5.0) -> bool:
        return self._idle.wait(timeout)

    def close(self) -> None:
        self.flush()
        self._q.put(None)
        self._thread.join(5)
