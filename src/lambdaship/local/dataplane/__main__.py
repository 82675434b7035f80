"""``python -m lambdaship.local.dataplane --moto URL --state-dir DIR [--port N]``.

Started by ``lambdaship local up``; prints ``listening on URL`` once it answers, stops on
SIGTERM/SIGINT (stopping every worker it started).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lambdaship-dataplane")
    p.add_argument("--moto", required=True)
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--region", default="us-east-1")
    args = p.parse_args(argv)
    # This process talks to moto directly; the functions it runs talk to this endpoint.
    os.environ["AWS_ENDPOINT_URL"] = args.moto
    os.environ.setdefault("AWS_DEFAULT_REGION", args.region)
    os.environ.setdefault("AWS_REGION", args.region)
    from lambdaship.local.dataplane import DataPlane

    dp = DataPlane(args.moto, args.state_dir, region=args.region, host=args.host, port=args.port).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"listening on {dp.url}", flush=True)
    stop.wait()
    dp.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
