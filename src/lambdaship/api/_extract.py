"""Run *inside the sandbox* (``python -c``): import the Chalice app and print, as one JSON line,
what Chalice's own swagger generation reads from it (routes with their ``CORSConfig``
arguments, authorizers, binary types) plus its event sources and other functions.

The swagger itself is generated on the host (:mod:`lambdaship.api.swagger`) from this data:
``chalice.deploy`` needs botocore and dateutil, which a Lambda-target dependency tree leaves
out. Only the standard library and ``chalice.app``
are imported besides the app; the result is the last stdout line that starts with ``MARK``.
"""

import contextlib
import json
import os
import sys

MARK = "LAMBDASHIP-APP-MODEL:"


def _cors(cors):
    if cors is None:
        return None
    required = set(cors._REQUIRED_HEADERS)
    return {"allow_origin": cors.allow_origin, "allow_headers": sorted(set(cors._allow_headers) - required),
            "expose_headers": list(cors._expose_headers or []), "max_age": cors._max_age,
            "allow_credentials": cors._allow_credentials}


def _authorizer(auth):
    from chalice.app import ChaliceAuthorizer, CognitoUserPoolAuthorizer, CustomAuthorizer, IAMAuthorizer

    if isinstance(auth, ChaliceAuthorizer):
        cfg = auth.config
        return {"name": auth.name, "kind": "builtin", "handler": cfg.handler_string,
                "header": cfg.header or "Authorization", "ttl_seconds": cfg.ttl_seconds,
                "execution_role": cfg.execution_role}
    if isinstance(auth, IAMAuthorizer):
        return {"name": auth.name, "kind": "iam", "header": "Authorization"}
    if isinstance(auth, CognitoUserPoolAuthorizer):
        return {"name": auth.name, "kind": "cognito", "header": auth._header or "Authorization",
                "provider_arns": list(auth._provider_arns), "scopes": list(auth.scopes or [])}
    if isinstance(auth, CustomAuthorizer):
        return {"name": auth.name, "kind": "custom", "header": auth._header,
                "ttl_seconds": auth._ttl_seconds, "authorizer_uri": auth._authorizer_uri}
    return {"name": getattr(auth, "name", "?"), "kind": "unknown"}


def _event_source(src):
    from chalice import app as c

    base = {"name": src.name, "handler": src.handler_string}
    if isinstance(src, c.ScheduledEventConfig):
        expr = src.schedule_expression
        expr = expr if isinstance(expr, str) else expr.to_string()
        return {**base, "kind": "schedule", "expression": expr, "description": src.description or ""}
    if isinstance(src, c.CloudWatchEventConfig):
        return {**base, "kind": "cw_event", "event_pattern": src.event_pattern}
    if isinstance(src, c.S3EventConfig):
        return {**base, "kind": "s3", "bucket": src.bucket, "events": list(src.events),
                "prefix": src.prefix, "suffix": src.suffix}
    if isinstance(src, c.SNSEventConfig):
        return {**base, "kind": "sns", "topic": src.topic}
    if isinstance(src, c.SQSEventConfig):
        return {**base, "kind": "sqs", "queue": src.queue, "queue_arn": src.queue_arn,
                "batch_size": src.batch_size,
                "maximum_batching_window_in_seconds": src.maximum_batching_window_in_seconds,
                "maximum_concurrency": src.maximum_concurrency}
    if isinstance(src, c.KinesisEventConfig):
        return {**base, "kind": "kinesis", "stream": src.stream, "batch_size": src.batch_size,
                "starting_position": src.starting_position,
                "maximum_batching_window_in_seconds": src.maximum_batching_window_in_seconds}
    if isinstance(src, c.DynamoDBEventConfig):
        return {**base, "kind": "dynamodb", "stream_arn": src.stream_arn, "batch_size": src.batch_size,
                "starting_position": src.starting_position,
                "maximum_batching_window_in_seconds": src.maximum_batching_window_in_seconds}
    return {**base, "kind": type(src).__name__}


def main(argv):
    root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()  # the sandbox binds the app at /var/task
    os.chdir(root)
    sys.path.insert(0, root)
    with contextlib.redirect_stdout(sys.stderr):
        import inspect

        import app as module  # the user's app: only ever run inside the sandbox
        from chalice import Chalice

        app = getattr(module, "app", None)
        if not isinstance(app, Chalice):
            print(MARK + json.dumps({"error": "app.py defines no Chalice object named 'app'"}), file=sys.__stdout__)
            return 0
        routes, authorizers = [], {}
        for path, methods in app.routes.items():
            for method, view in methods.items():
                auth = view.authorizer
                if auth is not None:
                    authorizers.setdefault(auth.name, _authorizer(auth))
                routes.append({
                    "path": path, "method": method, "view_name": view.view_name,
                    "cors": view.cors.get_access_control_headers() if view.cors is not None else None,
                    "cors_args": _cors(view.cors), "doc": inspect.getdoc(view.view_function),
                    "api_key_required": bool(view.api_key_required),
                    "authorizer": auth.name if auth is not None else None,
                    "scopes": list(getattr(auth, "scopes", None) or []),
                    "content_types": list(view.content_types),
                })
        out = {
            "app_name": app.app_name,
            "routes": routes,
            "binary_types": list(app.api.binary_types),
            "authorizers": list(authorizers.values()),
            "builtin_authorizers": [{"name": a.name, "handler": a.handler_string, "header": a.header,
                                     "ttl_seconds": a.ttl_seconds} for a in app.builtin_auth_handlers],
            "event_sources": [_event_source(s) for s in app.event_sources],
            "lambda_functions": [{"name": f.name, "handler": f.handler_string} for f in app.pure_lambda_functions],
            "websocket_handlers": [{"route_key": k, "name": h.name, "handler": h.handler_string}
                                   for k, h in app.websocket_handlers.items()],
        }
    sys.__stdout__.write(MARK + json.dumps(out, default=str) + "\n")
    sys.__stdout__.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
