"""``lambdaship migrate`` on the local stack (moto server + distribution registry).

Each test builds a real "old world" in moto: a zip function fronted by a REST API with one
AWS_PROXY integration per route (Chalice's shape), a deployed stage, an HTTP API (v2), an SQS
event source mapping, an S3 notification, an SNS subscription and an EventBridge target, with
the matching resource-policy statements. The CLI runs as a real process.

Smoke requests run the new image's real code on the stack's data plane (images from
``tests.runnable`` on the offline base). A migration invokes twice (the new version before
the switch, the alias after it). The injected failures are the code's own: an image that
answers 500, and one that answers 200 once and 500 after (the alias's post-switch smoke
request), so migrate must undo every change it made. The slow build test builds the Chalice
example on that base.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.conftest import EXAMPLES, run_cli
from tests.test_deploy import image_uri

ACCOUNT = "123456789012"
REGION = "us-east-1"


def _c(service: str) -> Any:
    return boto3.client(service, config=Config(retries={"max_attempts": 1}))


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return {'statusCode': 200}\n")
    return buf.getvalue()


class World:
    """The old function and everything wired to it."""

    def __init__(self, sfx: str) -> None:
        self.sfx = sfx
        self.name = f"legacy-{sfx}"
        lam, iam = _c("lambda"), _c("iam")
        role = iam.create_role(RoleName=f"role-{sfx}", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        self.role = role
        fn = lam.create_function(
            FunctionName=self.name, Runtime="python3.12", Role=role, Handler="app.app", PackageType="Zip",
            Code={"ZipFile": _zip()}, MemorySize=1024, Timeout=25, EphemeralStorage={"Size": 2048},
            Environment={"Variables": {"OLD_ONLY": "from-old", "GREETING": "old-greeting", "DB_URL": "s3cr3t-value"}},
            TracingConfig={"Mode": "Active"}, Tags={"team": "search", "cost": "42"}, Architectures=["x86_64"],
        )
        self.arn = fn["FunctionArn"]
        lam.put_function_concurrency(FunctionName=self.name, ReservedConcurrentExecutions=7)
        uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{self.arn}/invocations"

        # REST API, one resource per route (Chalice's deploy shape) + one non-Lambda method.
        gw = _c("apigateway")
        self.api = gw.create_rest_api(name=f"chalice-{sfx}")["id"]
        root = next(r["id"] for r in gw.get_resources(restApiId=self.api)["items"] if r["path"] == "/")

        def method(parent: str, part: str, verbs: list[str], integration: str = "lambda") -> str:
            rid = gw.create_resource(restApiId=self.api, parentId=parent, pathPart=part)["id"]
            for verb in verbs:
                gw.put_method(restApiId=self.api, resourceId=rid, httpMethod=verb, authorizationType="NONE")
                if integration == "lambda":
                    gw.put_integration(restApiId=self.api, resourceId=rid, httpMethod=verb, type="AWS_PROXY",
                                       integrationHttpMethod="POST", uri=uri)
                else:
                    gw.put_integration(restApiId=self.api, resourceId=rid, httpMethod=verb, type="MOCK",
                                       requestTemplates={"application/json": '{"statusCode": 200}'})
            return rid

        method(root, "health", ["GET"])
        items = method(root, "items", ["POST"])
        method(items, "{item_id}", ["GET"])
        method(root, "static", ["GET"], integration="mock")
        # One route calls the old function through its alias "prod" (qualified URI + alias policy).
        version = lam.publish_version(FunctionName=self.name)["Version"]
        lam.create_alias(FunctionName=self.name, Name="prod", FunctionVersion=version)
        legacy = gw.create_resource(restApiId=self.api, parentId=root, pathPart="legacy")["id"]
        gw.put_method(restApiId=self.api, resourceId=legacy, httpMethod="GET", authorizationType="NONE")
        gw.put_integration(restApiId=self.api, resourceId=legacy, httpMethod="GET", type="AWS_PROXY",
                           integrationHttpMethod="POST", uri=uri.replace("/invocations", ":prod/invocations"))
        lam.add_permission(FunctionName=self.name, Qualifier="prod", StatementId="legacy-invoke",
                           Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                           SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.api}/*/GET/legacy")
        gw.create_deployment(restApiId=self.api, stageName="api")
        lam.add_permission(FunctionName=self.name, StatementId="apigw-invoke", Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com",
                           SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.api}/*")

        # HTTP API (v2), auto-deployed stage.
        v2 = _c("apigatewayv2")
        self.http_api = v2.create_api(Name=f"http-{sfx}", ProtocolType="HTTP")["ApiId"]
        self.http_integration = v2.create_integration(
            ApiId=self.http_api, IntegrationType="AWS_PROXY", IntegrationUri=self.arn, PayloadFormatVersion="2.0",
        )["IntegrationId"]
        v2.create_route(ApiId=self.http_api, RouteKey="GET /health", Target=f"integrations/{self.http_integration}")
        v2.create_stage(ApiId=self.http_api, StageName="$default", AutoDeploy=True)
        lam.add_permission(FunctionName=self.name, StatementId="http-invoke", Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com",
                           SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.http_api}/*")

        # SQS → event source mapping.
        sqs = _c("sqs")
        q = sqs.create_queue(QueueName=f"jobs-{sfx}")["QueueUrl"]
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.esm = lam.create_event_source_mapping(EventSourceArn=self.queue_arn, FunctionName=self.name,
                                                   BatchSize=5)["UUID"]

        # S3 notification, SNS subscription, EventBridge target (each with its permission).
        self.bucket = f"uploads-{sfx}"
        _c("s3").create_bucket(Bucket=self.bucket)
        lam.add_permission(FunctionName=self.name, StatementId="s3-invoke", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{self.bucket}",
                           SourceAccount=ACCOUNT)
        _c("s3").put_bucket_notification_configuration(Bucket=self.bucket, NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"Id": "on-upload", "LambdaFunctionArn": self.arn,
                                              "Events": ["s3:ObjectCreated:*"]}]})
        self.topic = _c("sns").create_topic(Name=f"events-{sfx}")["TopicArn"]
        _c("sns").subscribe(TopicArn=self.topic, Protocol="lambda", Endpoint=self.arn)
        lam.add_permission(FunctionName=self.name, StatementId="sns-invoke", Action="lambda:InvokeFunction",
                           Principal="sns.amazonaws.com", SourceArn=self.topic)
        self.rule = f"nightly-{sfx}"
        rule_arn = _c("events").put_rule(Name=self.rule, ScheduleExpression="rate(1 day)")["RuleArn"]
        _c("events").put_targets(Rule=self.rule, Targets=[{"Id": "run", "Arn": self.arn, "Input": '{"job": 1}'}])
        lam.add_permission(FunctionName=self.name, StatementId="events-invoke", Action="lambda:InvokeFunction",
                           Principal="events.amazonaws.com", SourceArn=rule_arn)

    def snapshot(self) -> dict[str, Any]:
        """Everything migrate may touch: wiring, stages, policies, the old function's configuration."""
        lam, gw, v2 = _c("lambda"), _c("apigateway"), _c("apigatewayv2")
        methods = {}
        for res in gw.get_resources(restApiId=self.api, embed=["methods"])["items"]:
            for verb in res.get("resourceMethods") or {}:
                integ = gw.get_integration(restApiId=self.api, resourceId=res["id"], httpMethod=verb)
                integ.pop("ResponseMetadata")
                methods[f"{verb} {res['path']}"] = integ
        cfg = lam.get_function(FunctionName=self.name) if self.old_exists() else None
        if cfg:
            cfg.pop("ResponseMetadata")
            cfg["Code"].pop("Location", None)
        subs = sorted((s["TopicArn"], s["Endpoint"]) for s in _c("sns").list_subscriptions()["Subscriptions"]
                      if s["TopicArn"] == self.topic)
        return {
            "rest": methods,
            "stages": {s["stageName"]: s["deploymentId"] for s in gw.get_stages(restApiId=self.api)["item"]},
            "http": v2.get_integration(ApiId=self.http_api, IntegrationId=self.http_integration)["IntegrationUri"],
            "esm": lam.get_event_source_mapping(UUID=self.esm)["FunctionArn"],
            "s3": _c("s3").get_bucket_notification_configuration(Bucket=self.bucket)["LambdaFunctionConfigurations"],
            "sns": subs,
            "targets": _c("events").list_targets_by_rule(Rule=self.rule)["Targets"],
            "policy": json.loads(lam.get_policy(FunctionName=self.name)["Policy"]) if cfg else None,
            "prod_policy": json.loads(lam.get_policy(FunctionName=self.name, Qualifier="prod")["Policy"])
            if cfg else None,
            "aliases": [(a["Name"], a["FunctionVersion"]) for a in lam.list_aliases(FunctionName=self.name)["Aliases"]]
            if cfg else None,
            "old": cfg,
        }

    def old_exists(self) -> bool:
        return any(f["FunctionName"] == self.name for f in _c("lambda").list_functions()["Functions"])


