"""Cognito pre token generation trigger (event version 2.0): the users API's scopes by group.

Cognito writes custom scopes into an access token only when it comes from its OAuth
endpoints; tokens from InitiateAuth / AdminInitiateAuth (SRP, the admin password flow, a
refresh) carry `aws.cognito.signin.user.admin` alone. This trigger adds the API's scopes
from the user's groups (SCOPES_BY_GROUP, a JSON object: group -> scopes) to every access
token, refreshes included, so taking a user out of a group takes effect at the next
refresh. Standard library only: the stack deploys this file inline.
"""

from __future__ import annotations

import json
import os
from typing import Any

SCOPES_BY_GROUP: dict[str, list[str]] = json.loads(os.environ.get("SCOPES_BY_GROUP", "{}"))


def scopes_for(groups: list[str]) -> list[str]:
    return sorted({scope for group in groups for scope in SCOPES_BY_GROUP.get(group, ())})


def handler(event: dict[str, Any], _context: object) -> dict[str, Any]:
    groups = (event.get("request", {}).get("groupConfiguration") or {}).get("groupsToOverride")
    scopes = scopes_for(groups or [])
    if scopes:
        event.setdefault("response", {})["claimsAndScopeOverrideDetails"] = {
            "accessTokenGeneration": {"scopesToAdd": scopes}
        }
    return event
