"""Reading a `/metrics` scrape in tests: one sample's value by name and labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape of a service's `/metrics`, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    @classmethod
    def of(cls, base_url: str) -> Scrape:
        response = httpx.get(f"{base_url}/metrics", timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return cls(response.text)

    def value(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples carrying these labels (0 when there are none)."""
        return sum(
            value
            for sample, found, value in self.samples
            if sample == name and all(found.get(k) == v for k, v in labels.items())
        )

    def names(self) -> set[str]:
        return {name for name, _, _ in self.samples}

    def has(self, name: str, **labels: str) -> bool:
        return any(
            sample == name and all(found.get(k) == v for k, v in labels.items())
            for sample, found, _ in self.samples
        )
