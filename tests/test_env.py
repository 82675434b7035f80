"""``lambdaship env show|sync`` on the local stack: sources, precedence, masking, the 4 KB limit."""

from __future__ import annotations

import json
import secrets as pysecrets
from pathlib import Path

from lambdaship.config import load_project
from lambdaship.deploy import env as envmod
from tests.conftest import run_cli
from tests.test_deploy import alias_version, aws, deploy, image_uri, make_project, make_role, push_image, uid


def _project_with_secret(local_stack, tmp_path: Path, secret_values: dict[str, str], extra: str = "") -> tuple:
    name = uid()
    sid = f"{name}/env"
    aws("secretsmanager").create_secret(Name=sid, SecretString=json.dumps(secret_values))
    extra = f'{extra}\n[[secrets]]\nsecretsmanager = "{sid}"\n'
    proj = make_project(tmp_path, name, role=make_role(), extra='[environment]\nSTAGE = "dev"\n' + extra)
    digest = push_image(local_stack.registry.url, name, "env")
    return name, proj, digest


def test_env_sync_from_secrets_manager_never_prints_a_value(local_stack, tmp_path):
    values = {"DB_PASSWORD": "pw-" + pysecrets.token_hex(12), "API_KEY": "key-" + pysecrets.token_hex(12)}
    name, proj, digest = _project_with_secret(local_stack, tmp_path, {})
    # First deploy without the secret's values, then put them in the secret and sync.
    assert deploy(proj, "--image", image_uri(name, digest)).returncode == 0
    aws("secretsmanager").put_secret_value(SecretId=f"{name}/env", SecretString=json.dumps(values))
    outputs = []
    for args in (["env", "show"], ["env", "show", "--json"], ["env", "sync", "--dry-run"],
                 ["env", "sync", "--dry-run", "--json"], ["deploy", "--dry-run", "--json", "--image",
                                                          image_uri(name, digest)]):
        r = run_cli(*args, "-C", str(proj))
        assert r.returncode == 0, (args, r.stderr)
        outputs.append(r.stdout + r.stderr)
    assert alias_version(name) == "1"  # dry runs changed nothing
    shown = json.loads(run_cli("env", "show", "--json", "-C", str(proj)).stdout)
    by_name = {v["name"]: v for v in shown["variables"]}
    assert by_name["DB_PASSWORD"] == {"name": "DB_PASSWORD", "change": "added", "source": f"secretsmanager:{name}/env",
                                      "value": "****"}
    r = run_cli("env", "sync", "-C", str(proj))
    assert r.returncode == 0, r.stderr
    outputs.append(r.stdout + r.stderr)
    assert "DB_PASSWORD" in r.stdout and "alias live → 2" in r.stdout
    r = run_cli("env", "sync", "--json", "-C", str(proj))  # second time: in sync, nothing to do
    assert r.returncode == 0 and json.loads(r.stdout)["in_sync"] is True
    outputs.append(r.stdout + r.stderr)
    for text in outputs:
        for v in values.values():
            assert v not in text
            assert v[4:12] not in text
    # The live version has the values; the image did not change.
    live = aws("lambda").get_function(FunctionName=name, Qualifier="live")
    assert live["Configuration"]["Environment"]["Variables"] == {"STAGE": "dev", **values}
    assert alias_version(name) == "2"
    assert aws("lambda").get_function(FunctionName=name)["Code"]["ImageUri"] == image_uri(name, digest)


def test_precedence_config_envfile_ssm_secretsmanager(local_stack, tmp_path):
    name = uid()
    ssm_path = f"/{name}/"
    for k, v in {"B": "ssm", "C": "ssm", "D": "ssm"}.items():
        aws("ssm").put_parameter(Name=f"{ssm_path}{k}", Value=v, Type="SecureString")
    aws("secretsmanager").create_secret(Name=f"{name}-s", SecretString=json.dumps({"D": "sm"}))
    (tmp_path / ".env").write_text('# comment\nexport A="envfile"\nB=envfile\nE=\'quoted # not comment\'\n')
    proj = make_project(tmp_path, name, role=make_role(), extra=(
        'env_file = ".env"\n[environment]\nA = "config"\nZ = "config"\n'
        f'[[secrets]]\nssm_path = "{ssm_path}"\n[[secrets]]\nsecretsmanager = "{name}-s"\n'))
    fn = load_project(proj).function()
    resolved = envmod.resolve(fn)
    assert resolved.values == {"A": "envfile", "B": "ssm", "C": "ssm", "D": "sm", "E": "quoted # not comment",
                               "Z": "config"}
    assert resolved.sources["D"] == f"secretsmanager:{name}-s" and resolved.sources["Z"] == "config"
    # The deploy applies the same merged environment.
    digest = push_image(local_stack.registry.url, name, "p")
    assert deploy(proj, "--image", image_uri(name, digest)).returncode == 0
    got = aws("lambda").get_function(FunctionName=name, Qualifier="live")["Configuration"]["Environment"]["Variables"]
    assert got == resolved.values


