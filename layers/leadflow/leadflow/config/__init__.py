"""Workspace configuration: plain YAML files, validated by pydantic into plain dataclasses."""
