"""Hostile inputs: registries, caches, requirement lines, images (issue #19)."""
