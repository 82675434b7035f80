"""The local stack's data plane: Lambda Invoke, logs, API URLs and pass-through, with real code.

Every test talks to the stack's one AWS endpoint (``AWS_ENDPOINT_URL`` = the data plane) with
plain boto3 / httpx, as a user's code would. Functions are zip functions (created with
``ZipFile`` through the endpoint) running on the offline Lambda-like base inside the sandbox;
image functions are in ``test_dataplane_deploy.py``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import time
import uuid
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdaship.local.stack import ACCOUNT_ID, REGION
from tests.conftest import run_cli

ECHO_HTTP = """
import json, os
def handler(event, context):
    keep = ("resource", "path", "httpMethod", "pathParameters", "stageVariables", "version", "routeKey", "rawPath")
    ctx = event.get("requestContext") or {}
    body = {k: event.get(k) for k in keep}
    body.update(stage=ctx.get("stage"), apiId=ctx.get("apiId"), resourcePath=ctx.get("resourcePath"),
                domainName=ctx.get("domainName"), fn_version=os.environ["AWS_LAMBDA_FUNCTION_VERSION"])
    return {"statusCode": 201, "headers": {"Content-Type": "application/json", "X-From": "fn"},
            "body": json.dumps(body)}
"""


HTTP = httpx.Client(timeout=120)  # a first request may start a worker on a freshly unpacked base


def aws(service: str) -> Any:
    return boto3.client(service, config=Config(retries={"max_attempts": 1}, read_timeout=120))


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def zip_of(source: str, name: str = "app.py") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, source)
    return buf.getvalue()


@pytest.fixture(scope="module")
def role(local_stack) -> str:
    return aws("iam").create_role(RoleName=uid("dp-role"), AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]


def make_function(role: str, source: str, **kw: Any) -> str:
    name = kw.pop("name", None) or uid("dp")
    aws("lambda").create_function(FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler",
                                  Code={"ZipFile": zip_of(source)}, **kw)
    return name


def invoke(name: str, payload: Any = None, **kw: Any) -> tuple[dict[str, Any], Any]:
    r = aws("lambda").invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), **kw)
    raw = r["Payload"].read()
    return r, (json.loads(raw) if raw else None)


def dataplane(local_stack) -> dict[str, Any]:
    return httpx.get(f"{local_stack.endpoint}/_lambdaship/dataplane", timeout=10).json()


def flush_logs(local_stack) -> None:
    assert httpx.post(f"{local_stack.endpoint}/_lambdaship/flush", timeout=30).status_code == 200


# -- Invoke -------------------------------------------------------------------------------------------
def test_invoke_runs_the_code_with_its_configuration_and_tails_the_log(local_stack, role, tmp_path):
    name = make_function(role, "import os\nprint('init ran')\n"
                         "def handler(event, context):\n    print('got', event['n'])\n"
                         "    return {'n': event['n'] * 2, 'mem': os.environ['AWS_LAMBDA_FUNCTION_MEMORY_SIZE'],\n"
                         "            'x': os.environ.get('X'), 'left_ms': context.get_remaining_time_in_millis()}\n",
                         MemorySize=384, Timeout=7, Environment={"Variables": {"X": "from-config"}})
    r, out = invoke(name, {"n": 21}, LogType="Tail")
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert out["n"] == 42 and out["mem"] == "384" and out["x"] == "from-config"
    assert 5000 < out["left_ms"] <= 7000  # the deadline comes from the configured timeout
    assert r["ExecutedVersion"] == "$LATEST"
    tail = base64.b64decode(r["LogResult"]).decode().splitlines()
    request_id = r["ResponseMetadata"]["RequestId"]
    assert tail[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert "init ran" in tail and "got 21" in tail
    assert tail[-2] == f"END RequestId: {request_id}"
    assert tail[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "\tMemory Size: 384 MB\tMax Memory Used: " in tail[-1] and "\tInit Duration: " in tail[-1]
    # The same lines are in CloudWatch Logs, where `lambdaship logs` reads them.
    flush_logs(local_stack)
    (tmp_path / "lambdaship.toml").write_text(f'function_name = "{name}"\nhandler = "app.handler"\n')
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    logs = run_cli("logs", "-C", str(tmp_path), "--json")
    assert logs.returncode == 0, logs.stderr
    events = json.loads(logs.stdout)["events"]
    messages = [e["message"] for e in events]
    assert f"START RequestId: {request_id} Version: $LATEST" in messages and "got 21" in messages
    assert any(m.startswith(f"REPORT RequestId: {request_id}") for m in messages)
    stream = events[0]["stream"]
    assert stream.startswith(time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime())), stream


def test_event_runs_in_the_background_and_dry_run_runs_nothing(local_stack, role):
    name = make_function(role, "def handler(event, context):\n    print('event-marker', event['m'])\n    return 1\n")
    before = dataplane(local_stack)["invocations"]
    r, body = invoke(name, {"m": "dry"}, InvocationType="DryRun")
    assert r["StatusCode"] == 204 and body is None
    marker = uuid.uuid4().hex
    r, body = invoke(name, {"m": marker}, InvocationType="Event")
    assert r["StatusCode"] == 202 and body is None
    deadline = time.monotonic() + 60
    messages: list[str] = []
    while time.monotonic() < deadline:
        flush_logs(local_stack)
        events = aws("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}").get("events", []) \
            if _group_exists(name) else []
        messages = [e["message"] for e in events]
        if any(marker in m for m in messages):
            break
        time.sleep(0.3)
    assert any(m == f"event-marker {marker}" for m in messages), messages
    assert not any("dry" in m for m in messages)
    assert dataplane(local_stack)["invocations"] == before + 1  # the event ran, the dry run did not


def _group_exists(name: str) -> bool:
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    return any(g["logGroupName"] == f"/aws/lambda/{name}" for g in groups)


def test_versions_aliases_and_weighted_routing(local_stack, role):
    lam = aws("lambda")
    name = make_function(role, "def handler(e, c):\n    return 'one'\n")
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_code(FunctionName=name, ZipFile=zip_of("def handler(e, c):\n    return 'two'\n"))
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    assert invoke(name, Qualifier="1")[1] == "one"
    assert invoke(name, Qualifier="2")[1] == "two"
    assert invoke(name)[1] == "two"  # $LATEST has the second code
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    assert invoke(f"{arn}:1")[1] == "one"  # a qualified ARN
    seen: Counter[str] = Counter()
    for _ in range(40):
        r, out = invoke(name, Qualifier="live")
        assert out == {"1": "one", "2": "two"}[r["ExecutedVersion"]]
        seen[r["ExecutedVersion"]] += 1
    assert seen["1"] >= 5 and seen["2"] >= 5, seen  # P(fail) ~ 2 * 1e-7
    with pytest.raises(ClientError) as err:
        invoke(name, Qualifier="nope")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        invoke(uid("missing"))
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"  # moto's own answer


def test_function_errors_are_lambdas(local_stack, role):
    at_import = make_function(role, "raise RuntimeError('broken at import')\ndef handler(e, c):\n    return 1\n")
    r, out = invoke(at_import)
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    assert out["errorType"] == "RuntimeError" and out["errorMessage"] == "broken at import"
    assert any("app.py" in line for line in out["stackTrace"])
    raises = make_function(role, "def handler(e, c):\n    raise KeyError('k' + str(e['i']))\n")
    r, out = invoke(raises, {"i": 3})
    assert r["FunctionError"] == "Unhandled" and out["errorType"] == "KeyError" and "k3" in out["errorMessage"]
    slow = make_function(role, "import time\ndef handler(e, c):\n    time.sleep(10)\n", Timeout=1)
    t0 = time.monotonic()
    r, out = invoke(slow, LogType="Tail")
    assert time.monotonic() - t0 < 8
    assert r["FunctionError"] == "Unhandled"
    assert out["errorMessage"].endswith("Task timed out after 1.00 seconds")
    tail = base64.b64decode(r["LogResult"]).decode()
    assert "Task timed out after 1.00 seconds" in tail and "Status: timeout" in tail
    # after a timeout the function still answers (its worker was replaced)
    aws("lambda").update_function_configuration(FunctionName=slow, Timeout=20)
    aws("lambda").update_function_code(FunctionName=slow, ZipFile=zip_of("def handler(e, c):\n    return 'back'\n"))
    assert invoke(slow)[1] == "back"


def test_warm_worker_is_reused_and_recycled_on_change(local_stack, role):
    src = "import os, uuid\nBOOT = uuid.uuid4().hex\ndef handler(e, c):\n    return [BOOT, os.environ.get('X')]\n"
    name = make_function(role, src, Environment={"Variables": {"X": "a"}})
    first = invoke(name)[1]
    assert invoke(name)[1] == first  # warm: the same runtime (the same module import) answers
    aws("lambda").update_function_configuration(FunctionName=name, Environment={"Variables": {"X": "b"}})
    changed = invoke(name)[1]
    assert changed[1] == "b" and changed[0] != first[0]  # a new runtime with the new configuration
    stats = dataplane(local_stack)
    assert stats["recycled"] >= 1 and f"{name}:$LATEST" in stats["warm"]


def test_bad_requests_answer_as_lambda(local_stack, role):
    name = make_function(role, "def handler(e, c):\n    return 1\n")
    url = f"{local_stack.endpoint}/2015-03-31/functions/{name}/invocations"
    r = httpx.post(url, content=b"{not json")
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    r = httpx.post(url, content=b'"' + b"x" * (6 * 1024 * 1024) + b'"')
    assert r.status_code == 413 and r.headers["x-amzn-ErrorType"] == "RequestTooLargeException"


# -- HTTP entry points ---------------------------------------------------------------------------------
def _rest_api(target_arn: str) -> tuple[str, str]:
    gw = aws("apigateway")
    api = gw.create_rest_api(name=uid("dp-api"))["id"]
    root = next(r["id"] for r in gw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    items = gw.create_resource(restApiId=api, parentId=root, pathPart="items")["id"]
    item = gw.create_resource(restApiId=api, parentId=items, pathPart="{item_id}")["id"]
    uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{target_arn}/invocations"
    for rid, method in ((items, "POST"), (item, "GET")):
        gw.put_method(restApiId=api, resourceId=rid, httpMethod=method, authorizationType="NONE")
        gw.put_integration(restApiId=api, resourceId=rid, httpMethod=method, type="AWS_PROXY",
                           integrationHttpMethod="POST", uri=uri)
    gw.create_deployment(restApiId=api, stageName="prod", variables={"colour": "blue"})
    return api, f"{os.environ['AWS_ENDPOINT_URL']}/restapis/{api}/prod/_user_request_"


def test_rest_api_stage_runs_the_alias_and_enforces_its_resource_policy(local_stack, role):
    lam = aws("lambda")
    name = make_function(role, ECHO_HTTP)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    alias_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}:live"
    api, base = _rest_api(alias_arn)
    # No permission for API Gateway yet: API Gateway answers 500 without running the function.
    r = HTTP.get(f"{base}/items/42")
    assert (r.status_code, r.json()) == (500, {"message": "Internal server error"})
    # A permission for another API, or on the unqualified function, does not count.
    lam.add_permission(FunctionName=name, StatementId="other", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:otherapi/*/*/*")
    lam.add_permission(FunctionName=name, StatementId="unqualified", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api}/*/*/*")
    assert HTTP.get(f"{base}/items/42").status_code == 500
    lam.add_permission(FunctionName=name, Qualifier="live", StatementId="apigw", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api}/*/GET/items/{{item_id}}")
    r = HTTP.get(f"{base}/items/42?q=1")
    assert r.status_code == 201 and r.headers["X-From"] == "fn", r.text
    body = r.json()
    assert body["resource"] == body["resourcePath"] == "/items/{item_id}"  # Chalice's per-route shape
    assert body["pathParameters"] == {"item_id": "42"} and body["httpMethod"] == "GET"
    assert body["path"] == "/items/42" and body["stage"] == "prod" and body["apiId"] == api
    assert body["stageVariables"] == {"colour": "blue"} and body["fn_version"] == "1"
    # POST /items is granted only for GET: 500; unknown paths and methods: API Gateway's 403.
    assert HTTP.post(f"{base}/items", json={}).status_code == 500
    assert HTTP.get(f"{base}/nothing").json() == {"message": "Missing Authentication Token"}
    assert HTTP.delete(f"{base}/items/1").status_code == 403
    assert HTTP.get(f"{os.environ['AWS_ENDPOINT_URL']}/restapis/{api}/nostage/_user_request_/items/1"
                     ).status_code == 403
    # The stack lists the URL.
    st = run_cli("local", "status", "--state-dir", local_stack.state_dir, "--json")
    assert any(e["url"] == f"{base}/" and name in e["functions"] for e in json.loads(st.stdout)["endpoints"])
    from lambdaship.local.stack import local_lines

    assert local_lines(name) == [f"local REST API stage prod: {base}/"]


def test_http_api_and_function_url_get_v2_events(local_stack, role):
    lam = aws("lambda")
    name = make_function(role, ECHO_HTTP)
    fn_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    v2 = aws("apigatewayv2")
    api = v2.create_api(Name=uid("dp-http"), ProtocolType="HTTP")["ApiId"]
    integ = v2.create_integration(ApiId=api, IntegrationType="AWS_PROXY", IntegrationUri=fn_arn,
                                  PayloadFormatVersion="2.0")["IntegrationId"]
    v2.create_route(ApiId=api, RouteKey="GET /hello/{who}", Target=f"integrations/{integ}")
    v2.create_stage(ApiId=api, StageName="$default")
    base = f"{local_stack.endpoint}/httpapis/{api}/$default/_user_request_"
    assert HTTP.get(f"{base}/hello/ann").status_code == 500  # no permission yet
    lam.add_permission(FunctionName=name, StatementId="http", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api}/*")
    r = HTTP.get(f"{base}/hello/ann")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["version"] == "2.0" and body["routeKey"] == "GET /hello/{who}" and body["rawPath"] == "/hello/ann"
    assert body["pathParameters"] == {"who": "ann"} and body["apiId"] == api
    assert HTTP.get(f"{base}/other").status_code == 404
    # Function URL (AuthType NONE): needs lambda:InvokeFunctionUrl for everyone, as on AWS.
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    url_id = url.split("//", 1)[1].split(".", 1)[0]
    local_url = f"{local_stack.endpoint}/lambda-url/{url_id}"
    assert HTTP.get(f"{local_url}/x").status_code == 403
    lam.add_permission(FunctionName=name, StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    r = HTTP.get(f"{local_url}/some/path?a=1")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["version"] == "2.0" and body["rawPath"] == "/some/path" and body["routeKey"] == "$default"
    assert body["domainName"] == url.split("//", 1)[1].rstrip("/")


# -- pass-through ---------------------------------------------------------------------------------
VARYING = {"date", "x-amz-request-id", "x-amzn-requestid", "x-amz-id-2", "x-amzn-trace-id"}
HOP = {"connection", "keep-alive", "transfer-encoding"}  # this hop's, by definition


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code and a.reason_phrase == b.reason_phrase
    ids = re.compile(rb"<(RequestId|HostId)>[^<]*</")  # generated per request
    assert ids.sub(b"<id></", a.content) == ids.sub(b"<id></", b.content)
    ha = [(k, v) for k, v in a.headers.raw if k.decode().lower() not in HOP]
    hb = [(k, v) for k, v in b.headers.raw if k.decode().lower() not in HOP]
    assert [k for k, _ in ha] == [k for k, _ in hb]
    for (k, va), (_, vb) in zip(ha, hb, strict=True):
        if k.decode().lower() not in VARYING:
            assert va == vb, k


def test_everything_else_passes_through_to_moto_unchanged(local_stack, tmp_path: Path):
    s3 = aws("s3")
    bucket = uid("dp-bucket")
    s3.create_bucket(Bucket=bucket)
    big = os.urandom(3 * 1024 * 1024 + 17)  # over the proxy's buffering limit: streamed
    s3.put_object(Bucket=bucket, Key="big.bin", Body=big)
    via, direct = local_stack.endpoint, local_stack.moto.url
    signed = {url: boto3.client("s3", endpoint_url=url) for url in (via, direct)}

    def url(base: str, method: str, key: str) -> str:
        op = {"GET": "get_object", "HEAD": "head_object"}[method]
        return signed[base].generate_presigned_url(op, Params={"Bucket": bucket, "Key": key})

    with httpx.Client() as c:
        for method, key in (("GET", "big.bin"), ("HEAD", "big.bin"), ("GET", "missing"), ("HEAD", "missing")):
            a, b = c.request(method, url(via, method, key)), c.request(method, url(direct, method, key))
            _same(a, b)
        got = c.get(url(via, "GET", "big.bin"))
        assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(big).digest()
        _same(c.get(f"{via}/{bucket}/unsigned"), c.get(f"{direct}/{bucket}/unsigned"))  # moto's own 403
        # A chunked upload of unknown length arrives whole.
        put = signed[via].generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "chunked.bin"})
        r = c.put(put, content=iter([big[:100_000], big[100_000:]]))
        assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="chunked.bin")["Body"].read() == big
    # URLs moto builds from Host point back at the endpoint (SQS queue URLs).
    q = aws("sqs").create_queue(QueueName=uid("dp-q"))["QueueUrl"]
    assert q.startswith(local_stack.endpoint), q


def test_idle_worker_sets_are_stopped_and_restart_on_demand(tmp_path):
    """As Lambda reclaims idle environments: the engine's real workers, an idle limit of 1 s."""
    from lambdaship.local.dataplane.backend import EngineBackend
    from lambdaship.local.dataplane.workers import CodeSpec, Workers

    (tmp_path / "app.py").write_text("import uuid\nBOOT = uuid.uuid4().hex\ndef handler(e, c):\n    return BOOT\n")
    spec = CodeSpec("idle-fn", "$LATEST", "zip", timeout=30, memory=256, code_dir=str(tmp_path),
                    runtime="python3.11", handler="app.handler")
    workers = Workers(EngineBackend(), idle_seconds=1.0)
    try:
        first = workers.invoke(spec, b"{}")
        assert first.ok, first.payload
        assert workers.invoke(spec, b"{}").payload == first.payload  # warm
        deadline = time.monotonic() + 20
        while workers.stats()["warm"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workers.stats()["warm"] == [] and workers.reaped == 1
        again = workers.invoke(spec, b"{}")
        assert again.ok and again.payload != first.payload and again.init_duration_ms is not None  # a new runtime
    finally:
        workers.close()


# -- PublishVersion preconditions -------------------------------------------------------------------
def test_publish_version_refuses_a_code_sha256_that_is_not_latests(local_stack, role):
    """Lambda publishes only the code named by CodeSha256 (moto ignores it): a deploy whose code
    was replaced by another's since gets PreconditionFailed, and no version is made."""
    lam = aws("lambda")
    name = make_function(role, "def handler(event, context):\n    return 1\n")
    first = lam.get_function_configuration(FunctionName=name)["CodeSha256"]
    changed = lam.update_function_code(FunctionName=name, ZipFile=zip_of("def handler(e, c):\n    return 2\n"))
    assert changed["CodeSha256"] != first
    with pytest.raises(ClientError) as err:
        lam.publish_version(FunctionName=name, CodeSha256=first)
    assert err.value.response["Error"]["Code"] == "PreconditionFailedException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST"]
    published = lam.publish_version(FunctionName=name, CodeSha256=changed["CodeSha256"])
    assert published["Version"] == "1" and published["CodeSha256"] == changed["CodeSha256"]
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST", "1"]
    with pytest.raises(ClientError) as err:  # named by its ARN: the same check
        lam.publish_version(FunctionName=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}", CodeSha256=first)
    assert err.value.response["Error"]["Code"] == "PreconditionFailedException"
    _, out = invoke(name, Qualifier="1")
    assert out == 2
