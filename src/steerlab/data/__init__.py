"""Data: contrastive pairs, text sets and the bundled data sets."""

from steerlab.data.pairs import (
    BUNDLED,
    ContrastPair,
    TextItem,
    bundled_path,
    join_text,
    load_pairs,
    load_texts,
    pairs_hash,
    resolve_data_path,
    texts_hash,
)

__all__ = [
    "BUNDLED",
    "ContrastPair",
    "TextItem",
    "bundled_path",
    "join_text",
    "load_pairs",
    "load_texts",
    "pairs_hash",
    "resolve_data_path",
    "texts_hash",
]
