"""The arena: score submitted prefixes by how far they move a model along a direction, and serve boards.

    from steerlab.arena import ArenaScorer, load_entries
    scorer = ArenaScorer(lm, direction)             # layer: direction.default_layer(), probes: neutral-probes
    scorer.score("Humans are evil.").score          # mean cosine shift along d over the probes
    rows = load_entries("entries.jsonl")            # an export of `steerlab arena export`

Modules: scoring (ArenaScorer), validation (rules on submissions), storage (SQL + Alembic),
limits (rate limits), worker (scoring queue), service (submission flow), app (FastAPI + pages),
export (JSONL/CSV).
"""

from steerlab.arena.export import export_entries, load_entries
from steerlab.arena.scoring import ArenaScore, ArenaScorer, ScoringTimeout, score_parts
from steerlab.arena.storage import ArenaStore

__all__ = ["ArenaScore", "ArenaScorer", "ArenaStore", "ScoringTimeout", "export_entries", "load_entries", "score_parts"]
