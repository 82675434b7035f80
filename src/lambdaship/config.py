"""Configuration: ``[tool.lambdaship]`` in pyproject.toml, or ``lambdaship.toml``.

One file describes one function, or several (a monorepo) under ``functions.<key>``: each
function table is merged over the top-level keys, which act as shared defaults.
Precedence: command-line flags > function table > top-level defaults > built-in defaults.

Every error names the file, the key and what is wrong, on one line.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lambdaship.errors import ConfigError, LambdashipError, UsageError
from lambdaship.patterns import ALIAS_RE, ECR_REPOSITORY_RE, ENV_KEY_RE, FUNCTION_NAME_RE, REGION_RE, ROLE_ARN_RE
from lambdaship.platform import DEFAULT_ARCHITECTURE, DEFAULT_PYTHON, SUPPORTED_PYTHONS, Architecture, Platform

CONFIG_FILE = "lambdaship.toml"
PYPROJECT = "pyproject.toml"

# Lambda reserves these; setting them fails at the API.
RESERVED_ENV = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretSource(_Strict):
    """Where environment values come from besides ``environment``.

    ``secretsmanager``: a secret id whose value is a JSON object of NAME = value.
    ``ssm_path``: every parameter under this path (decrypted); the name is the last segment.
    """

    secretsmanager: str | None = None
    ssm_path: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SecretSource:
        if (self.secretsmanager is None) == (self.ssm_path is None):
            raise ValueError("give exactly one of 'secretsmanager' or 'ssm_path'")
        if self.ssm_path is not None and not self.ssm_path.startswith("/"):
            raise ValueError("'ssm_path' must start with '/'")
        return self


class SmokeTest(_Strict):
    """Checked against the new version before the alias moves.

    ``event``: a JSON object to invoke with; the invocation must not raise.
    ``path``: an HTTP path sent as an API Gateway proxy event; the answer must be 2xx.
    """

    event: dict[str, Any] | None = None
    path: str | None = None
    method: str = "GET"

    @model_validator(mode="after")
    def _one_kind(self) -> SmokeTest:
        if (self.event is None) == (self.path is None):
            raise ValueError("give exactly one of 'event' or 'path'")
        if self.path is not None and not self.path.startswith("/"):
            raise ValueError("'path' must start with '/'")
        return self


class FunctionUrl(_Strict):
    """A Lambda Function URL on the alias — for apps that are not Chalice apps (FastAPI/Mangum, Flask).

    ``auth``: ``AWS_IAM`` (SigV4-signed requests only) or ``NONE`` (public). ``cors``: Lambda's
    ``Cors`` object (``AllowOrigins``, ``AllowMethods``, ``AllowHeaders``, ``MaxAge``, ...)."""

    auth: Literal["NONE", "AWS_IAM"] = "AWS_IAM"
    cors: dict[str, Any] | None = None


class FunctionConfig(_Strict):
    """One Lambda function. Field names follow the Lambda API where one exists."""

    key: str = Field(description="The function's key in the config (its table name).")
    function_name: str
    source: Path = Field(description="The app's directory (absolute once loaded).")
    handler: str | None = None
    python: str = DEFAULT_PYTHON
    architecture: Architecture = DEFAULT_ARCHITECTURE
    base_image: str | None = None
    repository: str | None = None
    package_type: Literal["image", "zip", "auto"] = Field(
        "auto",
        description="auto: zip when it fits Lambda's zip limits (and no base_image is set), else image.",
    )
    zip_bucket: str | None = Field(
        None, description="S3 bucket for zip packages over 50 MB (zipped); see docs/design-zip.md."
    )
    memory: int = Field(512, ge=128, le=10240)
    timeout: int = Field(30, ge=1, le=900)
    ephemeral_storage: int = Field(512, ge=512, le=10240)
    role: str | None = None
    alias: str = "live"
    description: str = ""
    requirements: str | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    use_gitignore: bool = Field(True, description="Leave out what the project's .gitignore files ignore.")
    use_dockerignore: bool = Field(True, description="Leave out what the source's .dockerignore ignores.")
    environment: dict[str, str] = Field(default_factory=dict)
    chalice_stage: str | None = Field(
        None, description="A Chalice app: take the environment_variables of this stage of .chalice/config.json "
        "(top level < the stage < its api_handler), under [environment]; none by default.")
    secrets: list[SecretSource] = Field(default_factory=list)
    env_file: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    smoke: SmokeTest | None = None
    shared: list[str] = Field(
        default_factory=list,
        description="Extra paths (relative to the config file) packaged into /var/task under the same "
        "relative path (e.g. 'common' → /var/task/common); their changes redeploy this function.",
    )
    root: Path | None = Field(None, description="The config file's directory (set by the loader).")
    config_file: Path | None = Field(None, exclude=True, description="The config file (set by the loader).")
    function_url: FunctionUrl | None = None
    layer_split_mb: float = Field(
        10.0, ge=0,
        description="Image builds: a dependency whose files exceed this (MB unpacked) gets an image layer of its "
        "own, unchanged when other packages are bumped; 0 puts every dependency in one layer.",
    )

    regions: list[str] = Field(
        default_factory=list,
        description="Deploy one build to each of these regions (the first gets the push, the others a "
        "registry-to-registry copy of the blobs they lack), in parallel; empty: the one region boto3 "
        "configures (--region, AWS_REGION, the profile). See docs/design-regions.md.",
    )

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, v: Any) -> list[str]:
        if not isinstance(v, list | tuple):
            raise ValueError('must be a list of region names, e.g. regions = ["us-east-1", "eu-west-1"]')
        v = list(v)
        for r in v:
            if not isinstance(r, str) or not REGION_RE.match(r):
                raise ValueError(f"{r!r} is not an AWS region name; use names like \"us-east-1\", \"eu-west-1\"")
        dup = sorted({r for r in v if v.count(r) > 1})
        if dup:
            raise ValueError(f"{', '.join(dup)} listed more than once; list each region once")
        return v

    @field_validator("function_name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not FUNCTION_NAME_RE.match(v):
            raise ValueError(
                f"{v!r} is not a valid Lambda function name (1-64 letters, digits, '-' or '_')"
            )
        return v

    @field_validator("python")
    @classmethod
    def _python(cls, v: str) -> str:
        v = str(v).removeprefix("python")
        if v not in SUPPORTED_PYTHONS:
            raise ValueError(f"{v!r} is not a Lambda Python runtime; use one of {', '.join(SUPPORTED_PYTHONS)}")
        return v

    @field_validator("role")
    @classmethod
    def _role(cls, v: str | None) -> str | None:
        if v is not None and not ROLE_ARN_RE.match(v):
            raise ValueError(f"{v!r} is not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)")
        return v

    @field_validator("alias")
    @classmethod
    def _alias(cls, v: str) -> str:
        if not ALIAS_RE.match(v):
            raise ValueError(f"{v!r} is not a valid alias name (letters, digits, '-', '_'; not all digits)")
        return v

    @field_validator("repository")
    @classmethod
    def _repository(cls, v: str | None) -> str | None:
        if v is not None and not ECR_REPOSITORY_RE.match(v):
            raise ValueError(f"{v!r} is not a valid ECR repository name (lowercase, digits, '.', '_', '-', '/')")
        return v

    @field_validator("handler")
    @classmethod
    def _handler(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", v):
            raise ValueError(f"{v!r} is not a handler string; use 'module.function' (e.g. 'app.handler')")
        return v

    @field_validator("environment")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not ENV_KEY_RE.match(k):
                raise ValueError(f"{k!r} is not a valid environment variable name")
            if k in RESERVED_ENV:
                raise ValueError(f"{k!r} is reserved by Lambda and cannot be set")
        return v

    # ---- derived values -------------------------------------------------------------------
    @property
    def platform(self) -> Platform:
        """The target platform (architecture + Python) in every spelling a stage needs."""
        return Platform.of(self.architecture, self.python)

    @property
    def image_base(self) -> str:
        return self.base_image or self.platform.default_base_image

    @property
    def repository_name(self) -> str:
        return self.repository or self.function_name.lower().replace("_", "-")

    @property
    def resolved_handler(self) -> str:
        """The handler string; Chalice apps default to ``app.app``."""
        if self.handler:
            return self.handler
        if is_chalice_app(self.source):
            return "app.app"
        raise ConfigError(
            f"no handler configured for function {self.key!r}",
            "set 'handler = \"module.function\"' in the config (Chalice apps default to app.app)",
        )


class Project(BaseModel):
    """A loaded configuration: where it came from and its functions."""

    model_config = ConfigDict(frozen=True)

    root: Path
    config_file: Path | None
    functions: dict[str, FunctionConfig]

    def function(self, key: str | None = None) -> FunctionConfig:
        """The named function, or the only one."""
        if key is None:
            if len(self.functions) == 1:
                return next(iter(self.functions.values()))
            raise ConfigError(
                f"{self._where()} defines {len(self.functions)} functions",
                f"choose one with --function ({', '.join(self.functions)}) or use --all",
            )
        if key in self.functions:
            return self.functions[key]
        for fn in self.functions.values():
            if fn.function_name == key:
                return fn
        raise ConfigError(
            f"no function {key!r} in {self._where()}",
            f"choose one of: {', '.join(self.functions)}",
        )

    def _where(self) -> str:
        return str(self.config_file) if self.config_file else str(self.root)


def is_chalice_app(source: Path) -> bool:
    app = source / "app.py"
    if not app.is_file():
        return False
    try:
        text = app.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"\bChalice\s*\(", text) is not None


def find_config(start: Path) -> Path | None:
    """``lambdaship.toml`` or a pyproject.toml with ``[tool.lambdaship]`` in ``start``."""
    candidate = start / CONFIG_FILE
    if candidate.is_file():
        return candidate
    pyproject = start / PYPROJECT
    if pyproject.is_file():
        data = _read_toml(pyproject)
        if "lambdaship" in data.get("tool", {}):
            return pyproject
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", "fix the syntax at the position shown") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start})",
                          "save the file as UTF-8 (TOML files are UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}", "check the file's permissions") from None


def _raw_table(path: Path) -> dict[str, Any]:
    data = _read_toml(path)
    if path.name == PYPROJECT:
        table = data.get("tool", {}).get("lambdaship")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: tool.lambdaship: must be a table")
        return table
    return data


def _prefix(path: Path) -> str:
    return "tool.lambdaship." if path.name == PYPROJECT else ""


def _format_error(path: Path | None, prefix: str, exc: ValidationError,
                  flags: dict[str, Any] | None = None) -> LambdashipError:
    """Every problem, in one line; unknown keys with a did-you-mean; a bad flag value named as
    the flag (a usage error), not as the config file."""
    import difflib

    flags = flags or {}
    where = f"{path}: " if path else ""
    flag_parts, file_parts, hints = [], [], []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
        msg = err["msg"].removeprefix("Value error, ")
        top = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(top, list(FunctionConfig.model_fields), n=1)
            msg = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
            hints.append("remove it or check its spelling (see the configuration reference in the README)")
        elif err["type"] == "missing":
            msg = "required key is missing"
            hints.append("add it to the config")
        if top in flags and err["type"] != "extra_forbidden":
            flag_parts.append(f"--{top.replace('_', '-')} {flags[top]}: {msg}")
        else:
            file_parts.append(f"{prefix}{loc}: {msg}")
    if flag_parts and not file_parts:
        return UsageError("; ".join(flag_parts))
    text = "; ".join([*flag_parts, *file_parts])
    return ConfigError(f"{where}{text}", hints[0] if hints else None)


def _build_function(
    key: str,
    table: dict[str, Any],
    base_dir: Path,
    path: Path | None,
    prefix: str,
    flags: dict[str, Any] | None = None,
) -> FunctionConfig:
    data = dict(table)
    data.setdefault("function_name", key)
    source = Path(data.get("source", "."))
    data["source"] = (base_dir / source).resolve()
    data["root"] = base_dir.resolve()
    data["config_file"] = path.resolve() if path is not None else None
    data["key"] = key
    try:
        fn = FunctionConfig.model_validate(data)
    except ValidationError as exc:
        raise _format_error(path, prefix, exc, flags) from None
    if not fn.source.is_dir():
        raise ConfigError(
            f"{path or base_dir}: {prefix}source: directory {fn.source} does not exist",
            "point 'source' at the app's directory, relative to the config file",
        )
    return fn


def load_project(
    start: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Project:
    """Load the configuration found in ``start`` (default: the current directory).

    ``overrides`` are command-line flags; ``None`` values are ignored. They apply to every
    function (use --function to choose one).
    """
    start = Path(start or ".").resolve()
    if start.is_file():
        path: Path | None = start
        base_dir = start.parent
    else:
        if not start.is_dir():
            raise ConfigError(f"{start}: no such directory", "pass the app's directory with --project")
        path = find_config(start)
        base_dir = start
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    if path is None:
        raise ConfigError(
            f"no lambdaship configuration in {start}",
            "run 'lambdaship init' there, or add [tool.lambdaship] to pyproject.toml",
        )
    table = _raw_table(path)
    prefix = _prefix(path)
    functions_table = table.pop("functions", None)
    functions: dict[str, FunctionConfig] = {}
    if functions_table is None:
        key = str(table.get("function_name") or flags.get("function_name") or base_dir.name)
        functions[key] = _build_function(key, {**table, **flags}, base_dir, path, prefix, flags)
    else:
        if not isinstance(functions_table, dict) or not functions_table:
            raise ConfigError(f"{path}: {prefix}functions: must be a non-empty table of tables")
        if "function_name" in table:
            raise ConfigError(
                f"{path}: {prefix}function_name: not allowed beside 'functions'",
                "set function_name inside each [functions.<key>] table",
            )
        for key, sub in functions_table.items():
            if not isinstance(sub, dict):
                raise ConfigError(f"{path}: {prefix}functions.{key}: must be a table")
            merged = {**table, **sub, **flags}
            functions[key] = _build_function(key, merged, base_dir, path, f"{prefix}functions.{key}.", flags)
    return Project(root=base_dir, config_file=path, functions=functions)
