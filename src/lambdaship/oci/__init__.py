"""The OCI distribution client: the only code in lambdaship that talks HTTP to registries.

* ``reference`` — image references, ECR host detection, the base URL of a registry;
* ``transport`` — the httpx client (TLS, timeouts), retries (stamina, ``Retry-After``),
  bounded and verified reads;
* ``auth`` — keychains (``Keychain.resolve(host) -> Credentials | None``: docker config with
  credential helpers, static, anonymous) and the Basic/Bearer challenge flow, scoped to one host;
* ``client`` — manifests, blobs (read), ``HEAD``, tags;
* ``upload`` — monolithic and chunked uploads, resume, cross-repository mount;
* ``push`` — push an ``Image``: blobs in parallel, the manifest last, progress as events.

Nothing here imports ``lambdaship.aws``: the ECR keychain lives in ``aws/ecr.py`` and is
composed with the others in ``lambdaship.registries``.
"""
