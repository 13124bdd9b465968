"""ARAP: requestable denials, access requests and their approval (docs/access-requests.md)."""
