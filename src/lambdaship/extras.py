"""Optional dependencies: present only with ``pip install 'lambdaship[local]'``.

``awslambdaric`` (the real Lambda runtime client) has no macOS or Windows wheels and its sdist
needs autotools, so it is an extra: only running a handler on this machine's own Python needs it
(``invoke --local``, ``serve`` and ``run`` outside the sandbox). Images carry their own copy.
"""

from __future__ import annotations

import importlib.util

from lambdaship.errors import LambdashipError

LOCAL_HINT = "pip install 'lambdaship[local]'"


def require_local_runtime() -> None:
    """Raise one line with the install command when ``awslambdaric`` is not importable."""
    if importlib.util.find_spec("awslambdaric") is None:
        raise LambdashipError(
            "running a handler on this machine needs awslambdaric, which is not installed", LOCAL_HINT
        )
