"""``lambdaship run IMAGE``: run a built image locally (OCI layout or registry reference)."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from lambdaship.commands._common import JsonOpt, emit_json
from lambdaship.commands.serve import HostOpt, PortOpt, V2Opt, WorkersOpt


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        image: str = typer.Argument(..., help="OCI layout directory, or registry reference (tag or @digest)."),
        port: int = PortOpt,
        host: str = HostOpt,
        workers: int = WorkersOpt,
        http_api_v2: bool = V2Opt,
        timeout: float = typer.Option(30.0, "--timeout", help="Function timeout in seconds."),
        memory: int = typer.Option(512, "--memory", help="Reported memory size (MB)."),
        host_python: bool = typer.Option(False, "--host-python",
                                         help="Run the app layers with this machine's Python, not in a chroot."),
        get: str | None = typer.Option(None, "--get", metavar="PATH",
                                       help="Send one GET request through the gateway, print the answer, exit."),
        request: tuple[str, str] | None = typer.Option(
            None, "--request", metavar="METHOD PATH",
            help="Send one request (e.g. --request POST /items) through the gateway, print the answer, exit."),
        body: str | None = typer.Option(None, "--body", help="Request body for --request (JSON is sent as such)."),
        event: str | None = typer.Option(None, "--event", "-e",
                                         help="Invoke once with this JSON event (file or -), print the result, exit."),
        json_: bool = JsonOpt,
    ) -> None:
        """Unpack IMAGE into a cached rootfs and serve it like `serve` (or answer once).

        As root, the image's ENTRYPOINT + CMD run under unshare + chroot against the Runtime
        API emulator; otherwise (or with --host-python) the app and dependency layers run on
        the host Python, and stderr says so.
        """
        from lambdaship.commands.invoke import read_event
        from lambdaship.errors import UsageError
        from lambdaship.local.gateway import Gateway
        from lambdaship.local.rootfs import cached_rootfs, load_image
        from lambdaship.local.serve import image_runtime, serve_forever, stderr_sink

        if get is not None and request is not None:
            raise UsageError("--get and --request cannot be combined", "choose one")
        if get is not None:
            request = ("GET", get)
        if request is not None and event is not None:
            raise UsageError("--request/--get and --event cannot be combined", "choose one")
        method = path = ""
        if request is not None:
            method, path = request[0].upper(), request[1] if request[1].startswith("/") else "/" + request[1]
            if not method.isalpha():
                raise UsageError(f"{request[0]!r} is not an HTTP method", "use e.g. --request GET /health")
        payload = read_event(event) if event is not None else None
        img = load_image(image)

        def progress(msg: str) -> None:
            sys.stderr.write(f"unpacking {msg}\n")
            sys.stderr.flush()

        rootfs = cached_rootfs(img, progress=progress)
        once = request is not None or payload is not None
        logs: list[str] = []
        sink = logs.append if once else stderr_sink()
        api, routes, notes = image_runtime(img.config_json, rootfs, max_workers=workers, log_sink=sink,
                                           timeout=timeout, memory=memory, force_host=host_python)
        for note in notes:
            sys.stderr.write(f"note: {note}\n")
        sys.stderr.flush()
        gateway = Gateway(api.invoke, routes=routes, http_api_v2=http_api_v2)
        if not once:
            api.start(warm=1)
            serve_forever(api, gateway, host=host, port=port, watcher=None, banner=[
                f"lambdaship: running {image} ({img.digest[:19]}) with up to {workers} warm worker(s)",
                "  RIE:    POST /2015-03-31/functions/function/invocations",
            ])
            return
        try:
            if request is not None:
                headers = [("Host", "localhost"), ("User-Agent", "lambdaship-run")]
                raw = (body or "").encode()
                if raw:
                    try:
                        json.loads(raw)
                        headers.append(("Content-Type", "application/json"))
                    except ValueError:
                        headers.append(("Content-Type", "text/plain"))
                resp = gateway.handle(method, path, headers, raw)
                ok = 200 <= resp.status < 300
                body = resp.body.decode("utf-8", "replace")
                try:
                    parsed: Any = json.loads(body)
                except ValueError:
                    parsed = body
                data: dict[str, Any] = {"image": image, "digest": img.digest, "method": method, "path": path,
                                        "status": resp.status, "body": parsed, "ok": ok}
            else:
                result = api.invoke(payload or b"{}")
                ok = result.ok
                data = {"image": image, "digest": img.digest, "ok": ok,
                        ("result" if ok else "error"): result.json() if ok else result.error}
        finally:
            api.close()
        data["logs"] = logs
        if json_:
            emit_json(data)
        else:
            if request is not None:
                sys.stdout.write(f"{data['status']} {json.dumps(data['body'])}\n")
            else:
                sys.stdout.write(json.dumps(data.get("result", data.get("error")), indent=2) + "\n")
            if logs:
                sys.stderr.write("\n".join(logs) + "\n")
        if not ok:
            raise typer.Exit(1)
