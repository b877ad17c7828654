"""The local stack (`leadflow dev`) and the operator CLI. Dev-only: not in the Lambda layer."""
