"""GitHub Actions workflows that deploy with lambdaship: OIDC, pinned actions, path filters.

Two shapes:
- one workflow per function (``deploy-<key>.yml``): runs on pushes to the branch that touch
  that function's paths, runs ``lambdaship deploy --function <key>``; concurrency group per
  function. The only shape for a single-function project.
- one workflow for the whole project (``lambdaship-deploy.yml``, ``--matrix``): runs on pushes
  touching any function's paths, runs ``lambdaship deploy --all --changed-since <before>``,
  which picks the changed functions and deploys them in parallel. A new branch (all-zero
  ``before``), a manual run, or a ``before`` missing from the history (force push) deploys all.

Templates are text (not a YAML dump) so comments — the ``# vX.Y.Z`` beside each SHA — survive.
Nothing from the event is interpolated into ``run:`` scripts; values reach them through ``env``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import lambdaship
from lambdaship.config import FunctionConfig, Project
from lambdaship.errors import UsageError
from lambdaship.patterns import REGION_RE
from lambdaship.scaffold.actions import CHECKOUT, CONFIGURE_AWS, SETUP_PYTHON
from lambdaship.scaffold.files import git_root

RUNNER_PYTHON = "3.12"
DEFAULT_ROLE_VAR = "AWS_DEPLOY_ROLE_ARN"
REGION_VAR = "AWS_REGION"
ALL_FILE = "lambdaship-deploy.yml"
_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9._/-]+$")
ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Options:
    branch: str = "main"
    role_arn_secret: str | None = None
    role_arn_var: str = DEFAULT_ROLE_VAR
    region: str | None = None
    matrix: bool = False
    environment: str | None = None
    pip_spec: str | None = None  # what `pip install` gets; default lambdaship==<this version>

    @property
    def install_spec(self) -> str:
        return self.pip_spec or f"lambdaship=={lambdaship.__version__}"

    def validate(self) -> None:
        if not _BRANCH_RE.match(self.branch) or ".." in self.branch:
            raise UsageError(f"--branch {self.branch!r} is not a branch name")
        for flag, name in (("--role-arn-secret", self.role_arn_secret), ("--role-arn-var", self.role_arn_var)):
            if name is not None and (not _VAR_RE.match(name) or name.upper().startswith("GITHUB_")):
                raise UsageError(f"{flag} {name!r} is not a GitHub variable/secret name", "use letters, digits, '_'")
        if self.environment is not None and not re.match(r"^[A-Za-z0-9_.-]{1,255}$", self.environment):
            raise UsageError(f"--environment {self.environment!r} is not a GitHub environment name")
        if self.pip_spec is not None and not re.match(r"^[A-Za-z0-9_.\-\[\],=<>!~+:/@#]+$", self.pip_spec):
            raise UsageError(f"--pip-spec {self.pip_spec!r} is not a pip requirement", "e.g. lambdaship==0.1.0")
        if self.region is not None and not REGION_RE.match(self.region):
            raise UsageError(f"--region {self.region!r} is not an AWS region", "e.g. eu-west-1")

    @property
    def role_expr(self) -> str:
        if self.role_arn_secret:
            return f"${{{{ secrets.{self.role_arn_secret} }}}}"
        return f"${{{{ vars.{self.role_arn_var} }}}}"

    @property
    def region_expr(self) -> str:
        return self.region or f"${{{{ vars.{REGION_VAR} }}}}"


@dataclass(frozen=True)
class Workflow:
    path: Path  # absolute
    text: str
    functions: tuple[str, ...]
    paths: tuple[str, ...]


def _posix_rel(path: Path, root: Path) -> str:
    rel = os.path.relpath(path, root).replace(os.sep, "/")
    return "" if rel == "." else rel


def _under(rel: str, pattern: str) -> str:
    return f"{rel}/{pattern}" if rel else pattern


def function_paths(fn: FunctionConfig, project: Project, repo_root: Path) -> list[str]:
    """The path filters that should trigger a deploy of ``fn`` (relative to the repository root)."""
    from lambdaship.package.requirements import requirements_file
    from lambdaship.scaffold.dockerfile import requirement_files

    out: list[str] = [_under(_posix_rel(fn.source, repo_root), "**")]
    try:
        req = requirements_file(fn)
    except Exception:  # a missing file is the builder's error to report, not ours
        req = None
    if req is not None:
        out += [_posix_rel(p, repo_root) for p in requirement_files(req)]
    if project.config_file is not None:
        out.append(_posix_rel(project.config_file, repo_root))
    for entry in fn.shared:
        target = (project.root / entry).resolve()
        rel = _posix_rel(target, repo_root)
        if rel.startswith("../"):
            raise UsageError(
                f"shared path {entry!r} of function {fn.key!r} is outside the repository {repo_root}",
                "shared paths must be inside the git repository",
            )
        out.append(_under(rel, "**") if target.is_dir() else rel)
    return _dedupe(out)


def _dedupe(paths: list[str]) -> list[str]:
    """Drop repeats and paths already covered by a ``dir/**`` entry (``**`` covers all)."""
    dirs = [p[:-3] for p in paths if p.endswith("/**")]
    everything = "**" in paths
    out: list[str] = []
    for p in paths:
        if not p or p in out:
            continue
        if p != "**" and everything:
            continue
        if any(p != f"{d}/**" and p.startswith(d + "/") for d in dirs):
            continue
        out.append(p)
    return out


def _q(text: str) -> str:
    return json.dumps(text)


_SUMMARY_SCRIPT = """\
python3 - <<'PY'
import json, os
out = open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8")
try:
    with open(os.environ["DEPLOY_JSON"], encoding="utf-8") as fh:
        data = json.load(fh)
except (OSError, ValueError):
    out.write("### lambdaship deploy\\n\\nNo JSON result: see the step log.\\n")
    raise SystemExit(0)
rows = []
def walk(node):
    if isinstance(node, dict):
        name = node.get("function_name") or node.get("function")
        if isinstance(name, str) and ("digest" in node or "status" in node or "error" in node):
            status = node.get("status") or ("up to date" if node.get("up_to_date") else
                                             "deployed" if node.get("version") else "")
            rows.append((name, str(node.get("digest") or ""), str(node.get("version") or ""), str(status),
                         str(node.get("error") or node.get("reason") or "")))
            return
        for value in node.values():
            walk(value)
    elif isinstance(node, list):
        for value in node:
            walk(value)
walk(data)
out.write("### lambdaship deploy\\n\\n| function | digest | version | status | detail |\\n|---|---|---|---|---|\\n")
for row in rows:
    out.write("| " + " | ".join(c.replace("|", "\\\\|").replace("\\n", " ") for c in row) + " |\\n")
PY"""


def _indent(text: str, n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line if line else line for line in text.splitlines())


def _render(
    *,
    title: str,
    header: list[str],
    paths: list[str],
    options: Options,
    concurrency: str,
    working_dir: str,
    deploy_step: list[str],
    fetch_depth_zero: bool,
) -> str:
    lines = [f"# {h}" if h else "#" for h in header]
    lines += _trigger(title, paths, options, concurrency)
    lines += _job_head(title, options, working_dir)
    lines += _steps(options, deploy_step, fetch_depth_zero)
    return "\n".join(lines) + "\n"


def _trigger(title: str, paths: list[str], options: Options, concurrency: str) -> list[str]:
    """Name, when it runs (a push touching ``paths``, or by hand), no default permissions, one at a time."""
    return [
        f"name: {title}",
        "",
        "on:",
        "  push:",
        "    branches:",
        f"      - {_q(options.branch)}",
        "    paths:",
        *(f"      - {_q(p)}" for p in paths),
        "  workflow_dispatch:",
        "",
        "permissions: {}",
        "",
        "concurrency:",
        f"  group: {concurrency}",
        "  cancel-in-progress: false  # never interrupt a deploy half-way",
        "",
    ]


def _job_head(title: str, options: Options, working_dir: str) -> list[str]:
    """The deploy job: runner, timeout, environment, OIDC permissions, shell and directory."""
    lines = [
        "jobs:",
        "  deploy:",
        f"    name: {title}",
        "    runs-on: ubuntu-latest",
        "    timeout-minutes: 30",
        *([f"    environment: {_q(options.environment)}  # the OIDC subject becomes "
           f"repo:OWNER/REPO:environment:{options.environment}"] if options.environment else []),
        "    permissions:",
        "      id-token: write  # the OIDC token that configure-aws-credentials exchanges for the role",
        "      contents: read  # actions/checkout",
        "    defaults:",
        "      run:",
        "        shell: bash",
    ]
    if working_dir:
        lines.append(f"        working-directory: {_q(working_dir)}")
    return lines


def _steps(options: Options, deploy_step: list[str], fetch_depth_zero: bool) -> list[str]:
    """Checkout, Python, lambdaship, AWS credentials (OIDC), the deploy, and the digest summary."""
    lines = [
        "    steps:",
        "      - name: Check out",
        f"        uses: {CHECKOUT.uses}",
        "        with:",
        "          persist-credentials: false",
    ]
    if fetch_depth_zero:
        lines.append("          fetch-depth: 0  # --changed-since compares with the previous push")
    lines += [
        "      - name: Set up Python",
        f"        uses: {SETUP_PYTHON.uses}",
        "        with:",
        f"          python-version: {_q(RUNNER_PYTHON)}",
        "      - name: Install lambdaship",
        f"        run: python -m pip install --disable-pip-version-check {shlex.quote(options.install_spec)}",
        "      - name: AWS credentials (OIDC, no stored keys)",
        f"        uses: {CONFIGURE_AWS.uses}",
        "        with:",
        f"          role-to-assume: {options.role_expr}",
        f"          aws-region: {options.region_expr}",
        *deploy_step,
        "      - name: Deployed digest",
        "        if: always()",
        "        env:",
        "          DEPLOY_JSON: ${{ runner.temp }}/lambdaship-deploy.json",
        "        run: |",
        _indent(_SUMMARY_SCRIPT, 10),
    ]
    return lines


def _header(what: str, options: Options, workflow_rel: str) -> list[str]:
    if options.role_arn_secret:
        role = f"secret {options.role_arn_secret}"
    else:
        role = f"repository variable {options.role_arn_var}"
    region = f"region {options.region}" if options.region else f"repository variable {REGION_VAR} (the region)"
    return [
        f"Generated by `lambdaship ci github` (lambdaship {lambdaship.__version__}); regenerate rather than edit.",
        what,
        f"Needs: {role} = the deploy role's ARN (create it with `lambdaship iam`), {region}.",
        "No AWS keys are stored: the job gets short-lived credentials through GitHub's OIDC provider.",
        f"File: {workflow_rel}",
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "app"


_DEPLOY_OUT = [
    "        env:",
    "          DEPLOY_JSON: ${{ runner.temp }}/lambdaship-deploy.json",
]


def _matrix_workflow(project: Project, options: Options, out_dir: Path, repo_root: Path, working_dir: str) -> Workflow:
    """One workflow for every function: `deploy --all --changed-since` the previous push."""
    fns = list(project.functions.values())
    path = out_dir / ALL_FILE
    wf_rel = _posix_rel(path, repo_root)
    paths: list[str] = []
    for fn in fns:
        paths += function_paths(fn, project, repo_root)
    paths = _dedupe([*paths, wf_rel])
    name = _slug(project.root.name)
    step = [
        "      - name: Deploy the functions changed since the previous push",
        "        id: deploy",
        *_DEPLOY_OUT,
        "          BEFORE: ${{ github.event.before }}",
        "        run: |",
        f'          if [ -z "${{BEFORE:-}}" ] || [ "$BEFORE" = "{ZERO_SHA}" ] \\',
        '             || ! git cat-file -e "${BEFORE}^{commit}" 2>/dev/null; then',
        '            echo "no previous commit to compare with (new branch, manual run, force push): deploying all"',
        '            lambdaship deploy --all --json > "$DEPLOY_JSON"',
        "          else",
        '            lambdaship deploy --all --changed-since "$BEFORE" --json > "$DEPLOY_JSON"',
        "          fi",
    ]
    text = _render(
        title=f"deploy {name}",
        header=_header(
            f"Deploys the functions of {name} ({', '.join(f.function_name for f in fns)}) that changed.",
            options, wf_rel,
        ),
        paths=paths, options=options, concurrency=f"lambdaship-deploy-{name}",
        working_dir=working_dir, deploy_step=step, fetch_depth_zero=True,
    )
    return Workflow(path, text, tuple(f.key for f in fns), tuple(paths))


def _function_workflow(fn: FunctionConfig, project: Project, options: Options, out_dir: Path, repo_root: Path,
                       working_dir: str) -> Workflow:
    """One function's workflow: deploy it when its files change."""
    path = out_dir / f"deploy-{_slug(fn.key)}.yml"
    wf_rel = _posix_rel(path, repo_root)
    paths = _dedupe([*function_paths(fn, project, repo_root), wf_rel])
    fn_flag = f" --function {fn.key}" if len(project.functions) > 1 else ""
    if fn_flag and not re.match(r"^[A-Za-z0-9_.-]+$", fn.key):
        raise UsageError(f"function key {fn.key!r} cannot be used in a workflow", "use letters, digits, '-', '_'")
    step = [
        f"      - name: Deploy {fn.function_name}",
        "        id: deploy",
        *_DEPLOY_OUT,
        f'        run: lambdaship deploy{fn_flag} --json > "$DEPLOY_JSON"',
    ]
    text = _render(
        title=f"deploy {fn.function_name}",
        header=_header(f"Deploys Lambda function {fn.function_name} when its files change.", options, wf_rel),
        paths=paths, options=options, concurrency=f"lambdaship-deploy-{fn.function_name}",
        working_dir=working_dir, deploy_step=step, fetch_depth_zero=False,
    )
    return Workflow(path, text, (fn.key,), tuple(paths))


def generate(project: Project, options: Options, out_dir: Path | None = None) -> list[Workflow]:
    """The workflow files for ``project`` (not written)."""
    options.validate()
    repo_root = git_root(project.root) or project.root
    out_dir = (out_dir or repo_root / ".github" / "workflows").resolve()
    working_dir = _posix_rel(project.root, repo_root)
    if working_dir.startswith(".."):
        raise UsageError(f"{project.root} is outside the git repository {repo_root}")
    if options.matrix and len(project.functions) > 1:
        return [_matrix_workflow(project, options, out_dir, repo_root, working_dir)]
    return [_function_workflow(fn, project, options, out_dir, repo_root, working_dir)
            for fn in project.functions.values()]
