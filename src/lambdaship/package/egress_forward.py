"""Runs inside a build sandbox (standard library only; lambdaship imports only :func:`pump`): listens on
loopback ports of the sandbox's own network namespace, forwards each connection to a Unix socket
of :class:`lambdaship.package.egress.Egress` on the host, and runs the command given after the
configuration with ``HTTPS_PROXY`` set to the proxy port; exits with the command's status.

``python -I egress_forward.py '{"proxy": SOCK, "direct": {"PORT": SOCK}}' COMMAND...``
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading


def pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _serve(listener: socket.socket, path: str) -> None:
    while True:
        conn, _ = listener.accept()
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            up.connect(path)
        except OSError:
            conn.close()
            continue
        threading.Thread(target=pump, args=(conn, up), daemon=True).start()
        threading.Thread(target=pump, args=(up, conn), daemon=True).start()


def _listen(port: int, path: str) -> int:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    threading.Thread(target=_serve, args=(listener, path), daemon=True).start()
    return listener.getsockname()[1]


def main() -> int:
    config = json.loads(sys.argv[1])
    for port, path in config.get("direct", {}).items():
        _listen(int(port), path)
    proxy = f"http://127.0.0.1:{_listen(0, config['proxy'])}"
    env = {**os.environ, "HTTPS_PROXY": proxy, "https_proxy": proxy}
    return subprocess.run(sys.argv[2:], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
