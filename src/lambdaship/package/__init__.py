"""Packaging a function for Lambda, by stage.

- ``requirements``: which requirements file, its text (with ``-r``/``-c`` files), the names it asks for.
- ``sources``: every dependency format a project brings (uv.lock, poetry.lock, Pipfile.lock, pyproject)
  as one pinned requirements list.
- ``reqguard``: requirement files checked before the installer sees them (no code runs on the host).
- ``installer``: uv (pip as fallback), its version and command line for the target, its errors.
- ``bytecode``: an interpreter of the target Python version, and compiling a tree with it.
- ``prune``: trimming an installed tree (host files, base-image packages, bundled test suites).
- ``sdists``: pure-Python sdist-only packages built into wheels; native ones refused.
- ``deps``: the dependency set installed for the target, cached by its inputs.
- ``archive``: deterministic zip files (the writer, the cached dependency zip, the function zip).
- ``zipplan``: Lambda's size limits, zip or image, and what a zip deploy sends.
- ``size``: where the bytes of a package go, against Lambda's limits.
- ``report``: the size report as a self-contained HTML page.
"""
