"""Stages that belong to the core: `persist` stores raw posts."""
