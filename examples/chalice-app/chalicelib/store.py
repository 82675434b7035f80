"""A tiny in-memory store, standing in for the seeds' database layer."""

import hashlib


class ItemStore:
    def __init__(self):
        self._items = {"demo": {"id": "demo", "name": "demo item", "tags": []}}

    def add(self, name, tags):
        item_id = hashlib.sha256(name.encode()).hexdigest()[:8]
        item = {"id": item_id, "name": name, "tags": list(tags)}
        self._items[item_id] = item
        return item

    def get(self, item_id):
        return self._items.get(item_id)
