"""A plain Lambda handler with one real dependency."""

import humanize


def handler(event, context):
    size = int(event.get("bytes", 0)) if isinstance(event, dict) else 0
    return {"bytes": size, "human": humanize.naturalsize(size)}
