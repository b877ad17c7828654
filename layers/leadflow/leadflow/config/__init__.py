"""Workspace configuration: plain YAML files validated by pydantic models."""
