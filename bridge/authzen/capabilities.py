"""Capability URNs of the AuthZEN PDP Capabilities Registry that the bridge advertises for
its stores or requires of a remote PDP. (ARAP's `access-request` lives with ARAP, in
`access_requests.metadata`.)"""

from __future__ import annotations

from typing import Final

# The OAuth 2.0 token issuance profile §7, §13.1: the PDP understands its request mapping
# and its `context.issuance` vocabulary, and decides any registered gate action.
TOKEN_ISSUANCE: Final = "urn:openid:authzen:capability:token-issuance"
