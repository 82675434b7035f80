"""#19.5: secret files a repository commonly holds stay out of the package; .gitignore and
.dockerignore are honoured; files that still look like credentials are named (never shown).

Real builds into an OCI layout with a private LAMBDASHIP_HOME; every output line, every file the
build wrote and every layer (decompressed) is searched for the canaries.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from lambdaship.config import load_project
from lambdaship.project import app_files
from tests.conftest import run_cli

# path -> a secret file's content template ({c} = its canary)
SECRET_FILES = {
    ".envrc": "export TOKEN={c}\n",
    ".env.production": "DB_PASSWORD={c}\n",
    "config/prod.env": "X={c}\n",
    ".netrc": "machine api.example.com login me password {c}\n",
    ".pypirc": "[pypi]\npassword = {c}\n",
    ".npmrc": "//registry.npmjs.org/:_authToken={c}\n",
    ".yarnrc.yml": "npmAuthToken: {c}\n",
    ".git-credentials": "https://me:{c}@github.com\n",
    ".pgpass": "db:5432:app:me:{c}\n",
    ".docker/config.json": '{{"auths": {{"r.example.com": {{"auth": "{c}"}}}}}}\n',
    "deploy/.docker/config.json": '{{"auths": {{"x": {{"auth": "{c}"}}}}}}\n',
    ".kube/config": "users:\n- user:\n    token: {c}\n",
    ".gnupg/private-keys-v1.d/key.key": "{c}\n",
    ".aws/credentials": "[default]\naws_secret_access_key = {c}\n",
    ".config/gcloud/application_default_credentials.json": '{{"private_key": "{c}"}}\n',
    ".azure/accessTokens.json": '[{{"accessToken": "{c}"}}]\n',
    ".terraform/terraform.tfstate": "{c}\n",
    "terraform.tfstate": '{{"secret": "{c}"}}\n',
    "terraform.tfstate.backup": '{{"secret": "{c}"}}\n',
    "infra/prod.tfvars": 'db_password = "{c}"\n',
    "certs/server.pem": "-----BEGIN PRIVATE KEY-----\n{c}\n",
    "certs/server.key": "{c}\n",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\n{c}\n",
    "id_ed25519.pub": "ssh-ed25519 {c}\n",
    "keys/store.p12": "{c}\n",
    "keys/store.pfx": "{c}\n",
    "keys/app.jks": "{c}\n",
    "keys/release.keystore": "{c}\n",
    "keys/putty.ppk": "{c}\n",
    ".ssh/config": "Host x\n  IdentityFile {c}\n",
}
# ordinary source files holding credential-shaped strings: shipped, but each one named in a warning
TOKENS = {
    "settings.py": "AKIAQWERTYUIOPASDFGH",
    "session.py": "ASIAQWERTYUIOPASDFGH",
    "gh.py": "ghp_" + "a1B2" * 9,
    "ghpat.py": "github_pat_" + "A1b2_" * 16,
    "slack.py": "xoxb-123456789012-abcdefghijkl",
    "hook.py": "https://hooks.slack.com/services/T0000/B0000/abcdefABCDEF",
    "embedded_key.py": "-----BEGIN RSA PRIVATE KEY-----\\nMIIB",
}
TOKEN_FILES = {rel: f"KEY = \"{token}\"\n" for rel, token in TOKENS.items()}


def _expand(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except OSError:
            return data
    return data


def _make(app: Path, canaries: dict[str, str]) -> None:
    app.mkdir(parents=True)
    (app / "main.py").write_text("import settings\n\ndef handler(event, context):\n    return 1\n")
    (app / "lambdaship.toml").write_text('function_name = "sec"\nhandler = "main.handler"\n')
    for rel, template in SECRET_FILES.items():
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text(template.format(c=canaries[rel]))
    for rel, text in TOKEN_FILES.items():
        (app / rel).write_text(text)


def test_default_excludes_keep_every_secret_file_out(tmp_path: Path) -> None:
    canaries = {rel: f"canary-{uuid.uuid4().hex}" for rel in SECRET_FILES}
    _make(tmp_path / "app", canaries)
    shipped = {rel for rel, _ in app_files(load_project(tmp_path / "app").function())}
    assert shipped == {"main.py", *TOKEN_FILES}, sorted(shipped)


@pytest.mark.slow
def test_secret_files_never_reach_output_cache_or_image(base_image_ref: str, tmp_path: Path) -> None:
    canaries = {rel: f"canary-{uuid.uuid4().hex}" for rel in SECRET_FILES}
    app = tmp_path / "app"
    _make(app, canaries)
    home, layout = tmp_path / "home", tmp_path / "layout"
    outputs = []
    for cmd in (("build", "--json", "--base-image", base_image_ref, "--out", str(layout)), ("size", "--json")):
        r = run_cli(*cmd, cwd=app, env={"LAMBDASHIP_HOME": str(home)})
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout + r.stderr)
        warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
        # one line per file that looks like a credential, naming it; never its content
        assert sorted(w.split()[1] for w in warnings) == sorted(TOKEN_FILES), warnings
        for token in TOKENS.values():
            assert token not in r.stdout + r.stderr
    text = "\n".join(outputs)
    assert not [rel for rel, c in canaries.items() if c in text]
    written = [p for p in [*home.rglob("*"), *layout.rglob("*")] if p.is_file() and not p.is_symlink()]
    assert written
    for p in written:
        data = _expand(p.read_bytes())
        leaked = [rel for rel, c in canaries.items() if c.encode() in data]
        assert not leaked, (p, leaked)
    result = json.loads(outputs[0][: outputs[0].rindex("}") + 1])
    app_layer = next(x for x in result["layers"] if x["role"] == "app")
    raw = gzip.decompress((layout / "blobs" / "sha256" / app_layer["digest"].split(":", 1)[1]).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        names = {m.name.removeprefix("var/task/") for m in tf.getmembers() if m.isfile()}
    assert {"main.py", *TOKEN_FILES} <= names
    assert not names & set(SECRET_FILES)


def _ignore_project(root: Path) -> Path:
    files = {
        ".git/HEAD": "ref: refs/heads/main\n",
        ".gitignore": "/build/\n*.log\n!keep.log\nsecrets/\n",  # the repository's, above the app
        "services/api/app.py": "def handler(event, context):\n    return 1\n",
        "services/api/lambdaship.toml": 'function_name = "ign"\nhandler = "app.handler"\n',
        "services/api/.gitignore": "local_settings.py\ndata/*.csv\n!data/keep.csv\n",
        "services/api/.dockerignore": "# docker's rules: anchored at the root\nscratch\n*.tmp\n!scratch/keep.txt\n",
        "services/api/local_settings.py": "DEBUG = True\n",
        "services/api/pkg/local_settings.py": "DEBUG = True\n",
        "services/api/data/a.csv": "1\n",
        "services/api/data/keep.csv": "1\n",
        "services/api/debug.log": "x\n",
        "services/api/keep.log": "x\n",
        "services/api/secrets/token.txt": "x\n",
        "services/api/build/out.py": "x\n",  # /build/ is anchored at the repository root: kept
        "services/api/pkg/sub/.gitignore": "*.bin\n",
        "services/api/pkg/sub/blob.bin": "x\n",
        "services/api/pkg/sub/mod.py": "x = 1\n",
        "services/api/scratch/a.txt": "x\n",
        "services/api/scratch/keep.txt": "x\n",
        "services/api/x.tmp": "x\n",
        "services/api/pkg/y.tmp": "x\n",  # *.tmp in .dockerignore is anchored: only ./x.tmp
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "services" / "api"


IGNORED = {"local_settings.py", "pkg/local_settings.py", "data/a.csv", "debug.log", "secrets/token.txt",
           "pkg/sub/blob.bin", "scratch/a.txt", "x.tmp"}


def test_gitignore_and_dockerignore_are_honoured(tmp_path: Path) -> None:
    app = _ignore_project(tmp_path)
    shipped = {rel for rel, _ in app_files(load_project(app).function())}
    assert not shipped & IGNORED, sorted(shipped & IGNORED)
    for kept in ("app.py", "data/keep.csv", "keep.log", "build/out.py", "pkg/sub/mod.py", "scratch/keep.txt",
                 "pkg/y.tmp"):
        assert kept in shipped, (kept, sorted(shipped))
    # git agrees on what the .gitignore files leave out
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, capture_output=True)
    git_ignored = subprocess.run(
        ["git", "-C", str(app), "check-ignore", *sorted(IGNORED | shipped)], capture_output=True, text=True,
    ).stdout.split()
    docker_only = {"scratch/a.txt", "x.tmp"}
    assert set(git_ignored) == IGNORED - docker_only


def test_opt_outs_and_include_win(tmp_path: Path) -> None:
    app = _ignore_project(tmp_path)
    toml = app / "lambdaship.toml"
    toml.write_text(toml.read_text() + "use_gitignore = false\nuse_dockerignore = false\n")
    shipped = {rel for rel, _ in app_files(load_project(app).function())}
    assert shipped >= IGNORED
    toml.write_text('function_name = "ign"\nhandler = "app.handler"\ninclude = ["debug.log", ".env.example"]\n')
    (app / ".env.example").write_text("TOKEN=\n")
    shipped = {rel for rel, _ in app_files(load_project(app).function())}
    assert "debug.log" in shipped and ".env.example" in shipped and "local_settings.py" not in shipped


def test_included_secret_file_ships_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lambdaship.project import warn_access_keys

    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (app / ".env.prod").write_text("TOKEN=canary-included\n")
    (app / "lambdaship.toml").write_text('function_name = "w"\nhandler = "main.handler"\ninclude = [".env.prod"]\n')
    files = app_files(load_project(app).function())
    assert ".env.prod" in {rel for rel, _ in files}
    assert warn_access_keys(files) == [".env.prod"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: .env.prod looks like a credential (by its name)")
    assert "canary-included" not in err


def test_the_config_file_in_use_never_ships_whatever_its_name(tmp_path: Path) -> None:
    """``-C prod.toml``: the config holds environment values; it stays out like lambdaship.toml."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "prod.toml").write_text('function_name = "c"\nhandler = "main.handler"\n'
                                   '[environment]\nTOKEN = "canary-config-value"\n')
    (app / "other.toml").write_text("x = 1\n")
    shipped = {rel for rel, _ in app_files(load_project(app / "prod.toml").function())}
    assert shipped == {"main.py", "other.toml"}