@pytest.fixture
def world(local_stack: Any) -> World:
    return World(uuid.uuid4().hex[:8])


@pytest.fixture
def app_dir(tmp_path: Path, base_image_ref: str) -> Path:
    app = tmp_path / "chalice-app"
    shutil.copytree(EXAMPLES / "chalice-app", app)
    toml = app / "lambdaship.toml"
    text = toml.read_text().replace('python = "3.12"', f'python = "3.12"\nbase_image = "{base_image_ref}"')
    toml.write_text(text)
    return app


def _runnable(local_stack: Any, base: str, source: str) -> str:
    from tests.runnable import push_app_image

    repo = f"migrate-{uuid.uuid4().hex[:8]}"
    return image_uri(repo, push_app_image(local_stack.registry.url, base, repo, source, "v1"))


@pytest.fixture(scope="module")
def image_ref(local_stack: Any, lambda_base: str) -> str:
    """An image whose code answers 200 (it runs on the stack's data plane), in the registry and in
    moto's ECR, addressed by its ECR host and digest (LAMBDASHIP_REGISTRY_URL maps the host to the
    local registry). The full build path is in test_migrate_builds_and_pushes_the_project_image."""
    from tests.runnable import HEALTHY

    return _runnable(local_stack, lambda_base, HEALTHY)


