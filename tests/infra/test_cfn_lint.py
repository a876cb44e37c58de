"""cfn-lint on the synthesized templates: no error, and no warning beyond the known one."""

from __future__ import annotations

from cfnlint.api import ManualArgs, lint_file

from tests.infra.conftest import Synth

# W3005 (DependsOn already implied by a GetAtt): CDK writes both for Lambda roles.
ALLOWED_WARNINGS = {"W3005"}
REGIONS = ["us-east-1", "eu-west-1"]


def test_templates_pass_cfn_lint(synth: Synth) -> None:
    matches = lint_file(synth.template_file, config=ManualArgs(regions=REGIONS))
    problems = [
        str(m) for m in matches if not (m.rule.id.startswith("I") or m.rule.id in ALLOWED_WARNINGS)
    ]
    assert problems == []
