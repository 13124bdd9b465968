"""`make fuzz`: schemathesis against a running bridge configured like the local demo."""
