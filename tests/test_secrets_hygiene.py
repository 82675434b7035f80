"""Secret values never leak: not in output, plans, JSON, cache/log files or image layers.

Unique canaries are planted in Secrets Manager, an SSM SecureString, a ``.env`` file, the
config's ``environment`` and in files that the default excludes must keep out of the image
(``.env``, ``.aws/``, ``.git/``, private keys). Every command's stdout/stderr, every file under
``LAMBDASHIP_HOME`` (gzip and zip members decompressed) and every blob of the pushed image
(layers decompressed, the config, the manifest) is scanned for them.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli
from tests.test_deploy import aws, make_role, uid

ACCESS_KEY = "AKIAQWERTYUIOPASDFGH"  # an access-key-shaped string in an app file (warned about)
# Credential files a repository commonly holds (issue #19): kept out by the default excludes.
NEW_SECRET_FILES = (
    ".envrc", ".netrc", ".pypirc", ".npmrc", ".git-credentials", ".docker/config.json", ".kube/config",
    ".gnupg/pubring.kbx", ".config/gcloud/credentials.db", ".azure/msal_token_cache.json", "terraform.tfstate",
    "terraform.tfstate.backup", "keys/app.jks", "keys/app.keystore", "keys/cert.pfx", "id_rsa.old",
)


def _canary(kind: str) -> str:
    return f"canary-{kind}-{uuid.uuid4().hex}"


def _expand(data: bytes) -> bytes:
    """Bytes to search: gzip and zip content decompressed (tar content is plain inside)."""
    if data[:2] == b"\x1f\x8b":
        try:
            return _expand(gzip.decompress(data))
        except OSError:
            return data
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                return b"\n".join([n.encode() for n in zf.namelist()] + [zf.read(n) for n in zf.namelist()])
        except zipfile.BadZipFile:
            return data
    return data


def _leaks(text: bytes | str, canaries: dict[str, str]) -> list[str]:
    blob = text.encode() if isinstance(text, str) else text
    return [kind for kind, value in canaries.items() if value.encode() in blob]


@pytest.mark.slow
def test_secret_values_never_leak(local_stack, base_image_ref: str, tmp_path: Path) -> None:
    name = uid("hyg")
    c = {k: _canary(k) for k in ("secretsmanager", "ssm", "dotenv", "config", "dotenv_local", "aws_dir", "git",
                                 "id_rsa", "pem", "ssh", "bad_env_line", *NEW_SECRET_FILES)}
    aws("secretsmanager").create_secret(Name=f"{name}/app",
                                        SecretString=json.dumps({"DB_PASSWORD": c["secretsmanager"]}))
    aws("ssm").put_parameter(Name=f"/{name}/API_TOKEN", Value=c["ssm"], Type="SecureString")

    proj = tmp_path / "proj"
    files = {
        "app.py": "import settings\n\ndef handler(event, context):\n    return {'statusCode': 200}\n",
        "settings.py": f"ACCESS_KEY_ID = '{ACCESS_KEY}'  # the user's mistake: warned about\n",
        ".env": f"DOTENV_SECRET={c['dotenv']}\n",
        "sub/.env.local": f"X={c['dotenv_local']}\n",
        ".aws/credentials": f"[default]\naws_secret_access_key = {c['aws_dir']}\n",
        ".git/config": f"[remote]\n  token = {c['git']}\n",
        "id_rsa": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{c['id_rsa']}\n",
        "certs/server.pem": f"-----BEGIN PRIVATE KEY-----\n{c['pem']}\n",
        ".ssh/id_ed25519": f"{c['ssh']}\n",
        "bad.env": f"OK=1\nthis line is broken {c['bad_env_line']}\n",
        **{rel: f"secret = {c[rel]}\n" for rel in NEW_SECRET_FILES},
        "lambdaship.toml": (
            f'function_name = "{name}"\nhandler = "app.handler"\nbase_image = "{base_image_ref}"\n'
            f'role = "{make_role()}"\nenv_file = ".env"\n'
            f'[environment]\nCONFIG_SECRET = "{c["config"]}"\n'
            f'[[secrets]]\nsecretsmanager = "{name}/app"\n[[secrets]]\nssm_path = "/{name}/"\n'
        ),
    }
    for rel, text in files.items():
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text(text)
    home = tmp_path / "home"
    env = {"LAMBDASHIP_HOME": str(home)}

    runs = [
        ("env", "show"), ("env", "show", "--json"),
        ("deploy", "--dry-run"), ("deploy", "--dry-run", "--json"),
        ("build", "--json"),
        ("deploy", "--json"),
        ("deploy",),  # up to date
        ("status",), ("status", "--json"),
        ("env", "sync", "--dry-run", "--json"),
        # The local engine runs the function on its base image's root filesystem; the registry's tiny
        # test base has no runtime, so the local run uses the same config on the engine's local base.
        ("invoke", "-C", "local.toml", "--local", "--secrets", "--json"),
    ]
    outputs: dict[str, str] = {}
    for args in runs:
        if "local.toml" in args:  # written only now: for the other runs it would be an ordinary app file
            (proj / "local.toml").write_text("\n".join(
                ln for ln in files["lambdaship.toml"].splitlines() if not ln.startswith("base_image")) + "\n")
        r = run_cli(*args, cwd=proj, env=env)
        assert r.returncode == 0, (args, r.stderr)
        outputs[" ".join(args)] = r.stdout + r.stderr
    # Failing commands name the problem, never the value.
    r = run_cli("deploy", "--env-file", "bad.env", cwd=proj, env=env)
    assert r.returncode != 0 and "bad.env" in r.stderr, r.stderr
    outputs["deploy --env-file bad.env"] = r.stdout + r.stderr
    big = tmp_path / "big.env"
    big.write_text(f"BIG={c['dotenv']}{'x' * 4200}\n")
    r = run_cli("env", "sync", "--env-file", str(big), "--json", cwd=proj, env=env)
    assert r.returncode != 0 and "4" in r.stderr, r.stderr
    outputs["env sync (over 4 KB)"] = r.stdout + r.stderr

    # The values did reach Lambda (the test would prove nothing otherwise) ...
    variables = aws("lambda").get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    assert variables["DB_PASSWORD"] == c["secretsmanager"] and variables["API_TOKEN"] == c["ssm"]
    assert variables["DOTENV_SECRET"] == c["dotenv"] and variables["CONFIG_SECRET"] == c["config"]
    # ... and nowhere else.
    leaks = {cmd: _leaks(out, c) for cmd, out in outputs.items()}
    assert not any(leaks.values()), leaks
    assert ACCESS_KEY not in "".join(outputs.values())

    # The access-key warning: one line, names the file, not the key.
    warnings = [line for line in outputs["build --json"].splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "settings.py" in warnings[0] and "access key" in warnings[0], warnings

    # Files lambdaship wrote (caches, layouts, logs): no canary, even decompressed.
    file_leaks = {str(p.relative_to(home)): _leaks(_expand(p.read_bytes()), c)
                  for p in home.rglob("*") if p.is_file() and not p.is_symlink()}
    assert not any(file_leaks.values()), {k: v for k, v in file_leaks.items() if v}

    # Every blob of the deployed image.
    digest = json.loads(_json_doc(outputs["deploy --json"]))["digest"]
    reg = local_stack.registry.url
    manifest = httpx.get(f"{reg}/v2/{name}/manifests/{digest}", headers={"Accept": ", ".join([
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"])})
    assert manifest.status_code == 200
    mj = manifest.json()
    assert not _leaks(manifest.content, c)
    names: list[str] = []
    for d in [mj["config"], *mj["layers"]]:
        blob = httpx.get(f"{reg}/v2/{name}/blobs/{d['digest']}", follow_redirects=True).content
        assert not _leaks(_expand(blob), c), d
        if d is mj["config"]:
            continue
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            for m in tar.getmembers():
                names.append(m.name)
                if m.isfile():
                    content = tar.extractfile(m).read()  # type: ignore[union-attr]
                    assert not _leaks(content, c), m.name
    task = [n.removeprefix("./") for n in names if n.removeprefix("./").startswith("var/task/")]
    assert "var/task/app.py" in task and "var/task/settings.py" in task
    for excluded in (".env", "sub/.env.local", ".aws", ".git", "id_rsa", "certs/server.pem", ".ssh", "bad.env",
                     *NEW_SECRET_FILES):
        assert not any(n == f"var/task/{excluded}" or n.startswith(f"var/task/{excluded}/") for n in task), (
            excluded, task)


def _json_doc(text: str) -> str:
    """The JSON document of a ``--json`` run's stdout (stderr lines, if any, come after it)."""
    start = text.index("{")
    depth = 0
    for i, ch in enumerate(text[start:], start):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            return text[start:i + 1]
    raise AssertionError(text)


