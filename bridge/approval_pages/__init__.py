"""The approvers' pages: the inbox, one access request, and the decision on it, for people
signed in through the front door. Decisions go through the same access request service as
the approver API, so a waiting client learns of them exactly as it does of an API decision.
"""

from .pages import ApprovalPages

__all__ = ["ApprovalPages"]
