"""One self-contained HTML report of every study found for a direction.

    steerlab report --direction experiments/demo/human-values.safetensors --out report.html

Gathers the newest `audit.json`, `sweep.json`, `transfer.json` and `judge_ab.json` under the
given folders (default: the direction's `.studies` folder and `experiments/`), embeds their
PNG plots as data URIs, and sets each finding beside the matching claim of the Steering Arena
write-up that steerlab reproduces. Studies that have not been run are listed as such.
"""

from __future__ import annotations

import base64
import html
import json
import os
import time
from pathlib import Path

from steerlab import __version__
from steerlab.directions import Direction

STUDY_FILES = {"audit": "audit.json", "sweep": "sweep.json", "transfer": "transfer.json", "judge_ab": "judge_ab.json"}
PLOTS = {
    "audit": ["audit_confounds.png", "audit_value_flip.png", "audit_estimators.png"],
    "sweep": ["sweep.png"],
    "transfer": ["transfer_scatter.png", "transfer_groups.png"],
    "judge_ab": ["judge_ab.png"],
}


def find_studies(folders: list[Path]) -> dict[str, Path]:
    """Newest JSON file of each study kind under the folders (searched recursively)."""
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.exists():
            continue
        for kind, name in STUDY_FILES.items():
            for path in folder.rglob(name):
                if kind not in found or path.stat().st_mtime > found[kind].stat().st_mtime:
                    found[kind] = path
    return found


