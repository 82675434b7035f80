"""Lambda ``Invoke`` (``POST /2015-03-31/functions/{name}/invocations``), answered with real code.

``X-Amz-Invocation-Type``: ``RequestResponse`` (200, the function's answer), ``Event`` (202 at
once, runs in the background), ``DryRun`` (204, nothing runs). ``Qualifier`` (query, or the
name's ``:qualifier``) is a version or an alias; weighted aliases pick a version per request;
``X-Amz-Executed-Version`` says which ran. ``X-Amz-Log-Type: Tail`` returns the last 4 KB of the
log in ``X-Amz-Log-Result``. A failed function answers 200 with ``X-Amz-Function-Error:
Unhandled`` and Lambda's error document (``errorMessage``, ``errorType``, ``stackTrace``).
An unknown function, version or alias answers 404 ``ResourceNotFoundException``. The region is
the request's (its SigV4 credential scope, ``Credential=<key>/<date>/<region>/lambda/aws4_request``),
as on AWS, where each region is its own endpoint; unsigned requests get the stack's region.
"""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, unquote, urlsplit

from lambdaship.local.dataplane.functions import CodeMissing, Functions, NotFound, Target
from lambdaship.local.dataplane.logs import LogWriter, lines_for, tail
from lambdaship.local.dataplane.proxy import Request, Response
from lambdaship.local.dataplane.workers import Outcome, Workers

MAX_PAYLOAD = 6 * 1024 * 1024
MAX_EVENT_PAYLOAD = 256 * 1024
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/(?P<region>[a-z0-9-]+)/")


def request_region(req: Request) -> str | None:
    """The region a signed request was signed for (None: unsigned)."""
    m = _SCOPE.search(req.header("Authorization"))
    return m.group("region") if m else None


def service_error(status: int, code: str, message: str, kind: str = "User") -> Response:
    body = json.dumps({"Type": kind, "message": message}).encode()
    return Response(status, [("Content-Type", "application/json"), ("X-Amzn-ErrorType", code),
                             ("x-amzn-RequestId", str(uuid.uuid4()))], body)


class Invoker:
    def __init__(self, functions: Functions, workers: Workers, logs: LogWriter) -> None:
        self.functions = functions
        self.workers = workers
        self.logs = logs
        self._events = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dataplane-event")
        self.count = 0

    def run(self, target: Target, payload: bytes) -> tuple[Outcome, list[str]]:
        """Run one invocation on a warm worker and log it as Lambda does."""
        out = self.workers.invoke(target.spec, payload)
        lines = lines_for(target.spec, out)
        self.logs.write(target.spec, lines)
        self.count += 1
        return out, lines

    def handle(self, req: Request) -> Response | None:
        assert req.match is not None
        query = parse_qs(urlsplit(req.target).query)
        qualifier = (query.get("Qualifier") or [None])[0]
        try:
            target = self.functions.resolve(unquote(req.match.group("name")), qualifier, request_region(req))
        except NotFound as exc:  # (moto itself answers 500 for an unknown function)
            return service_error(404, "ResourceNotFoundException", f"Function not found: {exc.resource}")
        except CodeMissing:
            return service_error(502, "ServiceException", "the local data plane has no copy of this function's "
                                 "zip (it was created directly against moto); update its code through the "
                                 "stack's endpoint", kind="Service")
        kind = req.header("X-Amz-Invocation-Type", "RequestResponse")
        limit = MAX_EVENT_PAYLOAD if kind == "Event" else MAX_PAYLOAD
        if len(req.body) > limit:
            return service_error(413, "RequestTooLargeException",
                                 f"{len(req.body)} byte payload is too large for the {kind} invocation type "
                                 f"(limit {limit} bytes)")
        payload = req.body or b"{}"
        try:
            json.loads(payload)
        except ValueError:
            return service_error(400, "InvalidRequestContentException", "Could not parse request body into json: "
                                 "Unexpected character")
        base = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", target.executed_version)]
        if kind == "DryRun":
            return Response(204, [*base, ("x-amzn-RequestId", str(uuid.uuid4()))])
        if kind == "Event":
            request_id = str(uuid.uuid4())
            self._events.submit(self.run, target, payload)
            return Response(202, [*base, ("x-amzn-RequestId", request_id)])
        if kind != "RequestResponse":
            return service_error(400, "InvalidParameterValueException",
                                 f"1 validation error detected: Value '{kind}' at 'invocationType' failed to satisfy "
                                 "constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
        out, lines = self.run(target, payload)
        headers = [*base, ("x-amzn-RequestId", out.request_id)]
        if not out.ok:
            headers.append(("X-Amz-Function-Error", out.function_error or "Unhandled"))
        if req.header("X-Amz-Log-Type").lower() == "tail":
            headers.append(("X-Amz-Log-Result", tail(lines)))
        return Response(200, headers, out.payload)

    def close(self) -> None:
        self._events.shutdown(wait=False, cancel_futures=True)
