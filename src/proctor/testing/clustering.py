"""Clustering quality: B-cubed precision and recall, and the baselines signatures are
measured against.

B-cubed (Bagga and Baldwin, 1998) scores every item: its precision is the share
of its cluster that has its label, its recall the share of its label that is in
its cluster; the scores are the means over items. Unlike pairwise counts it
does not let one big cluster dominate, and unlike purity it punishes both
splitting and merging.

The baselines key a failure by its exact text (what a store without triage
deduplicates on) and by its normalised message alone (LUCI Analysis' ``reason``
clustering: the exception's type and message, values masked, no frames).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import NamedTuple

from proctor.triage import normalise_message, parse_failure

__all__ = ["BCubed", "bcubed", "exact_text_key", "message_key"]


class BCubed(NamedTuple):
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def bcubed(labels: Sequence[Hashable], clusters: Sequence[Hashable]) -> BCubed:
    """B-cubed precision and recall of ``clusters`` (one cluster key per item)
    against ``labels`` (the true class of each item)."""
    if len(labels) != len(clusters):
        raise ValueError(f"{len(labels)} labels for {len(clusters)} cluster keys")
    if not labels:
        return BCubed(1.0, 1.0)
    both = Counter(zip(labels, clusters, strict=True))
    per_label = Counter(labels)
    per_cluster = Counter(clusters)
    precision = recall = 0.0
    for label, cluster in zip(labels, clusters, strict=True):
        shared = both[label, cluster]
        precision += shared / per_cluster[cluster]
        recall += shared / per_label[label]
    return BCubed(precision / len(labels), recall / len(labels))


def exact_text_key(text: str) -> str:
    """Baseline: the failure's text, exactly."""
    return text


def message_key(text: str) -> str:
    """Baseline: the last exception's type and message, normalised (no frames)."""
    parsed = parse_failure(text)
    last = parsed.chain[-1] if parsed.chain else None
    if last is None:
        return normalise_message(text.strip())
    kind = last.type.rsplit(".", 1)[-1]
    return normalise_message(f"{kind}: {last.message.strip()}")
