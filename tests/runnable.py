"""Test helper: a runnable function image — the offline Lambda-like base + one app layer.

For tests that need an image whose code really runs on the local stack's data plane (smoke
tests, migrations): the base's layers are mounted from ``lambdaship/base`` (nothing is copied),
the app layer holds ``/var/task/app.py``, ``CMD`` is ``app.handler``. The image is pushed to
the registry with httpx and recorded in moto's ECR (``upload_blob``, ``put_manifest``: also
what ``tests.test_deploy.push_image`` pushes with).
"""

from __future__ import annotations

import contextlib
import hashlib
import json

import boto3
import httpx
from botocore.config import Config

from lambdaship.image.layer import Entry, layer_bytes


def upload_blob(registry_url: str, repo: str, data: bytes) -> str:
    """Upload ``data`` as a blob of ``repo`` (monolithic POST + PUT; nothing when it is there); its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if httpx.head(f"{registry_url}/v2/{repo}/blobs/{digest}").status_code == 200:
        return digest
    r = httpx.post(f"{registry_url}/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    loc = loc if loc.startswith("http") else registry_url + loc
    r = httpx.put(loc + ("&" if "?" in loc else "?") + f"digest={digest}", content=data,
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return digest


def push_app_image(registry_url: str, base_ref: str, repo: str, source: str, tag: str) -> str:
    """Push ``base_ref`` + an app layer with ``source`` as app.py to ``repo:tag``; the manifest digest."""
    base_repo, base_digest = base_ref.split("/", 1)[1].split("@", 1)
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    r = httpx.get(f"{registry_url}/v2/{base_repo}/manifests/{base_digest}", headers={"Accept": accept})
    assert r.status_code == 200, r.text
    manifest = r.json()
    config = httpx.get(f"{registry_url}/v2/{base_repo}/blobs/{manifest['config']['digest']}").json()
    for layer in manifest["layers"]:  # mount the base's layers into the repository
        m = httpx.post(f"{registry_url}/v2/{repo}/blobs/uploads/?mount={layer['digest']}&from={base_repo}")
        assert m.status_code == 201, m.text
    data, blob = layer_bytes([Entry("var", "dir"), Entry("var/task", "dir"),
                              Entry("var/task/app.py", "file", data=source.encode())])
    upload_blob(registry_url, repo, data)
    config["rootfs"]["diff_ids"] = [*config["rootfs"]["diff_ids"], blob.diff_id]
    config.setdefault("config", {})["Cmd"] = ["app.handler"]
    config_bytes = json.dumps(config, sort_keys=True).encode()
    manifest["config"] = {**manifest["config"], "digest": upload_blob(registry_url, repo, config_bytes),
                          "size": len(config_bytes)}
    layer_type = manifest["layers"][-1]["mediaType"]
    manifest["layers"] = [*manifest["layers"], {"mediaType": layer_type, "digest": blob.digest, "size": len(data)}]
    return put_manifest(registry_url, repo, tag, json.dumps(manifest).encode(), manifest["mediaType"])


def put_manifest(registry_url: str, repo: str, tag: str, body: bytes, media_type: str) -> str:
    """PUT ``body`` as ``repo:tag``, and tell moto's ECR (separate from the registry) about the
    repository and the image too; the manifest digest."""
    r = httpx.put(f"{registry_url}/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": media_type})
    assert r.status_code == 201, r.text
    digest = r.headers["Docker-Content-Digest"]
    ecr = boto3.client("ecr", config=Config(retries={"max_attempts": 1}))
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repo)
    ecr.put_image(repositoryName=repo, imageManifest=body.decode(), imageDigest=digest, imageTag=tag,
                  imageManifestMediaType=media_type)
    return digest


HEALTHY = """import json
def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"status": "ok"})}
"""
FAILING = """def handler(event, context):
    return {"statusCode": 500, "body": '{"Code": "InternalServerError"}'}
"""
# Answers 200 to its first request and 500 to every later one (its worker's /tmp keeps count).
FAILS_SECOND = """import json, os
def handler(event, context):
    seen = os.path.exists("/tmp/answered")
    open("/tmp/answered", "w").close()
    return {"statusCode": 500 if seen else 200, "body": json.dumps({"second": seen})}
"""
