"""Scrape a Prometheus endpoint and read samples by name and labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def scrape(url: str, token: str | None = None) -> Samples:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=5) as client:
        reply = await client.get(url, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4"), reply.headers
    return parse(reply.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample's value, or None when there is no such sample."""
    return samples.get((name, frozenset(labels.items())))