def test_4kb_limit_is_checked_before_any_call(local_stack, tmp_path):
    big = "x" * 3000 + pysecrets.token_hex(8)
    name, proj, digest = _project_with_secret(local_stack, tmp_path, {"SMALL": "1"})
    assert deploy(proj, "--image", image_uri(name, digest)).returncode == 0
    aws("secretsmanager").put_secret_value(SecretId=f"{name}/env", SecretString=json.dumps({"BIG": big, "BIG2": big}))
    for args in (["env", "sync"], ["deploy", "--image", image_uri(name, digest)]):
        r = run_cli(*args, "-C", str(proj))
        assert r.returncode == 1
        assert "over Lambda's 4 KB limit" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert big not in r.stderr + r.stdout
    assert alias_version(name) == "1"
    got = aws("lambda").get_function(FunctionName=name)["Configuration"]["Environment"]["Variables"]
    assert got == {"STAGE": "dev", "SMALL": "1"}


def test_env_sync_keeps_the_rolled_back_image(local_stack, tmp_path):
    name, proj, d1 = _project_with_secret(local_stack, tmp_path, {"K": "1"})
    d2 = push_image(local_stack.registry.url, name, "second")
    assert deploy(proj, "--image", image_uri(name, d1)).returncode == 0
    assert deploy(proj, "--image", image_uri(name, d2)).returncode == 0
    assert run_cli("rollback", "-C", str(proj)).returncode == 0
    aws("secretsmanager").put_secret_value(SecretId=f"{name}/env", SecretString=json.dumps({"K": "2"}))
    r = run_cli("env", "sync", "--json", "-C", str(proj))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    live = aws("lambda").get_function(FunctionName=name, Qualifier="live")
    assert live["Configuration"]["Environment"]["Variables"]["K"] == "2"
    desc = live["Configuration"]["Description"]
    assert d1 in desc and out["alias_version"] == alias_version(name) == "3"


def test_env_file_errors_do_not_echo_values(tmp_path):
    p = tmp_path / ".env"
    p.write_text("GOOD=1\nthis line has-a-secret-value-zzz\n")
    try:
        envmod.parse_env_file(p)
    except Exception as exc:
        assert "zzz" not in str(exc) and ":2:" in str(exc)
    else:
        raise AssertionError("a bad line must be rejected")


def test_chalice_stage_variables_come_under_the_config_environment(local_stack, tmp_path):
    """``chalice_stage``: the stage's environment_variables from .chalice/config.json, as
    ``chalice deploy --stage`` sets them, with lambdaship's [environment] over them — in
    ``env show`` and in what a local invocation of the app sees."""
    from tests.conftest import cli_json, example_copy

    proj = example_copy("chalice-app", tmp_path / "app")
    toml = (proj / "lambdaship.toml").read_text()
    (proj / "lambdaship.toml").write_text(
        toml.replace('alias = "live"', f'alias = "live"\nchalice_stage = "prod"\nfunction_name = "{uid()}"', 1)
        .replace('function_name = "chalice-demo"\n', "").replace('GREETING = "hello"\n', ""))
    shown = cli_json("env", "show", "-C", str(proj), "--json")
    assert {v["name"]: v["source"] for v in shown["variables"]} == {"STAGE": "config", "GREETING": "chalice:prod"}
    local = cli_json("invoke", "--local", "-C", str(proj), "--path", "/config", "--json")
    assert json.loads(local["result"]["body"]) == {"stage": "dev", "greeting": "hello from prod"}

    (proj / "lambdaship.toml").write_text((proj / "lambdaship.toml").read_text().replace('"prod"', '"qa"'))
    bad = run_cli("env", "show", "-C", str(proj))
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: chalice_stage qa: no such stage in {proj / '.chalice' / 'config.json'}; choose one of: dev, prod"]
