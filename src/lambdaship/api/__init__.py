"""A Chalice app's REST API and triggers, from Chalice's own model (issue 18)."""
