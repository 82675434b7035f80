"""``lambdaship ci github``: GitHub Actions workflows that deploy with OIDC."""

from __future__ import annotations

from pathlib import Path

import typer

from lambdaship.commands._common import JsonOpt, ProjectOpt, console, emit_json


def register(app: typer.Typer) -> None:
    ci = typer.Typer(help="Generate CI workflows that deploy with lambdaship.", no_args_is_help=True)
    app.add_typer(ci, name="ci")

    @ci.command("github")
    def github(
        project: Path = ProjectOpt,
        matrix: bool = typer.Option(
            False, "--matrix",
            help="One workflow for all functions: `lambdaship deploy --all --changed-since <previous push>` "
            "deploys what changed, in parallel (multi-function projects).",
        ),
        out: Path = typer.Option(
            None, "--out", "-o", help="Directory for the workflow files (default: <git root>/.github/workflows).",
            show_default=False,
        ),
        role_arn_secret: str = typer.Option(
            None, "--role-arn-secret",
            help="Read the deploy role's ARN from this repository secret instead of a variable.", show_default=False,
        ),
        role_arn_var: str = typer.Option(
            "AWS_DEPLOY_ROLE_ARN", "--role-arn-var", help="Repository variable holding the deploy role's ARN."
        ),
        region: str = typer.Option(
            None, "--region", help="AWS region (default: the repository variable AWS_REGION).", show_default=False
        ),
        branch: str = typer.Option("main", "--branch", help="Deploy on pushes to this branch."),
        environment: str = typer.Option(
            None, "--environment",
            help="Run the job in this GitHub environment (protection rules, environment secrets); "
            "pass the same to `lambdaship iam`.", show_default=False,
        ),
        pip_spec: str = typer.Option(
            None, "--pip-spec", help="What the workflow pip-installs (default: lambdaship==<this version>).",
            show_default=False,
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite workflow files that exist with other content."),
        json_out: bool = JsonOpt,
    ) -> None:
        """Write GitHub Actions workflows: OIDC role, pinned actions, path filters, deploy + summary."""
        from lambdaship.config import load_project
        from lambdaship.scaffold.files import write_files
        from lambdaship.scaffold.github import Options, generate

        proj = load_project(project)
        options = Options(
            branch=branch, role_arn_secret=role_arn_secret, role_arn_var=role_arn_var, region=region, matrix=matrix,
            environment=environment, pip_spec=pip_spec,
        )
        workflows = generate(proj, options, out)
        written = write_files({w.path: w.text for w in workflows}, force=force)
        if json_out:
            emit_json({
                "workflows": [
                    {**w.as_dict(), "functions": list(wf.functions), "paths": list(wf.paths)}
                    for w, wf in zip(written, workflows, strict=True)
                ],
            })
            return
        for w, wf in zip(written, workflows, strict=True):
            console.print(f"{w.status:<11} {w.path}  ({', '.join(wf.functions)})", markup=False)
        where = f"secret {role_arn_secret}" if role_arn_secret else f"variable {role_arn_var}"
        console.print("next steps:", markup=False)
        console.print(
            "  lambdaship iam --github-repo OWNER/REPO   # the OIDC deploy role and its policy", markup=False
        )
        console.print(f"  set the repository {where} to that role's ARN"
                      + ("" if region else " and the variable AWS_REGION"), markup=False)
