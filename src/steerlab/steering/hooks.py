"""The steering hook: add (or ablate) a direction in the residual stream, only inside a `with`.

    from steerlab.steering import SteeringSpec, steer
    with steer(lm, [SteeringSpec(layer=6, vector=d, coef=8.0)]):
        lm.model(**batch)              # block 6's output gets + 8.0 * d at every position
    # outside the block the model is exactly as before (hooks removed in `finally`)

Math happens in float32 and the result is cast back to the model dtype. Several specs may
share a layer; they are applied in the order given. `per_row` gives every row of the batch its
own list of specs (many candidate configs of a search in one forward pass).

Positions: "all" steers every token; "prompt" steers only the tokens of the first forward
pass (the prefill, including the last prompt token, whose output picks the first generated
token); "generated" steers only tokens fed in later with a KV cache (each generated token as it
is fed back). A forward pass counts as prefill when its KV cache is empty or absent, so a plain
forward over a whole text is all "prompt".
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from steerlab.activations import block_output
from steerlab.errors import SteerlabError
from steerlab.models.loading import LoadedModel

MODES = ("add", "ablate")
POSITIONS = ("all", "prompt", "generated")


@dataclass(frozen=True)
class SteeringSpec:
    """One intervention: at block `layer`'s output, add `coef * vector` or ablate `vector`.

    For mode "ablate", `coef` is the fraction of the component along the unit vector that is
    removed (1.0 projects it out entirely, 0.0 changes nothing).
    """

    layer: int
    vector: torch.Tensor  # [hidden]
    coef: float
    mode: str = "add"  # "add" | "ablate"
    positions: str = "all"  # "all" | "prompt" | "generated"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SteerlabError(f"unknown steering mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.positions not in POSITIONS:
            raise SteerlabError(f"unknown steering positions {self.positions!r}; use one of {', '.join(POSITIONS)}")
        if not isinstance(self.vector, torch.Tensor) or self.vector.ndim != 1:
            shape = tuple(self.vector.shape) if isinstance(self.vector, torch.Tensor) else type(self.vector).__name__
            raise SteerlabError(f"SteeringSpec.vector must be a 1-D tensor [hidden], got {shape}")
        if not torch.isfinite(self.vector).all() or not float(self.coef) == float(self.coef):
            raise SteerlabError(f"SteeringSpec at layer {self.layer} has a non-finite vector or coef {self.coef}")

    def describe(self) -> dict:
        """A JSON-ready summary (the vector by its norm only)."""
        return {
            "layer": self.layer,
            "coef": float(self.coef),
            "mode": self.mode,
            "positions": self.positions,
            "vector_norm": float(self.vector.float().norm()),
        }


class _Phase:
    """Whether the current forward pass is the prefill (empty KV cache) or a decode step."""

    def __init__(self) -> None:
        self.prefill = True

    def pre_hook(self, _module, args, kwargs) -> None:
        cache = kwargs.get("past_key_values")
        if cache is None:
            self.prefill = True
        elif hasattr(cache, "get_seq_length"):
            self.prefill = int(cache.get_seq_length()) == 0
        else:  # legacy tuple caches
            self.prefill = len(cache) == 0 or cache[0][0].shape[-2] == 0


class _LayerPlan:
    """Everything applied at one layer, precomputed in float32, per phase ("prompt" / "generated").

    Each step is ("add", matrix [rows|1, hidden], None) or ("ablate", unit [hidden], fraction [rows, 1]);
    a row's k-th spec at this layer is applied in step k, so each row sees its specs in order.
    """

    def __init__(self) -> None:
        self.steps: dict[str, list[tuple[str, torch.Tensor, torch.Tensor | None]]] = {"prompt": [], "generated": []}


def _validate(lm: LoadedModel, spec: SteeringSpec) -> None:
    lm.check_layer(spec.layer)
    if spec.vector.shape[0] != lm.hidden_size:
        raise SteerlabError(
            f"steering vector for layer {spec.layer} has {spec.vector.shape[0]} dims but {lm.name} has hidden size "
            f"{lm.hidden_size}; use a direction extracted from this model"
        )


def _build_plans(lm: LoadedModel, rows: Sequence[Sequence[SteeringSpec]]) -> dict[int, _LayerPlan]:
    """Per layer and phase: an ordered list of ("add", [rows, hidden], None) or ("ablate", unit, fraction [rows, 1])."""
    n_rows = len(rows)
    plans: dict[int, _LayerPlan] = {}
    for row_specs in rows:
        for spec in row_specs:
            _validate(lm, spec)
    layers = sorted({spec.layer for row_specs in rows for spec in row_specs})
    for layer in layers:
        plan = _LayerPlan()
        for phase in ("prompt", "generated"):
            # the k-th spec at this layer of every row is applied together; rows with fewer specs add zeros
            per_row = [[s for s in row_specs if s.layer == layer and s.positions in ("all", phase)] for row_specs in rows]
            depth = max((len(specs) for specs in per_row), default=0)
            for k in range(depth):
                kinds = {specs[k].mode for specs in per_row if len(specs) > k}
                for mode in sorted(kinds):
                    if mode == "add":
                        matrix = torch.zeros(n_rows, lm.hidden_size, dtype=torch.float32)  # [rows, hidden]
                        for r, specs in enumerate(per_row):
                            if len(specs) > k and specs[k].mode == "add":
                                matrix[r] = float(specs[k].coef) * specs[k].vector.detach().float().cpu()
                        if n_rows > 1 and bool((matrix == matrix[0]).all()):
                            matrix = matrix[:1]
                        plan.steps[phase].append(("add", matrix.to(lm.device), None))
                    else:
                        # one ablation step per distinct unit vector
                        groups: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
                        for r, specs in enumerate(per_row):
                            if len(specs) > k and specs[k].mode == "ablate":
                                vector = specs[k].vector.detach().float().cpu()
                                unit = vector / vector.norm().clamp_min(1e-12)
                                key = id(specs[k].vector)
                                if key not in groups:
                                    groups[key] = (unit, torch.zeros(n_rows, 1, dtype=torch.float32))
                                groups[key][1][r, 0] = float(specs[k].coef)
                        for unit, fraction in groups.values():
                            plan.steps[phase].append(("ablate", unit.to(lm.device), fraction.to(lm.device)))
        plans[layer] = plan
    return plans


def _apply(hidden: torch.Tensor, steps: list) -> torch.Tensor:
    """hidden `[batch, pos, hidden]` in any dtype -> steered, same dtype (math in float32)."""
    if not steps:
        return hidden
    steered = hidden.float()
    batch = steered.shape[0]
    for kind, tensor, fraction in steps:
        if kind == "add":
            matrix = tensor if tensor.shape[0] == 1 or tensor.shape[0] == batch else _row_mismatch(tensor, batch)
            steered = steered + matrix[:, None, :]  # [rows|1, 1, hidden]
        else:
            if fraction.shape[0] != batch:
                _row_mismatch(fraction, batch)
            along = steered @ tensor  # [batch, pos]
            steered = steered - fraction[:, :, None] * along[:, :, None] * tensor  # [batch, pos, hidden]
    return steered.to(hidden.dtype)


def _row_mismatch(tensor: torch.Tensor, batch: int):
    raise SteerlabError(
        f"per-row steering was set up for {tensor.shape[0]} rows but the forward pass has batch size {batch}; "
        "pass one spec list per prompt row"
    )


@contextmanager
def steer(
    lm: LoadedModel,
    specs: Sequence[SteeringSpec] | None = None,
    per_row: Sequence[Sequence[SteeringSpec]] | None = None,
) -> Iterator[None]:
    """Within the block, forward passes of `lm` are steered; hooks are removed in `finally`.

    `specs` apply to every row; `per_row[i]` (one list per batch row) applies to row i only,
    after the shared specs. The batch size of every forward pass must then equal len(per_row).
    """
    shared = list(specs or [])
    if per_row is not None:
        rows = [shared + list(row) for row in per_row]
        if not rows:
            raise SteerlabError("per_row is empty; pass one list of SteeringSpec per prompt row")
    else:
        rows = [shared]
    plans = _build_plans(lm, rows)
    phase = _Phase()
    handles = []

    def make_hook(plan: _LayerPlan):
        def hook(_module, _inputs, output):
            steps = plan.steps["prompt" if phase.prefill else "generated"]
            if not steps:
                return None
            hidden = block_output(output)  # [batch, pos, hidden]
            steered = _apply(hidden, steps)
            if isinstance(output, tuple):
                return (steered, *output[1:])
            return steered

        return hook

    try:
        if plans:
            handles.append(lm.model.register_forward_pre_hook(phase.pre_hook, with_kwargs=True))
        blocks = lm.blocks
        for layer, plan in plans.items():
            handles.append(blocks[layer].register_forward_hook(make_hook(plan)))
        yield
    finally:
        for handle in handles:
            handle.remove()