def test_default_excludes_and_access_key_warning(tmp_path: Path) -> None:
    """The builder's file list leaves secrets out; a key-shaped string is reported by file name."""
    from lambdaship.config import load_project
    from lambdaship.project import app_files, files_with_access_keys

    for rel in ("app.py", ".env", ".env.prod", ".aws/config", ".git/HEAD", "id_rsa", "deploy/id_ed25519",
                "tls/key.pem", "tls/server.key", ".ssh/known_hosts", "cert.p12", "lib/keys.py", "notes.txt",
                *NEW_SECRET_FILES):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    (tmp_path / "lib/keys.py").write_text(f"KEY = '{ACCESS_KEY}'\n")
    (tmp_path / "notes.txt").write_text("AKIA-not-a-key AKIAshort ASIAQWERTYUIOPASDFGHJK (too long)\n")
    (tmp_path / "lambdaship.toml").write_text('function_name = "f"\nhandler = "app.handler"\n')
    fn = load_project(tmp_path).function()
    names = [rel for rel, _ in app_files(fn)]
    assert set(names) - {"lambdaship.toml"} == {"app.py", "lib/keys.py", "notes.txt"}, names
    assert files_with_access_keys(app_files(fn)) == ["lib/keys.py"]
    # A pyproject.toml that holds the config (with its environment values) stays out; another one ships.
    (tmp_path / "lambdaship.toml").unlink()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.lambdaship]\nfunction_name = "f"\nhandler = "app.handler"\n'
        '[tool.lambdaship.environment]\nTOKEN = "value"\n')
    fn = load_project(tmp_path).function()
    assert "pyproject.toml" not in [rel for rel, _ in app_files(fn)]
    (tmp_path / "lambdaship.toml").write_text('function_name = "f"\nhandler = "app.handler"\n')
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    fn = load_project(tmp_path).function()
    assert "pyproject.toml" in [rel for rel, _ in app_files(fn)]
