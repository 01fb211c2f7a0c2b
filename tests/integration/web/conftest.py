"""The real exporter process of the metrics tests, for the status page's tests."""

from __future__ import annotations

from tests.integration.metrics.conftest import exporter_factory

__all__ = ["exporter_factory"]
