"""What cdk-nag acknowledgments a synthesized assembly's metadata carries."""

from typing import Any

ACK_KEY = "aws:cdk:acknowledged-rules"


def acknowledgments(
    metadata: dict[str, list[dict[str, Any]]], prefix: str
) -> dict[tuple[str, str], str]:
    """(construct path below `prefix`, AwsSolutions rule id) -> reason."""
    found = {}
    for path, entries in metadata.items():
        for entry in entries:
            if entry["type"] != ACK_KEY:
                continue
            for rule_id, reason in entry["data"].items():
                rule = rule_id.split("::", 1)[-1]
                if rule.startswith("AwsSolutions-"):
                    found[(path.removeprefix(prefix), rule)] = reason
    return found
