"""``lambdaship push``: build (or read an OCI layout) and push only what the registry lacks."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from lambdaship.commands._common import JsonOpt, console, emit_json, err_console, interactive
from lambdaship.commands._push_progress import PushRenderer
from lambdaship.commands._push_progress import size_text as _size
from lambdaship.commands.options import BuildFlags, ProjectFlags, with_options
from lambdaship.errors import LambdashipError, UsageError

DEFAULT_KEEP = 50


def git_tag(directory: Path) -> str | None:
    """``git-<12-char sha>`` of HEAD (``-dirty`` appended for uncommitted changes), or None."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )
        if sha.returncode != 0 or not sha.stdout.strip():
            return None
        dirty = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return f"git-{sha.stdout.strip()}" + ("-dirty" if dirty.stdout.strip() else "")


def default_tags(directory: Path | None) -> list[str]:
    tag = git_tag(directory) if directory is not None else None
    return [tag or time.strftime("build-%Y%m%d%H%M%S", time.gmtime())]


def register(app: typer.Typer) -> None:
    @app.command("push")
    @with_options
    def push(
        where: ProjectFlags = ProjectFlags(),
        tag: list[str] = typer.Option(
            [], "--tag", "-t", help="Extra tag (repeatable). The git commit (git-<sha>) is always added.",
            show_default=False,
        ),
        repository: str | None = typer.Option(
            None, "--repository", help="ECR repository name (default: from the config / function name).",
            show_default=False,
        ),
        layout: Path | None = typer.Option(
            None, "--layout", help="Push this OCI image layout instead of building.", show_default=False,
        ),
        to: str | None = typer.Option(
            None, "--to", help="Push to this registry/repository (any OCI registry) instead of ECR.",
            show_default=False,
        ),
        keep_images: int = typer.Option(
            DEFAULT_KEEP, "--keep-images", min=1,
            help="ECR lifecycle policy: keep this many pushed images (deployed ones are never expired).",
        ),
        scan_on_push: bool = typer.Option(
            True, "--scan-on-push/--no-scan-on-push", help="New ECR repository: scan images on push.",
        ),
        immutable_tags: bool = typer.Option(False, "--immutable-tags", help="New ECR repository: immutable tags."),
        kms_key: str | None = typer.Option(
            None, "--kms-key", help="New ECR repository: encrypt with this KMS key (default: AES-256).",
            show_default=False,
        ),
        flags: BuildFlags = BuildFlags(),
        json_: bool = JsonOpt,
    ) -> None:
        """Build the function's image (or read --layout) and push it; prints repository@sha256:…."""
        from lambdaship.registries import push_image

        fn = None
        if layout is None or (to is None and repository is None) or where != ProjectFlags():
            fn = where.load(flags)[1]
        name = _check_target(tag, to, repository, fn)

        def ensure_target() -> tuple[str, Callable[[], None] | None]:
            """The push target, and how to delete the ECR repository if this call created it."""
            if to is not None:
                return to, None
            from lambdaship.aws import ecr

            created: list[bool] = []
            uri = ecr.ensure_repository(
                str(name), keep_images=keep_images, scan_on_push=scan_on_push, mutable_tags=not immutable_tags,
                encryption="KMS" if kms_key else "AES256", kms_key=kms_key, on_create=lambda: created.append(True),
            )
            return uri, (lambda: ecr.delete_empty_repository(str(name))) if created else None

        ahead, target = None, None
        if layout is not None:
            image = _read_layout(layout)
        else:  # the base layers go to the target while the image builds (lambdaship.ahead)
            from lambdaship.ahead import base_ahead

            with base_ahead(fn, ensure_target) as running:
                image = _build(fn, name, progress=not json_)
            target, ahead = running.result()

        git_dir = fn.source if fn is not None else (where.project or Path.cwd())
        tags = default_tags(git_dir if git_dir.is_dir() else git_dir.parent)
        tags += [t for t in tag if t not in tags]
        if target is None:
            target = ensure_target()[0]

        renderer = PushRenderer(err_console, tty=interactive(), enabled=not json_)
        with renderer:
            result = push_image(image, target, tags, on_event=renderer, ahead=ahead)
        if json_:
            emit_json(result.to_json())
            return
        console.print(
            f"{result.uploaded_blobs} uploaded ({_size(renderer.sent_bytes)} sent), "
            f"{result.mounted_blobs} mounted, {result.skipped_blobs} already present "
            f"({_size(renderer.skipped_bytes + renderer.mounted_bytes)} not sent); "
            f"tags: {', '.join(result.tags) or '-'}"
        )
        typer.echo(result.image_ref)


def _check_target(tag: list[str], to: str | None, repository: str | None, fn: Any) -> str | None:
    """Validate tags and the target before any work; the ECR repository name (None with --to)."""
    from lambdaship.patterns import TAG_RE

    for t in tag:
        if not TAG_RE.match(t):
            raise UsageError(f"{t!r} is not a valid tag", "use up to 128 of A-Z a-z 0-9 _ . -")
    if to is not None:
        from lambdaship.oci.push import check_target

        try:
            check_target(to, tag)
        except LambdashipError as exc:
            raise UsageError(exc.message, exc.hint) from None
        return None
    from lambdaship.patterns import ECR_REPOSITORY_RE as REPOSITORY_RE

    name = repository or (fn.repository_name if fn is not None else None)
    if not name:
        raise UsageError("no repository to push to", "give --repository NAME, --to REF or a config")
    if not REPOSITORY_RE.match(name):
        raise UsageError(f"{name!r} is not a valid ECR repository name",
                         "lowercase letters, digits, '.', '_', '-', '/' (--repository or 'repository')")
    return name


def _build(fn: Any, name: str | None, *, progress: bool) -> Any:
    try:
        from lambdaship.image.build import build_image
    except ImportError:
        raise LambdashipError(
            "the image builder is not available in this installation",
            "push an existing OCI layout with --layout DIR",
        ) from None
    # The ECR lookup of the previous image (boto3 import + client: ~0.6 s of a fresh runner's
    # 2 s code-only push, measured with pyinstrument) runs while the build does its local checks.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        previous = pool.submit(_previous_image, name) if name else None
        return build_image(fn, progress=progress,
                           reuse_deps_from=previous.result if previous is not None else None).image


def _previous_image(repository: str) -> str | None:
    """The newest image of the ECR repository (``uri@digest``), if any: a fresh CI runner reuses
    its dependency layer when the dependency set is unchanged (read-only calls)."""
    from lambdaship.aws import ecr

    images = ecr.describe_images(repository)
    if not images:
        return None
    return f"{ecr.registry_for_account()}/{repository}@{images[0]['imageDigest']}"


def _read_layout(layout: Path):
    from lambdaship.image.model import read_layout

    if not (layout / "index.json").is_file():
        raise UsageError(f"{layout} is not an OCI image layout (no index.json)", "give the layout's directory")
    try:
        return read_layout(layout)
    except (ValueError, KeyError, OSError) as exc:
        raise UsageError(f"cannot read the OCI layout {layout}: {exc}") from None

