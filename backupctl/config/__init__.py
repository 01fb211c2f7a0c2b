"""Configuration: schema (pydantic), YAML loading with line numbers, validation."""
