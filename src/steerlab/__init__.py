"""steerlab: extract, audit, steer and play with steering vectors in language models.

    from steerlab import load_model, load_pairs, extract, Direction
    lm = load_model("gemma-3-270m")
    direction = extract(lm, load_pairs("human-values"), method="logistic", layers="all")
"""

__version__ = "0.1.0"

from steerlab.data import ContrastPair, load_pairs, load_texts  # noqa: E402
from steerlab.directions import Direction, extract  # noqa: E402
from steerlab.errors import SteerlabError  # noqa: E402
from steerlab.models import LoadedModel, load_model  # noqa: E402

__all__ = [
    "ContrastPair",
    "Direction",
    "LoadedModel",
    "SteerlabError",
    "__version__",
    "extract",
    "load_model",
    "load_pairs",
    "load_texts",
]