def migrate(app: Path, *args: str) -> Any:
    return run_cli("migrate", "-C", str(app), *args)


def test_migrate_repoints_every_trigger_and_leaves_old_function_untouched(
    local_stack: Any, world: World, app_dir: Path, image_ref: str
) -> None:
    before = world.snapshot()
    new = f"{world.name}-img"
    r = migrate(app_dir, "--from", world.name, "--to", new, "--image", image_ref, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    alias_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{new}:live"
    assert out["alias_arn"] == alias_arn
    assert "s3cr3t-value" not in r.stdout + r.stderr  # env values never printed

    after = world.snapshot()
    # Per-route integrations re-pointed at the alias; the MOCK method untouched; no {proxy+} anywhere.
    new_uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{alias_arn}/invocations"
    assert sorted(after["rest"]) == sorted(before["rest"]) == ["GET /health", "GET /items/{item_id}", "GET /legacy",
                                                               "GET /static", "POST /items"]
    for key, integ in after["rest"].items():
        if key == "GET /static":
            assert integ == before["rest"][key]
        else:
            assert integ == {**before["rest"][key], "uri": new_uri}
    assert after["stages"]["api"] != before["stages"]["api"]  # redeployed
    assert after["http"] == alias_arn
    version = _c("lambda").get_alias(FunctionName=new, Name="live")["FunctionVersion"]
    # Real Lambda reports the alias ARN; moto resolves the alias to its version.
    assert after["esm"] in (alias_arn, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{new}:{version}")
    assert [c["LambdaFunctionArn"] for c in after["s3"]] == [alias_arn]
    assert after["sns"] == [(world.topic, alias_arn)]
    assert [(t["Id"], t["Arn"], t.get("Input")) for t in after["targets"]] == [("run", alias_arn, '{"job": 1}')]

    # Permissions on the new alias: the old statements' principals and SourceArns, plus API
    # Gateway's for each API whose integrations were re-pointed.
    old_perms = {(s["Principal"]["Service"], s["Condition"]["ArnLike"]["AWS:SourceArn"])
                 for s in before["policy"]["Statement"] + before["prod_policy"]["Statement"]}
    policy = json.loads(_c("lambda").get_policy(FunctionName=new, Qualifier="live")["Policy"])
    new_perms = {(s["Principal"]["Service"], s["Condition"]["ArnLike"]["AWS:SourceArn"])
                 for s in policy["Statement"]}
    apis = {("apigateway.amazonaws.com", f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/*")
            for api in (world.api, world.http_api)}
    assert new_perms == old_perms | apis and len(old_perms) == 6

    # The new function has the old configuration, as an image.
    fn = _c("lambda").get_function(FunctionName=new)
    cfg = fn["Configuration"]
    assert cfg["PackageType"] == "Image"
    assert (cfg["MemorySize"], cfg["Timeout"], cfg["EphemeralStorage"]["Size"], cfg["Role"]) == (
        1024, 25, 2048, world.role)
    assert cfg["TracingConfig"]["Mode"] == "Active"
    assert fn["Concurrency"]["ReservedConcurrentExecutions"] == 7
    assert {"team": "search", "cost": "42", "lambdaship:migrated-from": world.name}.items() <= fn["Tags"].items()
    env = cfg["Environment"]["Variables"]
    # old function < lambdaship.toml [environment]; no Chalice stage without --stage
    assert env["OLD_ONLY"] == "from-old" and env["DB_URL"] == "s3cr3t-value"
    assert env["STAGE"] == "dev" and env["GREETING"] == "hello"

    # The old function is untouched: configuration, policy, existence.
    assert after["old"] == before["old"]
    assert after["policy"] == before["policy"] and after["prod_policy"] == before["prod_policy"]
    assert after["aliases"] == before["aliases"]
    assert "Runtime python3.12 and Handler app.app do not apply" in r.stderr


def test_dry_run_prints_the_plan_and_changes_nothing(
    local_stack: Any, world: World, app_dir: Path, image_ref: str
) -> None:
    before = world.snapshot()
    functions = sorted(f["FunctionName"] for f in _c("lambda").list_functions()["Functions"])
    r = migrate(app_dir, "--from", world.name, "--image", image_ref, "--dry-run")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    for expected in ("lambda:CreateFunction", "lambda:PutFunctionConcurrency", "lambda:CreateAlias",
                     "lambda:AddPermission", "apigateway:PutIntegration", "apigatewayv2:UpdateIntegration",
                     "lambda:UpdateEventSourceMapping", "s3:PutBucketNotificationConfiguration", "sns:Subscribe",
                     "sns:Unsubscribe", "events:PutTargets", "apigateway:CreateDeployment", "migrate:Verify",
                     "smoke:Invoke", f"{world.name}-image", world.api, world.esm, "GET /items/{item_id}"):
        assert expected in text, expected
    assert "lambda:DeleteFunction" not in text
    assert "s3cr3t-value" not in text + r.stderr
    assert world.snapshot() == before
    assert sorted(f["FunctionName"] for f in _c("lambda").list_functions()["Functions"]) == functions

    r = migrate(app_dir, "--from", world.name, "--image", image_ref, "--dry-run", "--delete-old", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["dry_run"] is True and plan["steps"][-1]["action"] == "lambda:DeleteFunction"
    assert all(e["value"] == "****" for e in plan["environment"])
    assert world.snapshot() == before


def test_failure_after_the_switch_restores_the_original_wiring_exactly(
    local_stack: Any, world: World, app_dir: Path, lambda_base: str
) -> None:
    from tests.runnable import FAILS_SECOND

    before = world.snapshot()
    new = f"{world.name}-image"
    # the version passes, the alias answers 500 after the switch (the code fails its second request)
    r = migrate(app_dir, "--from", world.name, "--image", _runnable(local_stack, lambda_base, FAILS_SECOND),
                "--delete-old")
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert "smoke:Invoke" in errors[0] and "were undone" in errors[0]
    assert "undo" in r.stderr  # the undo steps were reported
    after = world.snapshot()
    # SNS cannot restore a subscription ARN: the old endpoint is subscribed again.
    assert after == before
    assert world.old_exists()
    assert not any(f["FunctionName"] == new for f in _c("lambda").list_functions()["Functions"])


def test_failing_new_version_stops_before_any_trigger_moves(
    local_stack: Any, world: World, app_dir: Path, lambda_base: str
) -> None:
    from tests.runnable import FAILING

    before = world.snapshot()
    # the new version's code answers 500: nothing may move
    r = migrate(app_dir, "--from", world.name, "--image", _runnable(local_stack, lambda_base, FAILING))
    assert r.returncode == 1
    error = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    # the smoke test of the new version, before any trigger step (the plan's republish steps are skipped)
    assert len(error) == 1 and re.search(r"step 9/\d+ smoke:Invoke", error[0]), r.stderr
    assert "apigateway:PutIntegration" not in r.stderr  # never reached
    assert world.snapshot() == before
    assert not any(f["FunctionName"] == f"{world.name}-image" for f in _c("lambda").list_functions()["Functions"])


def test_delete_old_removes_the_old_function_after_the_switch(
    local_stack: Any, world: World, app_dir: Path, image_ref: str
) -> None:
    r = migrate(app_dir, "--from", world.name, "--image", image_ref, "--delete-old")
    assert r.returncode == 0, r.stderr
    assert f"{world.name} deleted" in r.stdout
    assert f'set function_name = "{world.name}-image" in {app_dir / "lambdaship.toml"}' in r.stdout
    assert not world.old_exists()
    alias = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{world.name}-image:live"
    assert _c("apigatewayv2").get_integration(ApiId=world.http_api, IntegrationId=world.http_integration)[
        "IntegrationUri"] == alias


def test_refuses_bad_input_before_changing_anything(
    local_stack: Any, world: World, app_dir: Path, image_ref: str
) -> None:
    before = world.snapshot()
    r = migrate(app_dir, "--from", f"missing-{world.sfx}", "--image", image_ref)
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = migrate(app_dir, "--from", world.name, "--to", world.name, "--image", image_ref)
    assert r.returncode == 2 and "--to must differ" in r.stderr
    r = migrate(app_dir, "--from", world.name, "--stage", "nope", "--image", image_ref)
    assert r.returncode == 2 and "no such stage" in r.stderr and "dev, prod" in r.stderr
    assert world.snapshot() == before


@pytest.mark.slow
def test_migrate_builds_and_pushes_the_project_image(local_stack: Any, world: World, app_dir: Path,
                                                     lambda_base: str) -> None:
    """No --image: the Chalice example is built (base image from the local registry) and pushed."""
    # On the runnable offline base (Python 3.11): the smoke requests run the built app's code.
    toml = app_dir / "lambdaship.toml"
    text = toml.read_text()
    toml.write_text(re.sub(r'base_image = "[^"]*"', f'base_image = "{lambda_base}"', text)
                    .replace('python = "3.12"', 'python = "3.11"'))
    new = f"{world.name}-image"
    r = migrate(app_dir, "--from", world.name, "--stage", "prod", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    digest = out["digest"]
    ecr_host = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
    assert out["image_uri"] == f"{ecr_host}/{new}@{digest}"
    fn = _c("lambda").get_function(FunctionName=new)
    assert fn["Code"]["ImageUri"] == out["image_uri"]
    assert fn["Configuration"]["PackageType"] == "Image"
    reg = local_stack.registry.url
    manifest = httpx.get(f"{reg}/v2/{new}/manifests/{digest}", headers={"Accept": ",".join([
        "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"])})
    assert manifest.status_code == 200
    config = httpx.get(f"{reg}/v2/{new}/blobs/{manifest.json()['config']['digest']}").json()
    assert config["config"]["Cmd"] == ["app.app"]  # the Chalice app object is the handler
    # --stage prod: chalice's prod GREETING is overridden by lambdaship.toml's [environment].
    env = fn["Configuration"]["Environment"]["Variables"]
    assert env["GREETING"] == "hello" and env["STAGE"] == "dev"
    assert _c("apigateway").get_integration(
        restApiId=world.api, resourceId=next(
            r["id"] for r in _c("apigateway").get_resources(restApiId=world.api)["items"] if r["path"] == "/health"),
        httpMethod="GET")["uri"].endswith(f"function:{new}:live/invocations")


class SmallWorld:
    """An old zip function behind one REST API route (POST: no default smoke request) and stage."""

    def __init__(self, sfx: str) -> None:
        lam, gw = _c("lambda"), _c("apigateway")
        self.name = f"small-{sfx}"
        role = _c("iam").create_role(RoleName=f"small-role-{sfx}", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        self.arn = lam.create_function(
            FunctionName=self.name, Runtime="python3.12", Role=role, Handler="app.app", PackageType="Zip",
            Code={"ZipFile": _zip()}, Environment={"Variables": {
                "OLD_ONLY": "from-old", "STAGE": "prod-old", "GREETING": "old", "DB_URL": "s3cr3t-value"}},
        )["FunctionArn"]
        self.api = gw.create_rest_api(name=f"small-{sfx}")["id"]
        root = next(r["id"] for r in gw.get_resources(restApiId=self.api)["items"] if r["path"] == "/")
        rid = gw.create_resource(restApiId=self.api, parentId=root, pathPart="orders")["id"]
        gw.put_method(restApiId=self.api, resourceId=rid, httpMethod="POST", authorizationType="NONE")
        gw.put_integration(restApiId=self.api, resourceId=rid, httpMethod="POST", type="AWS_PROXY",
                           integrationHttpMethod="POST",
                           uri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{self.arn}/invocations")
        gw.create_deployment(restApiId=self.api, stageName="api")
        # No statement for this API: the old function was wired by hand (or its policy was lost).


def _small_app(tmp_path: Path, name: str) -> Path:
    app = tmp_path / "small-app"
    (app / ".chalice").mkdir(parents=True)
    (app / "app.py").write_text("from chalice import Chalice\napp = Chalice(app_name='small')\n")
    (app / ".chalice" / "config.json").write_text(json.dumps({"version": "2.0", "stages": {
        "dev": {"environment_variables": {"STAGE": "dev", "GREETING": "dev"}},
        "prod": {"environment_variables": {"STAGE": "prod", "GREETING": "prod"}}}}))
    (app / "lambdaship.toml").write_text(f'function_name = "{name}"\npython = "3.12"\n\n'
                                         '[environment]\nGREETING = "from-config"\n')
    return app


def _env_rows(out: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    assert all(e["value"] == "****" for e in out["environment"])
    return {e["name"]: (e["source"], e["overrides"]) for e in out["environment"]}


def test_without_stage_the_old_environment_is_kept_and_no_chalice_stage_is_imported(
        local_stack: Any, tmp_path: Path, image_ref: str) -> None:
    world = SmallWorld(uuid.uuid4().hex[:8])
    app = _small_app(tmp_path, world.name)
    r = migrate(app, "--from", world.name, "--image", image_ref, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    rows = _env_rows(json.loads(r.stdout))
    old = f"function:{world.name}"
    assert rows == {"DB_URL": (old, []), "OLD_ONLY": (old, []), "STAGE": (old, []), "GREETING": ("config", [old])}
    assert "defines Chalice stage(s) dev, prod; none imported" in r.stderr
    text = migrate(app, "--from", world.name, "--image", image_ref, "--dry-run").stdout
    assert f"GREETING=****  (config, over {old})" in text and "s3cr3t" not in text


def test_explicit_stage_wins_over_the_old_function_and_every_api_gets_its_permission(
        local_stack: Any, tmp_path: Path, image_ref: str) -> None:
    world = SmallWorld(uuid.uuid4().hex[:8])
    app = _small_app(tmp_path, world.name)
    new = f"{world.name}-image"
    r = migrate(app, "--from", world.name, "--image", image_ref, "--stage", "prod", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    old = f"function:{world.name}"
    assert _env_rows(plan)["STAGE"] == ("chalice:prod", [old])
    assert _env_rows(plan)["GREETING"] == ("config", [old, "chalice:prod"])
    actions = [s["action"] for s in plan["steps"]]
    grant = next(s for s in plan["steps"] if s["action"] == "lambda:AddPermission")
    assert actions.index("lambda:AddPermission") < actions.index("apigateway:PutIntegration")
    source = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{world.api}/*"
    assert grant["params"]["SourceArn"] == source and grant["params"]["Qualifier"] == "live"

    r = migrate(app, "--from", world.name, "--image", image_ref, "--stage", "prod")  # no smoke path: none invoked
    assert r.returncode == 0, r.stderr
    env = _c("lambda").get_function(FunctionName=new)["Configuration"]["Environment"]["Variables"]
    assert env == {"OLD_ONLY": "from-old", "DB_URL": "s3cr3t-value", "STAGE": "prod", "GREETING": "from-config"}
    policy = json.loads(_c("lambda").get_policy(FunctionName=new, Qualifier="live")["Policy"])
    granted = [(s["Action"], s["Principal"]["Service"], s["Condition"]["ArnLike"]["AWS:SourceArn"])
               for s in policy["Statement"]]
    assert granted == [("lambda:InvokeFunction", "apigateway.amazonaws.com", source)]
    resource = next(x["id"] for x in _c("apigateway").get_resources(restApiId=world.api)["items"]
                    if x["path"] == "/orders")
    uri = _c("apigateway").get_integration(restApiId=world.api, resourceId=resource, httpMethod="POST")["uri"]
    assert uri.endswith(f"function:{new}:live/invocations")


# -- pure parts (no AWS) ----------------------------------------------------------------------------
def test_chalice_stage_environment_precedence_and_placeholders(tmp_path: Path) -> None:
    from lambdaship import chalice_config as chalice
    from lambdaship.errors import UsageError

    assert chalice.stage_env(tmp_path, None) is None  # not a Chalice project
    with pytest.raises(UsageError):
        chalice.stage_env(tmp_path, "prod")
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps({
        "version": "2.0",
        "environment_variables": {"A": "top", "B": "top", "SECRET": "${SECRET}"},
        "stages": {
            "prod": {"environment_variables": {"B": "prod", "C": "prod"},
                     "lambda_functions": {"api_handler": {"environment_variables": {"C": "handler"}}}},
        },
    }))
    prod = chalice.stage_env(tmp_path, "prod")
    assert prod is not None
    assert prod.values == {"A": "top", "B": "prod", "C": "handler"}
    assert prod.placeholders == ["SECRET"]
    assert chalice.stage_env(tmp_path, None) is None  # no stage named: nothing imported, no "dev" default
    assert chalice.stage_names(tmp_path) == ["prod"]
    with pytest.raises(UsageError, match="no such stage"):
        chalice.stage_env(tmp_path, "dev")


def test_policy_statements_become_add_permission_parameters() -> None:
    from lambdaship.migrate.discover import parse_statement
    from lambdaship.patterns import arn_pattern

    st = {"Sid": "s3", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
          "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:us-east-1:1:function:f",
          "Condition": {"StringEquals": {"AWS:SourceAccount": "123456789012"},
                        "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::bucket"}}}
    perm = parse_statement(st, None)
    assert perm is not None
    assert perm.add_params("new", "live", "s3") == {
        "FunctionName": "new", "Qualifier": "live", "StatementId": "s3", "Action": "lambda:InvokeFunction",
        "Principal": "s3.amazonaws.com", "SourceArn": "arn:aws:s3:::bucket", "SourceAccount": "123456789012"}
    assert parse_statement({**st, "Effect": "Deny"}, None) is None
    pattern = arn_pattern("arn:aws:lambda:us-east-1:1:function:f")
    base = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
    for uri in (f"{base}arn:aws:lambda:us-east-1:1:function:f/invocations",
                f"{base}arn:aws:lambda:us-east-1:1:function:f:live/invocations",
                f"{base}arn:aws:lambda:us-east-1:1:function:f:${{stageVariables.alias}}/invocations"):
        assert pattern.sub("NEW", uri) == f"{base}NEW/invocations"
    assert not pattern.search(f"{base}arn:aws:lambda:us-east-1:1:function:f2/invocations")
    assert pattern.fullmatch("arn:aws:lambda:us-east-1:1:function:f:7")


def test_image_warnings_name_what_an_image_cannot_carry(tmp_path: Path) -> None:
    from lambdaship.config import FunctionConfig
    from lambdaship.migrate.core import _image_warnings
    from lambdaship.migrate.discover import Inventory

    (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
    fn = FunctionConfig(key="x", function_name="x-image", source=tmp_path, handler="app.handler", python="3.12")
    cfg = {"Runtime": "python3.11", "Handler": "app.handler", "SnapStart": {"ApplyOn": "PublishedVersions"},
           "Layers": [{"Arn": "arn:aws:lambda:us-east-1:1:layer:numpy:3"},
                      {"Arn": "arn:aws:lambda:us-east-1:1:layer:x:1"}]}
    inv = Inventory(name="x", arn="arn:aws:lambda:us-east-1:1:function:x", configuration=cfg, tags={},
                    reserved_concurrency=None, aliases=[], url={"FunctionUrl": "https://abc.lambda-url.aws/"})
    warnings = _image_warnings(inv, fn)
    assert [w for w in warnings if w.startswith("layer ")] == [
        "layer arn:aws:lambda:us-east-1:1:layer:numpy:3 cannot be used by an image function: "
        "its content must come from the requirements",
        "layer arn:aws:lambda:us-east-1:1:layer:x:1 cannot be used by an image function: "
        "its content must come from the requirements"]
    assert any("Runtime python3.11 and Handler app.handler do not apply" in w for w in warnings)
    assert any("runs python3.11, the image is built for python 3.12" in w for w in warnings)
    assert any("SnapStart" in w for w in warnings) and any("https://abc.lambda-url.aws/" in w for w in warnings)
    assert all("\n" not in w for w in warnings)
