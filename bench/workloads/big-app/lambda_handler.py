"""The Lambda handler: calls the app (same file names as seed-app, which the peer scripts copy)."""

from app import app


def handler(event, context):
    return app(event, context)
