"""Generators for the files teams write by hand: config, Dockerfile, CI workflow, IAM policies.

Every generator is a pure function from the loaded configuration to ``{relative path: text}``;
``files.write_files`` is the only place that touches the disk, and it never overwrites a file
whose content differs unless asked to.
"""
