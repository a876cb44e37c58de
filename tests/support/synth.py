"""The dev stack synthesized in-process WITH its Lambda bundle, once per test session.

tests/infra/conftest.py synthesizes without bundling (its tests look at the template, not
the code); the local-invocation tests need what `make synth` writes: the asset directory
that `aws:asset:path` names, holding the bundle. The bundle comes from the bundler's cache
(.build/lambda-bundles, keyed by the hash of its inputs) when the function's code and pins
are unchanged, otherwise it is built (pip, a few seconds more).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STACK = "UsersApi-dev"

_done: dict[Path, Path] = {}


def synthesize_bundled_dev(outdir: Path) -> Path:
    """Synthesize the dev stage into `outdir` (once per path); returns the template path."""
    if outdir in _done:
        return _done[outdir]
    # Before jsii starts Node: its end-of-life banner for this Node only adds noise.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App, Stage

    from infra.app import build

    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update(
        {
            "stage": "dev",
            # Stacks in a Stage are matched by their path (Dev/UsersApi-dev).
            "aws:cdk:bundling-stacks": [f"Dev/{STACK}"],
            # What the CLI adds: the `aws:asset:*` metadata sam local reads.
            "aws:cdk:enable-asset-metadata": True,
            "aws:cdk:enable-path-metadata": True,
        }
    )
    app = App(context=context, outdir=str(outdir))
    stack = build(app)
    # A failed validation plugin (cdk-nag) raises after the templates are written.
    with contextlib.suppress(RuntimeError):
        app.synth()
    # The stack sits in its stage's nested assembly (infra/stage.py).
    template = Path(Stage.of(stack).outdir) / stack.template_file
    assert template.is_file(), f"synthesis wrote no {template}"
    _done[outdir] = template
    return template
