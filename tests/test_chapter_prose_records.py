"""Numbers that chapters 17, 20 and 21 quote in their prose from a shipped record still are the record's.

The tables above those paragraphs are printed from the records; the prose
repeats a few figures to discuss them. If a record is recomputed, this test
names each sentence that would go stale.
"""
import nbformat
import pytest

from effdl import book
from effdl.precompute import load_record


def _markdown(chapter_id: str, heading: str) -> str:
    chapter = next(c for c in book.load_book().chapters if c.id == chapter_id)
    nb = nbformat.read(chapter.path, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "markdown" and heading in c.source]
    assert len(cells) == 1, f"chapter {chapter_id}: expected one markdown cell with {heading!r}"
    return " ".join(cells[0].split())


def _quoted(text: str, figures: list[str]) -> list[str]:
    return [f for f in figures if f not in text]


def test_chapter_20_quotes_the_sparsity_record():
    rec = load_record("llm_sparsity")
    text = _markdown("20", "## What the record says")
    figures = [f"dense {rec['dense_ppl']:.4f}"]
    for method in ("magnitude", "wanda", "sparsegpt"):
        for pattern in ("50%", "2:4"):
            ppl = rec["results"][method][pattern]
            figures.append(f"{ppl:.4f} (+{100 * (ppl / rec['dense_ppl'] - 1):.0f} %)")
    assert _quoted(text, figures) == []


def test_chapter_21_quotes_the_distillation_record():
    rec = load_record("lm_distill")
    rows = {(r["draft"], r["n_draft"]): r for r in rec["speculation"]["rows"]}
    best = {d: max((r for r in rec["speculation"]["rows"] if r["draft"] == d), key=lambda r: r["measured_speedup"])
            for d in ("plain", "distilled")}
    text = _markdown("21", "Read the two panels separately")
    assert _quoted(text, [f"{rows[('distilled', 4)]['greedy_target_calls_per_token']:.2f} passes per token",
                          f"best measured speed-up is {best['distilled']['measured_speedup']:.2f}×",
                          f"$k$ = {best['distilled']['n_draft']}; plain draft "
                          f"{best['plain']['measured_speedup']:.2f}× at $k$ = {best['plain']['n_draft']}",
                          f"measured {rec['speculation']['cost_ratio']['plain']:.2f} and "
                          f"{rec['speculation']['cost_ratio']['distilled']:.2f}"]) == []
    models = rec["models"]
    text = _markdown("21", "On the first 200 windows of the test split")
    acc = {d: models[d]["test_acceptance_per_position"] for d in ("plain", "distilled")}
    assert _quoted(text, [f"{100 * acc['distilled']['greedy']:.1f}% of the time against the plain draft's "
                          f"{100 * acc['plain']['greedy']:.1f}%",
                          f"{acc['distilled']['sampled']:.3f} against {acc['plain']['sampled']:.3f}",
                          f"{models['distilled']['test_bits_per_byte']:.3f} against "
                          f"{models['plain']['test_bits_per_byte']:.3f} test bits per byte"]) == []


def test_chapter_17_quotes_the_nas_record():
    rec = load_record("nas")
    targets = rec["targets"]
    gap = {t: round(r["test_acc_supernet"] - r["test_acc_alone"], 1) for t, r in targets.items()}
    assert all(g > 0 for g in gap.values())                            # "above", "within one point on all three"
    assert rec["alone"]["within_1pt"]
    text = _markdown("17", "With the sandwich rule and")
    assert _quoted(text, [f"the CPU's choice is {gap['cpu']:.1f} points above",
                          f"the systolic array's choice {gap['systolic']:.1f} points above",
                          f"the energy choice {gap['energy']:.1f} points above"]) == []
    val = [f"{targets[t]['val_acc']:.1f}" for t in ("cpu", "systolic", "energy")]
    test = [f"{targets[t]['test_acc_supernet']:.1f}" for t in ("cpu", "systolic", "energy")]
    assert _quoted(text, [f"{val[0]}, {val[1]} and {val[2]} %", f"({test[0]}, {test[1]} and {test[2]} %)",
                          f"by {rec['calibration_study'][0]['spread_pts']:.2f} points on average"]) == []
    assert all(targets[t]["test_acc_supernet"] < targets[t]["val_acc"] for t in targets)   # "each scores less"
    cpu = rec["searches"]["cpu"]
    ahead = [round(e["best"]["acc"] - r["best"]["acc"], 1) for e, r in zip(cpu["evolution"], cpu["random"])]
    assert sorted(ahead) == [-0.2, 0.0, 0.0]
    assert "on the third, random search is ahead by 0.2 points" in _markdown("17", "tie on two seeds")
    # "the other two choices are each within all three budgets ... 99.0 %, which no sub-network evaluated beats"
    budgets = rec["budgets"]
    for t in ("systolic", "energy"):
        costs = targets[t]["costs"]
        assert costs["cpu_ms"] <= budgets["cpu"] and costs["systolic_us"] <= budgets["systolic"]
        assert costs["energy_uj"] <= budgets["energy"]
    best = max(p["acc"] for p in rec["pool"])
    reach = sum(p["acc"] == best for p in rec["pool"])
    assert targets["systolic"]["val_acc"] == best
    assert f"{best:.1f} %, which no sub-network evaluated beats ({_WORDS[reach]} reach it)" in \
        _markdown("17", "find *a* good")


_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


@pytest.mark.parametrize("figure, present", [("5.6528", True), ("5.6529", False)])
def test_the_check_can_fail(figure, present):
    assert (_quoted(_markdown("20", "## What the record says"), [figure]) == []) is present
