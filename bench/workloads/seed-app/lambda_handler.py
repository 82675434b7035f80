"""The seeds' wrapper: the Lambda handler calls the Chalice app."""

from app import app as chalice_app


def handler(event, context):
    return chalice_app(event, context)
