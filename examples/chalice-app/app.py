"""A seed-like Chalice app: the shape of the API the seeds' team shipped."""

import os

from chalice import BadRequestError, Chalice, NotFoundError
from chalicelib.store import ItemStore

app = Chalice(app_name="chalice-demo")
store = ItemStore()


@app.route("/health")
def health():
    return {"status": "ok"}


@app.route("/config")
def config():
    return {"stage": os.environ.get("STAGE", "unknown"), "greeting": os.environ.get("GREETING", "")}


@app.route("/items", methods=["POST"])
def create_item():
    body = app.current_request.json_body
    if not isinstance(body, dict) or "name" not in body:
        raise BadRequestError("body must be a JSON object with a 'name'")
    return store.add(body["name"], body.get("tags", []))


@app.route("/items/{item_id}")
def get_item(item_id):
    item = store.get(item_id)
    if item is None:
        raise NotFoundError(f"no item {item_id}")
    return item


@app.route("/boom")
def boom():
    raise RuntimeError("this route always fails")


@app.route("/slow")
def slow():
    import time

    params = app.current_request.query_params or {}
    time.sleep(float(params.get("seconds", "5")))
    return {"slept": True}
