"""App files that look like credentials: by name and by content. Reported by name, never shown.

``build``, ``size`` and the zip packager call :func:`warn_credentials` on the files of the app
layer: one ``warning:`` line per file on stderr naming the file and the kind of credential, never
a byte of the file. The files reach the package only when the config's ``include`` names them
(the default excludes keep the usual credential files out) or when the secret sits in an
ordinary source file.

Content patterns (regular files up to 4 MiB): AWS access key IDs (``AKIA…``/``ASIA…``), PEM
private keys, GitHub tokens (``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``),
Slack tokens (``xoxb-``/``xoxp-``/…) and webhooks, Stripe live keys, Google API keys, npm and
PyPI upload tokens.
"""

from __future__ import annotations

import fnmatch
import re
import stat
import sys
from pathlib import Path

SCAN_MAX = 4 * 1024 * 1024  # bytes; larger files (data, binaries) are not scanned

CONTENT_PATTERNS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("AWS access key ID", re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")),
    ("private key", re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("GitHub token", re.compile(rb"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})")),
    ("Slack token", re.compile(rb"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Slack webhook", re.compile(rb"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+")),
    ("Stripe live key", re.compile(rb"(?<![A-Za-z0-9])[sr]k_live_[0-9A-Za-z]{20,}")),
    ("Google API key", re.compile(rb"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])")),
    ("npm token", re.compile(rb"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])")),
    ("PyPI token", re.compile(rb"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}")),
)

# File names (any depth) that hold credentials. Most are also default excludes; a file among them
# reaches the package only through 'include', and is still reported.
CREDENTIAL_NAMES: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc", ".netrc", "_netrc", ".pypirc", ".npmrc", ".git-credentials",
    ".pgpass", ".boto", ".s3cfg", ".htpasswd", ".dockercfg", "credentials", "credentials.json",
    "*credentials*.json", "service-account*.json", "client_secret*.json", "*.tfvars", "*.tfstate",
    "*.tfstate.*", "terraform.tfstate*", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
    "*.ppk", "*.kdbx", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "secrets.json", "secrets.yaml",
    "secrets.yml", "secrets.toml",
)
CREDENTIAL_DIRS: tuple[str, ...] = (".aws", ".ssh", ".gnupg", ".kube", ".azure", ".docker", "gcloud")
MAX_LINES = 20  # one line per file up to this many, then one summary line


def credential_kind(rel: str, path: Path) -> str | None:
    """What the file at ``rel`` looks like (e.g. "AWS access key ID"), or None."""
    parts = rel.split("/")
    name = parts[-1]
    by_name = any(d in CREDENTIAL_DIRS for d in parts[:-1]) or any(
        fnmatch.fnmatchcase(name, p) for p in CREDENTIAL_NAMES)
    if by_name and not name.endswith((".example", ".sample", ".template", ".dist")):
        return "by its name"
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode) or st.st_size > SCAN_MAX or path.is_symlink():
            return None
        data = path.read_bytes()
    except OSError:
        return None
    for kind, rx in CONTENT_PATTERNS:
        if rx.search(data):
            return kind
    return None


def credential_files(files: list[tuple[str, Path]]) -> list[tuple[str, str]]:
    """``(arcname, kind)`` of the app files that look like credentials, in the files' order."""
    return [(rel, kind) for rel, path in files if (kind := credential_kind(rel, path))]


def warn_credentials(files: list[tuple[str, Path]]) -> list[str]:
    """One ``warning:`` line on stderr per app file that looks like a credential (name and kind
    only, never content). Returns the arcnames."""
    hits = credential_files(files)
    for rel, kind in hits[:MAX_LINES]:
        sys.stderr.write(
            f"warning: {rel} looks like a credential ({kind}) and would ship in the package; remove it or "
            "add it to 'exclude' (use the function's role or its secrets instead)\n"
        )
    if len(hits) > MAX_LINES:
        sys.stderr.write(f"warning: and {len(hits) - MAX_LINES} more file(s) that look like credentials\n")
    if hits:
        sys.stderr.flush()
    return [rel for rel, _ in hits]
