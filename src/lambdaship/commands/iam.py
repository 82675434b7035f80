"""``lambdaship iam``: the GitHub OIDC deploy role and the execution roles, as IAM JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from lambdaship.commands._common import JsonOpt, ProjectOpt, console, emit_json


def register(app: typer.Typer) -> None:
    @app.command("iam")
    def iam(
        project: Path = ProjectOpt,
        github_repo: str = typer.Option(
            None, "--github-repo", help="OWNER/REPO allowed to deploy (default: the github.com 'origin' remote).",
            show_default=False,
        ),
        branch: str = typer.Option("main", "--branch", help="Only workflows running on this branch may deploy."),
        environment: str = typer.Option(
            None, "--environment", help="Trust jobs of this GitHub environment instead of a branch "
            "(match `lambdaship ci github --environment`).", show_default=False,
        ),
        account_id: str = typer.Option(
            None, "--account-id", help="AWS account id (default: from 'role' in the config, else STS).",
            show_default=False,
        ),
        region: str = typer.Option(None, "--region", help="AWS region (default: AWS_REGION / profile).",
                                   show_default=False),
        role_name: str = typer.Option(
            None, "--role-name", help="Name of the deploy role (default: lambdaship-deploy-<project dir>).",
            show_default=False,
        ),
        out: Path = typer.Option(
            None, "--out", "-o", help="Directory for the JSON files (default: .lambdaship/iam; with --json: none).",
            show_default=False,
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite files that exist with other content."),
        json_out: bool = JsonOpt,
    ) -> None:
        """Write the IAM trust and permission policies for deploying from GitHub Actions with OIDC."""
        from lambdaship.config import load_project
        from lambdaship.scaffold.files import write_files
        from lambdaship.scaffold.iam import generate

        proj = load_project(project)
        out_dir = (out or proj.root / ".lambdaship" / "iam").resolve()
        docs = generate(
            proj, github_repo=github_repo, branch=branch, environment=environment, account_id=account_id,
            region=region, out_dir=out_dir, deploy_role_name=role_name,
        )
        written = write_files(docs.files(out_dir), force=force) if (out is not None or not json_out) else []
        deploy_arn = f"arn:{docs.target.partition}:iam::{docs.target.account}:role/{docs.deploy_role_name}"
        if json_out:
            emit_json({
                "account_id": docs.target.account,
                "region": docs.target.region,
                "github_repo": docs.github_repo,
                "oidc_subject": docs.subject,
                "deploy_role": {"role_name": docs.deploy_role_name, "role_arn": deploy_arn},
                "execution_roles": docs.execution_roles,
                "documents": docs.documents,
                "files": [w.as_dict() for w in written],
                "commands": [c for c in docs.commands if not c.startswith("#")],
            })
            return
        for w in written:
            console.print(f"{w.status:<11} {w.path}", markup=False)
        console.print(f"deploy role {deploy_arn} (assumable by {docs.subject})", markup=False)
        console.print("create the roles:", markup=False)
        for c in docs.commands:
            console.print(f"  {c}", markup=False)
        console.print("then:", markup=False)
        console.print(f"  set the GitHub repository variable AWS_DEPLOY_ROLE_ARN = {deploy_arn}", markup=False)
        for key, role in docs.execution_roles.items():
            console.print(f"  config of {key}: role = \"{role['role_arn']}\"", markup=False)
