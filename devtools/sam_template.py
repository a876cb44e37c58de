"""A copy of a synthesized CDK template that `sam local` can read without AWS.

    python -m devtools.sam_template cdk.out/dev/UsersApi-dev.template.json \
        cdk.out/sam/UsersApi-dev.template.json

The stack's master-secret rotation is an `AWS::Serverless::Application` (from the Serverless
Application Repository). The SAM translator that `sam local` runs on every template fetches
such an application's template from AWS before it does anything else, so on a machine
without AWS access every `sam local` command fails on it. Nothing local needs it: this
writes a copy without those resources, without the resources that reference them (through
`Ref`, `Fn::GetAtt` or `Fn::Sub`, transitively: here the rotation schedule), without the
outputs that do, and without `DependsOn` entries naming anything removed.

CDK writes each asset's `aws:asset:path` relative to the template's folder; the copy lives
elsewhere, so those paths are rewritten to absolute ones (sam joins them onto the template's
folder, which keeps an absolute path as it is). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SERVERLESS_APPLICATION = "AWS::Serverless::Application"
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[^}]*)?\}")


def referenced_ids(node: Any) -> Iterator[str]:
    """Every logical id `node` references through Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                if isinstance(value, list) and value and isinstance(value[0], str):
                    yield value[0]
                elif isinstance(value, str):
                    yield value.split(".", 1)[0]
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) and value else value
                if isinstance(text, str):
                    yield from _SUB_NAME.findall(text)
            yield from referenced_ids(value)
    elif isinstance(node, list):
        for item in node:
            yield from referenced_ids(item)


def _depends_on(resource: dict[str, Any]) -> list[str]:
    value = resource.get("DependsOn", [])
    return [value] if isinstance(value, str) else list(value)


def strip_template(
    template: dict[str, Any], asset_base: Path | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The template without Serverless applications and what references them.

    Returns the new template and the logical ids removed. With `asset_base` (the folder of
    the original template), relative `aws:asset:path` values become absolute under it.
    """
    resources: dict[str, Any] = dict(template.get("Resources", {}))
    removed = {k for k, r in resources.items() if r.get("Type") == SERVERLESS_APPLICATION}
    # Whatever references a removed resource goes too, until nothing more does.
    while True:
        more = {
            logical_id
            for logical_id, resource in resources.items()
            if logical_id not in removed
            and not removed.isdisjoint(
                referenced_ids({k: v for k, v in resource.items() if k != "DependsOn"})
            )
        }
        if not more:
            break
        removed |= more

    kept: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        if logical_id in removed:
            continue
        resource = dict(resource)
        if "DependsOn" in resource:
            depends_on = [d for d in _depends_on(resource) if d not in removed]
            if depends_on:
                resource["DependsOn"] = depends_on
            else:
                del resource["DependsOn"]
        metadata = resource.get("Metadata")
        if asset_base is not None and isinstance(metadata, dict):
            asset_path = metadata.get("aws:asset:path")
            if isinstance(asset_path, str) and not Path(asset_path).is_absolute():
                resource["Metadata"] = {
                    **metadata,
                    "aws:asset:path": str((asset_base / asset_path).resolve()),
                }
        kept[logical_id] = resource

    result = {**template, "Resources": kept}
    if "Outputs" in template:
        outputs = {
            name: output
            for name, output in template["Outputs"].items()
            if removed.isdisjoint(referenced_ids(output))
        }
        if outputs:
            result["Outputs"] = outputs
        else:
            del result["Outputs"]
    return result, sorted(removed)


def write_sam_template(source: Path, target: Path) -> list[str]:
    """Write the sam-only copy of `source` to `target`; returns the logical ids removed."""
    template = json.loads(source.read_text(encoding="utf-8"))
    stripped, removed = strip_template(template, asset_base=source.resolve().parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(json.dumps(stripped, indent=1) + "\n", encoding="utf-8")
    temporary.replace(target)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.sam_template",
        description="Write a copy of a synthesized template that sam local reads without AWS.",
    )
    parser.add_argument("source", type=Path, help="the synthesized template (cdk.out/...)")
    parser.add_argument("target", type=Path, help="where to write the sam-only copy")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"{args.source} does not exist: run `make synth` first.", file=sys.stderr)
        return 1
    removed = write_sam_template(args.source, args.target)
    print(
        f"{args.target}: sam-only copy of {args.source}"
        + (f" without {', '.join(removed)}" if removed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
