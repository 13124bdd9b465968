"""Rich Authorization Requests (RFC 9396) for the token endpoint: type profiles, validation of
`authorization_details`, and their translation into AuthZEN evaluations.

This part knows neither HTTP nor storage: it takes strings and JSON values in and gives
validated entries, planned evaluations and OAuth error objects back, so the token endpoint,
the deferral snapshot and the tests all use it the same way.
"""

from .authorization_details import check_authorization_details, parse_authorization_details
from .loader import ProfileLoadError, ProfileProblem, load_profiles
from .narrowing import is_narrowing
from .profiles import Profile, ProfileSet, ScopeMapping
from .translate import (
    PlannedEvaluation,
    TokenRequestContext,
    describe_denial,
    plan_evaluations,
    refusal,
)

__all__ = [
    "PlannedEvaluation",
    "Profile",
    "ProfileLoadError",
    "ProfileProblem",
    "ProfileSet",
    "ScopeMapping",
    "TokenRequestContext",
    "check_authorization_details",
    "describe_denial",
    "is_narrowing",
    "load_profiles",
    "parse_authorization_details",
    "plan_evaluations",
    "refusal",
]
