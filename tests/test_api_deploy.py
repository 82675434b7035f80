"""The app's REST API, authorizer/event functions and triggers on the local stack (moto):
resources, methods, integrations (alias ARN), authorizers, the permission scoped to the API's
ARN, API key + usage plan, the schedule rule and the SQS mapping; a redeploy changes only
what changed and a removed route disappears."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lambdaship.api.deploy import deploy_app, run_steps
from lambdaship.api.model import extract
from lambdaship.api.status import app_status
from lambdaship.config import load_project
from lambdaship.local.stack import ACCOUNT_ID, REGION
from tests.test_deploy import aws, uid

APP = Path(__file__).parent / "apps" / "chalice-features"
IMAGE = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/features@sha256:" + "a" * 64


def _function(name: str) -> None:
    iam = aws("iam")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    lam = aws("lambda")
    lam.create_function(FunctionName=name, PackageType="Image", Code={"ImageUri": IMAGE}, Role=role,
                        Environment={"Variables": {"STAGE": "test"}})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)


def _resources(api_id: str) -> dict[str, dict]:
    items = aws("apigateway").get_resources(restApiId=api_id, embed=["methods"])["items"]
    return {r["path"]: r for r in items}


def features_app(tmp_path: Path, prefix: str):
    """A copy of the chalice-features app with its queue and a deployed function of a new name."""
    src = tmp_path / "app"
    shutil.copytree(APP, src)
    name = uid(prefix)
    aws("sqs").create_queue(QueueName="chalice-features-jobs")
    _function(name)
    return load_project(src, {"function_name": name}).function()


@pytest.fixture
def app(local_stack, tmp_path):
    return features_app(tmp_path, "features")


def test_deploy_creates_the_api_functions_and_triggers(app) -> None:
    fn = app
    name = fn.function_name
    alias_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}:live"
    dry = deploy_app(fn, image_uri=IMAGE, dry_run=True)
    actions = [s.action for s in dry.steps]
    assert "apigateway:CreateRestApi" in actions and "apigateway:CreateDeployment" in actions
    assert "events:PutRule" in actions and "lambda:CreateEventSourceMapping" in actions
    assert aws("apigateway").get_rest_apis()["items"] == [] or all(
        a["name"] != "chalice-features" or a.get("tags", {}).get("lambdaship:function") != name
        for a in aws("apigateway").get_rest_apis()["items"])  # the dry run created nothing

    plan = deploy_app(fn, image_uri=IMAGE)
    api_id = plan.api.api_id
    assert api_id and plan.api.url == f"https://{api_id}.execute-api.{REGION}.amazonaws.com/api/"
    res = _resources(api_id)
    assert {"/", "/items", "/items/{item_id}", "/cors-default", "/cors-custom", "/no-cors", "/binary", "/keyed",
            "/private"} <= set(res)
    item = res["/items/{item_id}"]["resourceMethods"]
    assert set(item) == {"GET", "PUT"}
    assert item["GET"]["methodIntegration"]["type"] == "AWS_PROXY"
    assert item["GET"]["methodIntegration"]["uri"] == (
        f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{alias_arn}/invocations")
    assert "OPTIONS" not in res["/no-cors"].get("resourceMethods", {})
    options = res["/cors-custom"]["resourceMethods"]["OPTIONS"]["methodIntegration"]
    assert options["type"] == "MOCK"
    headers = options["integrationResponses"]["200"]["responseParameters"]
    assert headers["method.response.header.Access-Control-Allow-Origin"] == "'https://example.com'"
    assert headers["method.response.header.Access-Control-Max-Age"] == "'600'"
    assert res["/keyed"]["resourceMethods"]["GET"]["apiKeyRequired"] is True
    private = res["/private"]["resourceMethods"]["GET"]
    assert private["authorizationType"] == "CUSTOM"
    auths = aws("apigateway").get_authorizers(restApiId=api_id)["items"]
    assert [a["name"] for a in auths] == ["token_auth"] and private["authorizerId"] == auths[0]["id"]
    auth_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}-token_auth:live"
    assert auths[0]["authorizerUri"].endswith(f"/functions/{auth_arn}/invocations")
    assert auths[0]["identitySource"] == "method.request.header.Authorization"
    api = aws("apigateway").get_rest_api(restApiId=api_id)
    assert "application/x-lambdaship" in api["binaryMediaTypes"] and "image/png" in api["binaryMediaTypes"]
    assert [s["stageName"] for s in aws("apigateway").get_stages(restApiId=api_id)["item"]] == ["api"]
    plans = [p for p in aws("apigateway").get_usage_plans()["items"]
             if any(s["apiId"] == api_id for s in p.get("apiStages", []))]
    assert len(plans) == 1 and aws("apigateway").get_usage_plan_keys(usagePlanId=plans[0]["id"])["items"]

    lam = aws("lambda")
    policy = json.loads(lam.get_policy(FunctionName=name, Qualifier="live")["Policy"])["Statement"]
    api_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api_id}/*"
    assert [st["Condition"]["ArnLike"]["AWS:SourceArn"] for st in policy
            if st["Action"] == "lambda:InvokeFunction"] == [api_arn]
    auth_fn = lam.get_function(FunctionName=f"{name}-token_auth")
    assert auth_fn["Code"]["ImageUri"] == IMAGE
    assert auth_fn["Configuration"]["ImageConfigResponse"]["ImageConfig"]["Command"] == ["app.token_auth"]
    auth_policy = json.loads(lam.get_policy(FunctionName=f"{name}-token_auth", Qualifier="live")["Policy"])
    assert api_arn in json.dumps(auth_policy)

    rule = aws("events").describe_rule(Name=f"{name}-every_five")
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    targets = aws("events").list_targets_by_rule(Rule=f"{name}-every_five")["Targets"]
    assert [t["Arn"] for t in targets] == [f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}-every_five:live"]
    sched_policy = json.loads(lam.get_policy(FunctionName=f"{name}-every_five", Qualifier="live")["Policy"])
    assert rule["Arn"] in json.dumps(sched_policy)
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:chalice-features-jobs"
    maps = [m for m in lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]
            if m["FunctionArn"].startswith(f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}-on_job")]
    assert len(maps) == 1 and maps[0]["BatchSize"] == 5
    live = lam.get_alias(FunctionName=f"{name}-on_job", Name="live")["FunctionVersion"]
    # AWS keeps the alias ARN; moto stores the version the alias points at.
    assert maps[0]["FunctionArn"].rsplit(":", 1)[1] in ("live", live)
    assert lam.get_function(FunctionName=f"{name}-plain")["Configuration"]["ImageConfigResponse"][
        "ImageConfig"]["Command"] == ["app.plain"]

    # Same app again: nothing to do.
    again = deploy_app(fn, image_uri=IMAGE, dry_run=True)
    assert again.steps == [], [s.render() for s in again.steps]

    shown = app_status(fn)
    assert shown["api"]["urls"] == [plan.api.url] and "GET /items/{item_id}" in shown["api"]["routes"]
    assert "OPTIONS /cors-custom" not in shown["api"]["routes"]
    assert f"rule {name}-every_five → {name}-every_five" in shown["triggers"]
    assert any(t.startswith(f"{queue_arn} → {name}-on_job") for t in shown["triggers"])


def test_redeploy_changes_only_what_changed_and_removes_routes(app) -> None:
    fn = app
    first = deploy_app(fn, image_uri=IMAGE)
    api_id = first.api.api_id
    src = fn.source / "app.py"
    text = src.read_text()
    text = text.replace('@app.route("/no-cors")\ndef no_cors():\n    return {"cors": None}\n', "")
    text = text.replace('@app.route("/keyed", api_key_required=True)', '@app.route("/keyed", api_key_required=False)')
    schedule = '@app.schedule(Rate(5, unit=Rate.MINUTES))\ndef every_five(event):\n    return {"scheduled": True}\n'
    assert schedule in text
    text = text.replace(schedule, "")
    src.write_text(text)
    plan = deploy_app(fn, image_uri=IMAGE, dry_run=True)
    shown = [(s.action, s.note) for s in plan.steps]
    assert ("apigateway:DeleteResource", "/no-cors: removed") in shown
    assert ("apigateway:DeleteMethod", "GET /keyed: authorization changed") in shown
    assert not any(a in ("apigateway:CreateRestApi", "apigateway:CreateResource", "lambda:CreateFunction")
                   for a, _ in shown)
    done = deploy_app(fn, image_uri=IMAGE)
    assert done.api.api_id == api_id  # the same API, the same URL
    res = _resources(api_id)
    assert "/no-cors" not in res and res["/keyed"]["resourceMethods"]["GET"]["apiKeyRequired"] is False
    assert len(aws("apigateway").get_deployments(restApiId=api_id)["items"]) == 2
    # The removed schedule: its rule and its function are gone, the other handlers stay.
    assert ("lambda:DeleteFunction", "no handler of the app runs here any more") in shown
    names = [f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]]
    assert f"{fn.function_name}-every_five" not in names and f"{fn.function_name}-on_job" in names
    assert f"{fn.function_name}-every_five" not in [r["Name"] for r in aws("events").list_rules()["Rules"]]
    assert deploy_app(fn, image_uri=IMAGE, dry_run=True).steps == []


def test_an_api_chalice_deployed_is_adopted(app) -> None:
    fn = app
    model = extract(fn)
    existing = aws("apigateway").create_rest_api(name=model.app_name)["id"]
    deployed = fn.source / ".chalice" / "deployed"
    deployed.mkdir(parents=True)
    (deployed / "dev.json").write_text(json.dumps({"resources": [
        {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": existing,
         "rest_api_url": f"https://{existing}.execute-api.{REGION}.amazonaws.com/api/"}]}))
    before = {a["id"] for a in aws("apigateway").get_rest_apis()["items"]}
    plan = deploy_app(fn, image_uri=IMAGE, model=model)
    assert plan.api.api_id == existing and plan.api.adopted == "chalice-deployed"
    assert {a["id"] for a in aws("apigateway").get_rest_apis()["items"]} == before  # no second API
    assert "/items/{item_id}" in _resources(existing)


def test_an_api_migrate_re_pointed_is_adopted(app) -> None:
    fn = app
    model = extract(fn)
    gw = aws("apigateway")
    api_id = gw.create_rest_api(name=model.app_name)["id"]  # made by Chalice, re-pointed by migrate
    root = next(r["id"] for r in gw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    res = gw.create_resource(restApiId=api_id, parentId=root, pathPart="binary")["id"]
    gw.put_method(restApiId=api_id, resourceId=res, httpMethod="GET", authorizationType="NONE")
    alias = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{fn.function_name}:live"
    gw.put_integration(restApiId=api_id, resourceId=res, httpMethod="GET", type="AWS_PROXY",
                       integrationHttpMethod="POST",
                       uri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{alias}/invocations")
    plan = deploy_app(fn, image_uri=IMAGE, model=model)
    assert (plan.api.api_id, plan.api.adopted) == (api_id, "migrated")
    assert not any(s.action == "apigateway:CreateRestApi" for s in plan.steps)
    assert "/items/{item_id}" in _resources(api_id)


def test_function_url_on_the_alias_for_a_plain_handler(local_stack, tmp_path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 200}\n")
    name = uid("url")
    (tmp_path / "lambdaship.toml").write_text(
        f'function_name = "{name}"\nhandler = "app.handler"\n'
        '[function_url]\nauth = "NONE"\ncors = { AllowOrigins = ["https://example.com"] }\n')
    _function(name)
    fn = load_project(tmp_path).function()
    plan = deploy_app(fn, image_uri=IMAGE)
    assert [s.action for s in plan.steps] == ["lambda:CreateFunctionUrlConfig", "lambda:AddPermission"]
    cfg = aws("lambda").get_function_url_config(FunctionName=name, Qualifier="live")
    assert cfg["AuthType"] == "NONE" and cfg["Cors"]["AllowOrigins"] == ["https://example.com"]
    assert plan.function_url == cfg["FunctionUrl"]
    policy = json.loads(aws("lambda").get_policy(FunctionName=name, Qualifier="live")["Policy"])["Statement"]
    assert [(p["Action"], p["Principal"]) for p in policy] == [("lambda:InvokeFunctionUrl", "*")]
    assert deploy_app(fn, image_uri=IMAGE, dry_run=True).steps == []


def test_custom_domain_from_the_chalice_config(app) -> None:
    fn = app
    domain = f"{fn.function_name}.example.com"
    (fn.source / ".chalice").mkdir(exist_ok=True)
    (fn.source / ".chalice" / "config.json").write_text(json.dumps({"version": "2.0", "app_name": "chalice-features",
        "stages": {"dev": {"api_gateway_stage": "api", "api_gateway_custom_domain": {
            "domain_name": domain, "certificate_arn": f"arn:aws:acm:us-east-1:{ACCOUNT_ID}:certificate/abc",
            "url_prefix": "v1"}}}}))
    plan = deploy_app(fn, image_uri=IMAGE)
    gw = aws("apigateway")
    assert gw.get_domain_name(domainName=domain)["domainName"] == domain
    mappings = gw.get_base_path_mappings(domainName=domain)["items"]
    assert [(m["basePath"], m["restApiId"], m["stage"]) for m in mappings] == [("v1", plan.api.api_id, "api")]
    assert deploy_app(fn, image_uri=IMAGE, dry_run=True).steps == []


def test_websocket_handlers_get_a_websocket_api_on_their_functions(local_stack, tmp_path) -> None:
    name = uid("ws")
    (tmp_path / "app.py").write_text(
        "from chalice import Chalice\napp = Chalice(app_name='chat')\n"
        "@app.on_ws_connect()\ndef connect(event):\n    pass\n"
        "@app.on_ws_message()\ndef message(event):\n    pass\n"
        "@app.on_ws_disconnect()\ndef disconnect(event):\n    pass\n")
    (tmp_path / "requirements.txt").write_text("chalice\n")
    (tmp_path / "lambdaship.toml").write_text(f'function_name = "{name}"\nrequirements = "requirements.txt"\n')
    _function(name)
    fn = load_project(tmp_path).function()
    model = extract(fn)
    assert [h["route_key"] for h in model.websocket_handlers] == ["$connect", "$default", "$disconnect"]
    plan = deploy_app(fn, image_uri=IMAGE, model=model, dry_run=True)
    assert plan.steps[-1].action == "apigatewayv2:CreateDeployment"
    # moto 5.2.1 answers 404 to apigatewayv2 CreateDeployment: run every step before it.
    ctx = run_steps(fn, plan.steps[:-1], plan.variables())
    api_id = ctx["websocket_api_id"]
    v2 = aws("apigatewayv2")
    assert v2.get_api(ApiId=api_id)["ProtocolType"] == "WEBSOCKET"
    routes = {r["RouteKey"]: r["Target"].removeprefix("integrations/") for r in v2.get_routes(ApiId=api_id)["Items"]}
    assert set(routes) == {"$connect", "$default", "$disconnect"}
    uri = v2.get_integration(ApiId=api_id, IntegrationId=routes["$connect"])["IntegrationUri"]
    assert uri.endswith(f"function:{name}-connect:live/invocations")
    cmd = aws("lambda").get_function(FunctionName=f"{name}-message")["Configuration"]
    assert cmd["ImageConfigResponse"]["ImageConfig"]["Command"] == ["app.message"]
    policy = aws("lambda").get_policy(FunctionName=f"{name}-connect", Qualifier="live")["Policy"]
    assert f"{api_id}/*" in policy
    assert [s["StageName"] for s in v2.get_stages(ApiId=api_id)["Items"]] == ["api"]
    assert deploy_app(fn, image_uri=IMAGE, model=model, dry_run=True).steps == []
    assert app_status(fn)["websocket_urls"] == [f"wss://{api_id}.execute-api.{REGION}.amazonaws.com/api/"]


def test_a_zip_deployed_app_gets_its_other_functions_from_the_same_zip(app, tmp_path) -> None:
    import zipfile

    fn = app
    archive = tmp_path / "app.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(fn.source / "app.py", "app.py")
    plan = deploy_app(fn, zip_path=archive)
    lam = aws("lambda")
    cfg = lam.get_function(FunctionName=f"{fn.function_name}-token_auth")["Configuration"]
    assert (cfg["PackageType"], cfg["Handler"], cfg["Runtime"]) == ("Zip", "app.token_auth", "python3.12")
    assert plan.api.api_id and lam.get_alias(FunctionName=f"{fn.function_name}-on_job", Name="live")
    assert deploy_app(fn, zip_path=archive, dry_run=True).steps == []
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("extra.py", "X = 1\n")
    changed = [s.action for s in deploy_app(fn, zip_path=archive, dry_run=True).steps]
    assert changed.count("lambda:UpdateFunctionCode") == 4 and "apigateway:CreateDeployment" not in changed
