"""Chalice features the API deploy and the local gateway must get right (issue 18)."""

from chalice import AuthResponse, Chalice, CORSConfig, Rate, Response

app = Chalice(app_name="chalice-features")
app.api.binary_types.append("application/x-lambdaship")

CUSTOM_CORS = CORSConfig(allow_origin="https://example.com", allow_headers=["X-Special-Header"],
                         expose_headers=["X-Special-Header"], max_age=600, allow_credentials=True)
PNG = bytes.fromhex("89504e470d0a1a0a") + bytes(range(32))


@app.authorizer()
def token_auth(auth_request):
    if auth_request.token == "allow":
        return AuthResponse(routes=["/private"], principal_id="user-1", context={"team": "blue"})
    return AuthResponse(routes=[], principal_id="nobody")


@app.route("/items/{item_id}", methods=["GET", "PUT"])
def item(item_id):
    body = app.current_request.raw_body or b""
    return {"item_id": item_id, "method": app.current_request.method, "size": len(body)}


@app.route("/cors-default", cors=True)
def cors_default():
    return {"cors": "default"}


@app.route("/cors-custom", methods=["GET", "POST"], cors=CUSTOM_CORS)
def cors_custom():
    return {"cors": "custom"}


@app.route("/no-cors")
def no_cors():
    return {"cors": None}


@app.route("/binary")
def binary():
    return Response(body=PNG, headers={"Content-Type": "image/png"}, status_code=200)


@app.route("/keyed", api_key_required=True)
def keyed():
    return {"keyed": True}


@app.route("/private", authorizer=token_auth)
def private():
    return {"context": app.current_request.context.get("authorizer")}


@app.schedule(Rate(5, unit=Rate.MINUTES))
def every_five(event):
    return {"scheduled": True}


@app.on_sqs_message(queue="chalice-features-jobs", batch_size=5)
def on_job(event):
    return [r.body for r in event]


@app.lambda_function()
def plain(event, context):
    return {"plain": event}
