"""CDK synthesis fixtures: one synthesis per stage per test session (jsii starts Node, so
each synthesis costs seconds). Bundling is skipped here (`aws:cdk:bundling-stacks: []`);
only the CLI test in test_cli_synth.py builds the real bundle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before jsii starts its Node process: this machine's Node 20 is past jsii's support window,
# which only prints a banner.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = ROOT / "cdk.json"
STAGE_NAMES = ("dev", "prod")


@dataclass(frozen=True)
class Synth:
    """One stage's synthesized stack."""

    settings: Any  # infra.config.StageSettings
    outdir: Path  # the app's cloud assembly
    assembly: Path  # the stage's nested assembly, holding the stack's files
    template_file: Path
    template_json: dict[str, Any]
    template: Any  # aws_cdk.assertions.Template
    validation_error: str | None  # the message when a validation plugin failed synthesis
    metadata: dict[str, list[dict[str, Any]]]  # construct path -> metadata entries

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template_json["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == resource_type}

    def one(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.of_type(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def function(self, handler: str) -> tuple[str, dict[str, Any]]:
        found = [
            (k, r)
            for k, r in self.of_type("AWS::Lambda::Function").items()
            if r["Properties"].get("Handler") == handler
        ]
        assert len(found) == 1, f"expected one function with handler {handler}"
        return found[0]


def cdk_context(stage: str, **extra: Any) -> dict[str, Any]:
    """cdk.json's context (the feature flags the CLI passes) plus the stage."""
    context = json.loads(CDK_JSON.read_text())["context"]
    return {**context, "stage": stage, **extra}


def synthesize(stage: str, outdir: Path, *, settings: Any = None, **context: Any) -> Synth:
    """Synthesize `stage` as `cdk synth -c stage=...` would (with extra `context`), or, given
    `settings` (a variant of the stage's StageSettings), a stack built from those."""
    from aws_cdk import App, Stage
    from aws_cdk.assertions import Template

    context = cdk_context(stage, **{"aws:cdk:bundling-stacks": []}, **context)
    app = App(context=context, outdir=str(outdir))
    if settings is None:
        from infra.app import build

        stack = build(app)
    else:
        from infra.config import with_overrides
        from infra.nag import add_nag_checks
        from infra.stage import UsersApiStage

        # The context overrides apply on top of the variant, as settings_from_context does.
        settings = with_overrides(
            settings, auth=context.get("auth"), alarm_email=context.get("alarm_email")
        )
        stack = UsersApiStage(app, settings=settings).stack
        add_nag_checks(app)
    validation_error = None
    try:
        app.synth()
    except RuntimeError as exc:  # a failed validation plugin (cdk-nag): templates are written
        validation_error = str(exc)
    assembly = Path(Stage.of(stack).outdir)  # the stage's nested assembly
    template_json = json.loads((assembly / stack.template_file).read_text())
    metadata_file = assembly / f"{stack.artifact_id}.metadata.json"
    metadata = json.loads(metadata_file.read_text()) if metadata_file.exists() else {}
    return Synth(
        settings=stack.settings,
        outdir=outdir,
        assembly=assembly,
        template_file=assembly / stack.template_file,
        template_json=template_json,
        template=Template.from_json(template_json),
        validation_error=validation_error,
        metadata=metadata,
    )


@pytest.fixture(scope="session")
def synth_stage(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Synth]:
    """`synth_stage("dev")`: that stage's synthesis, made once per session."""
    cache: dict[str, Synth] = {}

    def get(stage: str) -> Synth:
        if stage not in cache:
            cache[stage] = synthesize(stage, tmp_path_factory.mktemp(f"cdk-{stage}"))
        return cache[stage]

    return get


@pytest.fixture(scope="session", params=STAGE_NAMES)
def synth(request: pytest.FixtureRequest, synth_stage: Callable[[str], Synth]) -> Synth:
    """Each stage in turn."""
    return synth_stage(request.param)


@pytest.fixture(scope="session")
def dev(synth_stage: Callable[[str], Synth]) -> Synth:
    return synth_stage("dev")


@pytest.fixture(scope="session")
def prod(synth_stage: Callable[[str], Synth]) -> Synth:
    return synth_stage("prod")