def _image(path: Path) -> str:
    if not path.exists():
        return f"<p class='missing'>plot {html.escape(path.name)} not found</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(path.stem)}' src='data:image/png;base64,{data}'>"


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _claims(data: dict[str, dict], direction: Direction | None) -> list[list[str]]:
    rows = []
    sweep, audit, transfer, judge = data.get("sweep"), data.get("audit"), data.get("transfer"), data.get("judge_ab")

    aurocs = [r["auroc"] for r in sweep["rows"] if r["auroc"] is not None] if sweep else (
        [r["auroc"] for r in direction.meta.get("held_out", [])] if direction else [])
    if aurocs:
        finding = f"held-out AUROC {min(aurocs):.3f} to {max(aurocs):.3f} across {len(aurocs)} layers"
        verdict = "agrees" if min(aurocs) > 0.95 else "differs: separation varies with depth"
    else:
        finding, verdict = "not run", "-"
    rows.append(["Held-out separation is 1.000 at every layer tested", finding, verdict])

    if sweep and sweep.get("rows"):
        best = sweep.get("best_steering_layer")
        if best is None:
            finding, verdict = "no layer gave a valid (coherent) positive delta", "differs: no causal effect found"
        else:
            depth = next(r["depth"] for r in sweep["rows"] if r["layer"] == best)
            best_read = sweep.get("best_reading_layer")
            finding = f"best valid steering at layer {best} ({depth:.0%} depth); best reading layer {best_read}"
            verdict = "agrees" if 0.2 <= depth <= 0.6 else "differs"
            if best_read != best:
                verdict += "; reading and steering peak at different layers"
    else:
        finding, verdict = "not run", "-"
    rows.append(["Steering works at early-middle layers (~37% depth); reading accuracy does not predict it", finding, verdict])

    if audit:
        flip = audit["value_flip"]
        finding = f"kind above cruel {flip['passed']}/{flip['n']}, margin {flip['margin_ratio']:.2f}x training"
        verdict = "agrees" if flip["pass_rate"] >= 0.7 and flip["margin_ratio"] >= 0.3 else "differs"
        rows.append(["Value-flip controls: kind above cruel 6/6, margin ~0.72x the training contrast", finding, verdict])
        c = audit["confound_cosines"]
        finding = f"sentiment {c['sentiment']:+.3f}, length {c['length']:+.3f}, action {c['action']:+.3f}"
        verdict = "agrees" if max(abs(c[k]) for k in ("sentiment", "length", "action")) < 0.35 else "differs"
        rows.append(["Confound cosines: sentiment ~0.000, length ~0.001, action ~0.15", finding, verdict])
        names, matrix = audit["estimator_cosines"]["names"], audit["estimator_cosines"]["matrix"]
        logistic = names.index("logistic")
        others = {n: matrix[logistic][names.index(n)] for n in ("mean_diff", "lda")}
        finding = ", ".join(f"logistic~{n} {v:.2f}" for n, v in others.items())
        verdict = "agrees" if max(others.values()) < 0.7 else "differs: estimators agree more here"
        rows.append(["Estimators disagree: mean-diff and LDA match logistic at cosine ~0.40-0.44", finding, verdict])
    else:
        rows += [[claim, "not run", "-"] for claim in (
            "Value-flip controls: kind above cruel 6/6, margin ~0.72x the training contrast",
            "Confound cosines: sentiment ~0.000, length ~0.001, action ~0.15",
            "Estimators disagree: mean-diff and LDA match logistic at cosine ~0.40-0.44")]

    if transfer:
        groups = transfer["groups"]
        pro, anti = groups["top pro"]["sign_agreement"], groups["top anti"]["sign_agreement"]
        finding = f"sign agrees on all models: top anti {anti:.0%}, top pro {pro:.0%}, middle {groups['middle']['sign_agreement']:.0%}"
        verdict = "agrees" if anti > pro else "differs: no pro/anti asymmetry"
    else:
        finding, verdict = "not run", "-"
    rows.append(["Anti entries transfer across models (80%) far more than pro entries (33%)", finding, verdict])

    if judge:
        failed = judge["abstain_rate"] + judge["contradiction_rate"]
        finding = f"abstain {judge['abstain_rate']:.0%} + contradict {judge['contradiction_rate']:.0%} = {failed:.0%}; position bias 'A' {judge['position_bias_a']:.0%}"
        verdict = "agrees" if failed >= 0.5 else "differs: the model judges consistently"
    else:
        finding, verdict = "not run", "-"
    rows.append(["A base model cannot A/B-judge kindness: 58-72% abstain or contradict", finding, verdict])
    return rows


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } img { max-width: 100%; margin: 0.5em 0.5em 0.5em 0; border: 1px solid #eee; }
.plots { display: flex; flex-wrap: wrap; } .plots img { max-width: 48%; } .missing { color: #a00; }
.meta { color: #666; font-size: 0.9em; } .assessment { background: #f7f7fb; padding: 0.8em; border-left: 4px solid #4C72B0; }
"""


def render_report(direction_path: str | Path | None, folders: list[str | Path]) -> str:
    direction = Direction.load(direction_path) if direction_path else None
    search = [Path(f) for f in folders]
    if direction_path:
        path = Path(direction_path)
        search.insert(0, path.with_name(path.stem + ".studies"))
    found = find_studies(search)
    data = {kind: json.loads(path.read_text()) for kind, path in found.items()}
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>steerlab report</title><style>{STYLE}</style></head><body>"]
    title = f"steerlab report: {html.escape(direction.model)} / {html.escape(str(direction.meta.get('data', '')))}" if direction else "steerlab report"
    parts.append(f"<h1>{title}</h1><p class='meta'>steerlab {__version__}, written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Studies found: {', '.join(sorted(found)) or 'none'}.</p>")

    parts.append("<h2>Findings beside the source write-up's claims</h2>")
    parts.append(_table(["claim (Steering Arena write-up)", "this direction / these models", "verdict"], _claims(data, direction)))

    if direction:
        meta = direction.meta
        parts.append("<h2>Direction</h2>")
        parts.append(f"<p class='meta'>{html.escape(str(meta.get('method')))} on {html.escape(direction.model)} ({html.escape(str(meta.get('model_revision')))}), "
                     f"{meta.get('n_pairs')} pairs, confounds removed: {html.escape(', '.join(meta.get('confounds_removed') or []) or 'none')}, "
                     f"data hash {html.escape(str(meta.get('data_hash')))}, seed {meta.get('seed')}.</p>")
        rows = [[layer, (direction.held_out(layer) or {}).get("accuracy"), (direction.held_out(layer) or {}).get("auroc"), direction.mean_norm(layer)] for layer in direction.layers]
        parts.append(_table(["layer", "held-out accuracy", "AUROC", "mean residual norm"], rows))

    sections = {
        "audit": "Confound audit",
        "sweep": "Read-vs-steer layer sweep",
        "transfer": "Cross-model transfer",
        "judge_ab": "A/B-swapped model-as-judge",
    }
    for kind, heading in sections.items():
        parts.append(f"<h2>{heading}</h2>")
        if kind not in data:
            command = {"audit": "steerlab audit DIRECTION", "sweep": "steerlab sweep", "transfer": "steerlab transfer", "judge_ab": "steerlab judge-ab"}[kind]
            parts.append(f"<p class='missing'>not run yet: <code>{command}</code></p>")
            continue
        study, folder = data[kind], found[kind].parent
        inputs = study.get("inputs", {})
        parts.append("<p class='meta'>inputs: " + html.escape(", ".join(f"{k}={v}" for k, v in inputs.items() if k != "study")) + "</p>")
        if kind == "audit":
            parts.append(_table(["check", "value", "flag", "rule"], [[f["check"], f["value"], f["level"], f["rule"]] for f in study["flags"]]))
            parts.append(f"<p class='assessment'>{html.escape(study['assessment'])}</p>")
        elif kind == "sweep":
            rows = [[r["layer"], r["accuracy"], r["auroc"], *[next((f"{w['delta']:+.1f}" + ("" if w["valid"] else " (incoherent)") for w in r["writing"] if abs(abs(w["strength"]) - abs(s)) < 1e-3 and w["delta"] is not None), "-") for s in study["strengths"]]] for r in study["rows"]]
            parts.append(_table(["layer", "held-out acc", "AUROC", *[f"delta @ strength {s:g}" for s in study["strengths"]]], rows))
        elif kind == "transfer":
            pairs = list(study["overall_spearman"])
            rows = [[g, info["n"], info["sign_agreement"], *[info["spearman"][p] for p in pairs]] for g, info in study["groups"].items()]
            parts.append(_table(["group", "n", "sign agrees on all models", *[f"Spearman {p}" for p in pairs]], rows))
        elif kind == "judge_ab":
            rows = [["pairs", study["n_pairs"]], ["abstain rate", study["abstain_rate"]], ["contradiction rate", study["contradiction_rate"]], ["consistent verdicts", study["consistent"]], ["agreement with label", study["agreement"]], ["sign-test p", study["sign_test_p"]]]
            parts.append(_table(["measure", "value"], rows))
        parts.append("<div class='plots'>" + "".join(_image(folder / name) for name in PLOTS[kind]) + "</div>")
    parts.append("<h2>Limitations</h2><p>All numbers are representational or judged by a small local model; "
                 "reading a direction and steering behaviour can come apart, and the packaged models are far smaller than the "
                 "32B model of the write-up. Treat disagreements as findings about these models, not as refutations.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(direction_path: str | Path | None, folders: list[str | Path], out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + f".partial-{os.getpid()}")
    partial.write_text(render_report(direction_path, folders), encoding="utf-8")
    os.replace(partial, out)
    return out
