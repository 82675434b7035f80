"""One example per help screen, shown under the options (the command's epilog).

Kept here, one place, so every command has one and they read alike; ``cli.py`` attaches them.
Each line is a command a user can paste (``-C``: the app's directory).
"""

from __future__ import annotations

from typing import Any

EXAMPLES: dict[str, list[str]] = {
    "": ["lambdaship init && lambdaship deploy",
         "lambdaship --profile prod --region eu-west-1 status --json"],
    "build": ["lambdaship build --out build/oci", "lambdaship build --architecture arm64 --tar image.tar"],
    "delete": ["lambdaship delete --dry-run", "lambdaship delete -C services/api --images --yes"],
    "deploy": ["lambdaship deploy --dry-run", "lambdaship deploy --all --changed-since origin/main"],
    "diff": ["lambdaship diff", "lambdaship diff --no-code --json"],
    "dockerfile": ["lambdaship dockerfile --out ."],
    "iam": ["lambdaship iam --github-repo OWNER/REPO --branch main"],
    "init": ["lambdaship init", "lambdaship init . --config-file lambdaship.toml --json"],
    "invoke": ["lambdaship invoke --local --event event.json", "lambdaship invoke --qualifier live --json"],
    "list": ["lambdaship list", "lambdaship --region eu-west-1 list --json"],
    "logs": ["lambdaship logs --since 30m --filter ERROR", "lambdaship logs --follow"],
    "migrate": ["lambdaship migrate --from my-zip-function --dry-run"],
    "push": ["lambdaship push --tag git-$(git rev-parse --short HEAD)"],
    "rollback": ["lambdaship rollback --dry-run", "lambdaship rollback --to 7"],
    "run": ["lambdaship run build/oci --get /health"],
    "serve": ["lambdaship serve --port 8000 --reload"],
    "size": ["lambdaship size", "lambdaship size --architecture arm64 --html size.html"],
    "status": ["lambdaship status", "lambdaship status --all --since 1h --json"],
    "ci": ["lambdaship ci github --region eu-west-1"],
    "ci github": ["lambdaship ci github --region eu-west-1 --environment production"],
    "env": ["lambdaship env show", "lambdaship env sync --dry-run"],
    "env show": ["lambdaship env show --env-file .env.prod --json"],
    "env sync": ["lambdaship env sync --dry-run", "lambdaship env sync --yes"],
    "local": ["lambdaship local up && eval \"$(lambdaship local env)\""],
    "local up": ["lambdaship local up --state-dir /tmp/stack"],
    "local env": ["eval \"$(lambdaship local env)\""],
    "local status": ["lambdaship local status --json"],
    "local base": ["lambdaship local base"],
    "local down": ["lambdaship local down"],
}


def epilog(path: str) -> str | None:
    lines = EXAMPLES.get(path)
    if not lines:
        return None
    # rich markup is on: keep "[" literal; one paragraph per example so nothing is re-wrapped
    body = "\n\n".join(f"  $ {line}".replace("[", "\\[") for line in lines)
    return f"[b]Examples[/b]\n\n{body}"


def attach(app: Any) -> None:
    """Give every command and group of ``app`` its example, unless it has an epilog already."""
    app.info.epilog = app.info.epilog or epilog("")
    for cmd in app.registered_commands:
        cmd.epilog = cmd.epilog or epilog(cmd.name or "")
    for group in app.registered_groups:
        sub = group.typer_instance
        name = group.name or sub.info.name or ""
        group.epilog = group.epilog or epilog(name)
        for cmd in sub.registered_commands:
            cmd.epilog = cmd.epilog or epilog(f"{name} {cmd.name}")
