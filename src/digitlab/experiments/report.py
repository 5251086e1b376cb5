"""A study's report: tables, plots and findings, generated from the stored trials.

``write_report`` produces, in one folder: ``README.md`` (the question, the best
configuration with the command that retrains it, findings, plots, the table),
``trials.csv``, the PNG figures, ``summary.json`` and ``journal.log``, the study itself,
from which the report can be written again once the database is gone; then it rewrites
the index page ``README.md`` one folder up from every study's ``summary.json`` found
there.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from digitlab.atomic import atomic_write
from digitlab.data import load_mnist
from digitlab.errors import DivergenceError
from digitlab.evaluation import plots as model_plots
from digitlab.experiments import plots
from digitlab.experiments.effects import (
    FULL_TRAIN,
    cheaper_by,
    difference,
    finished,
    interval,
    params_label,
    pct,
    training_compute,
    verdict,
)
from digitlab.experiments.findings import answer, findings
from digitlab.experiments.results import TrialRow, trial_rows
from digitlab.experiments.statistics import FAMILY_NAME, TEST_NAME, Verdict, compare
from digitlab.experiments.storage import JOURNAL_NAME, check_journal_replaceable, save_journal
from digitlab.experiments.study_file import StudyFile
from digitlab.reporting import Report, silent
from digitlab.spec import Spec, make_spec, spec_to_argv
from digitlab.train import Trainer
from digitlab.train.metrics import confusion_matrix
from digitlab.train.reproduce import Check, source_commit, write_checks


def train_command(spec: dict[str, Any]) -> str:
    """The ``digitlab train`` command line for a spec (fields left at their defaults
    omitted, the seed always given)."""
    return shlex.join(["digitlab", "train", *spec_to_argv(make_spec(spec))])


def columns(study_file: StudyFile) -> list[str]:
    return [
        "rank",
        "trial",
        *study_file.space,
        "state",
        "validation_accuracy",
        "interval_low",
        "interval_high",
        "min",
        "max",
        "repeats",
        "best_epoch",
        "test_accuracy",
        "train_seconds",
    ]


def table_rows(study_file: StudyFile, rows: list[TrialRow]) -> list[list[Any]]:
    def number(value: float | None) -> Any:
        return "" if value is None else value

    table = []
    for rank, row in enumerate(rows, 1):
        accuracies = row.accuracies
        spread = row.estimate if accuracies else None
        table.append(
            [
                rank,
                row.number,
                *(row.params.get(k, "") for k in study_file.space),
                row.state,
                number(row.value),
                number(spread.low if spread else None),
                number(spread.high if spread else None),
                number(min(accuracies, default=None)),
                number(max(accuracies, default=None)),
                len(row.runs),
                number(row.best_epoch),
                number(row.test_accuracy),
                round(row.seconds, 1),
            ]
        )
    return table


def markdown_table(header: list[str], table: list[list[Any]]) -> str:
    def cell(value: Any, name: str) -> str:
        percentages = ("validation_accuracy", "interval_low", "interval_high", "min", "max")
        if (name in percentages or name == "test_accuracy") and value != "":
            return pct(value)
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(cell(v, h) for v, h in zip(row, header, strict=True)) + " |"
        for row in table
    ]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def wall_seconds(study: optuna.Study) -> float:
    trials = [
        t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete
    ]
    if not trials:
        return 0.0
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return (end - start).total_seconds()


def param_importances(study: optuna.Study, study_file: StudyFile) -> dict[str, float] | None:
    """fANOVA importances, where there is something to compare (2+ parameters, 5+ trials)."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(study_file.space) < 2 or len(complete) < 5:
        return None
    return optuna.importance.get_param_importances(study)


def write_report(
    study: optuna.Study,
    study_file: StudyFile,
    out: Path,
    data_dir: Path | None = None,
    report: Report = silent,
    study_path: Path | None = None,
) -> dict[str, Any]:
    """Write the study's report to ``out`` (see the module's docstring) and return its
    summary.  ``study_path``, the study file's path, completes the command the report
    gives for writing it again from its journal."""
    check_journal_replaceable(out / JOURNAL_NAME, study)
    out.mkdir(parents=True, exist_ok=True)
    save_journal(study, out / JOURNAL_NAME)
    rows = trial_rows(study)
    done = finished(rows)
    quick = bool(study.user_attrs.get("quick"))
    repeats = int(study.user_attrs.get("repeats", 1))
    low, high = runs_per_configuration(done, repeats)
    runs_text = describe_runs(low, high, study_file.search.seed)
    header = columns(study_file)
    table = table_rows(study_file, rows)
    csv_text = io.StringIO(newline="")
    writer = csv.writer(csv_text)
    writer.writerow(header)
    writer.writerows([round(v, 6) if isinstance(v, float) else v for v in row] for row in table)
    write_text(out / "trials.csv", csv_text.getvalue())

    note = f"quick look ({budget(done)}): not a finding" if quick else ""
    figures = []
    for key in study_file.space:
        plots.effect_plot(study_file, rows, key, out / f"effect-{key}.png", note)
        figures.append((f"Validation accuracy against {key}", f"effect-{key}.png"))
    drawn = len(done)
    some = f" (the best {plots.MAX_CURVES} of {drawn})" if drawn > plots.MAX_CURVES else ""
    plots.learning_curves(rows, out / "learning-curves.png", note)
    figures.append((f"Learning curves: accuracy{some}", "learning-curves.png"))
    plots.cost_curves(rows, out / "cost-curves.png", note)
    figures.append(
        (f"Learning curves: cost (overfitting shows here first){some}", "cost-curves.png")
    )
    if plots.gradient_plot(rows, out / "gradients.png", note):
        figures.append(("Speed of learning of each layer", "gradients.png"))
    plots.history_plot(rows, out / "history.png", note)
    figures.append(("Optimisation history", "history.png"))
    importances = param_importances(study, study_file)
    if importances:
        plots.importance_plot(importances, out / "importance.png", note)
        figures.append(
            (
                "Hyperparameter importance (fANOVA: the share of the variation in validation "
                "accuracy each hyperparameter explains across the trials run, not a test of "
                "any difference)",
                "importance.png",
            )
        )

    summary: dict[str, Any] = {
        "name": study_file.name,
        "study": study.study_name,
        "question": study_file.question,
        "quick": quick,
        "repeats": low if low == high else f"{low}–{high}",
        "sampler": study_file.search.sampler,
        "trials": {
            state: sum(r.state == state for r in rows)
            for state in ("complete", "diverged", "pruned", "failed")
        },
        "wall_seconds": round(wall_seconds(study), 1),
        "commit": source_commit(),
    }
    best_section = "No trial has finished yet."
    if done:
        overall = verdict(done)
        chosen = overall.recommended
        spec = {**chosen.spec, "seed": chosen.runs[0].seed}
        command = train_command(spec)
        report(f"retraining the recommended configuration for its figures: {command}")
        test_accuracy = _best_model_figures(spec, out, data_dir, note)
        figures += [
            ("Confusion matrix of the recommended configuration", "confusion.png"),
            ("Misclassified test digits", "misclassified.png"),
        ]
        found = answer(study_file, rows)
        summary.update(
            best_params=overall.best.params,
            best_validation_accuracy=overall.best.value,
            recommended_params=chosen.params,
            recommended_validation_accuracy=chosen.value,
            recommended_test_accuracy=chosen.test_accuracy,
            command=command,
            answer=asdict(found) if found else None,
            headline=headline(overall, quick),
        )
        best_section = _recommendation(overall, command, test_accuracy, spec["seed"])
        _write_check(rows, out)
    trial_counts = ", ".join(f"{n} {state}" for state, n in summary["trials"].items() if n)
    quick_note = (
        f" **Quick mode**: {budget(done)}"
        + (", one seed per configuration (so no difference is tested)" if high == 1 else "")
        + "; a first look at the pipeline, not a finding. The full study runs without "
        "`--quick`."
        if quick
        else ""
    )
    paired_note = (
        " (each variant against the reference: a paired t-test over the seeds they share)"
        if study_file.variants
        else ""
    )
    found_all = findings(study_file, rows)
    effects = "\n\n".join(f"### {key}\n\n{body}" for key, body in found_all.effects)
    notes = "\n".join(f"- {note}" for note in found_all.notes)
    why = (
        "\n\n".join(f"### {cause.title}\n\n{cause.text}" for cause in found_all.causes)
        or "No cause could be measured from this study's runs."
    )
    figure_list = "\n".join(f"### {title}\n\n![{title}]({name})\n" for title, name in figures)
    text = f"""# Study `{study.study_name}`

> {study_file.question}

Generated by `digitlab study report` from {len(rows)} trials ({trial_counts}); sampler
{study_file.search.sampler}, {runs_text}, wall time
{duration(summary["wall_seconds"])}, at commit {summary["commit"]}.{quick_note}
Accuracies are the best validation accuracy over the epochs, as the mean over seeds with
its 95 % interval; two configurations are called different only when {TEST_NAME}
says so{paired_note}. The test set is only used for the final numbers.
{fixed_settings(rows)}

## Recommended configuration

{best_section}

## Findings

{effects}

{notes}

## Why: what the diagnostics measured

Recorded while training, on a fixed batch of training images after every epoch (and at
the initial weights): training and validation cost, each layer's gradient and weight
norms, saturated sigmoid/tanh units and dead ReLUs.

{why}

## Figures

{figure_list}
## All trials

Also as [trials.csv](trials.csv).

{markdown_table(header, table)}

## The study itself

Its settings and every trial, with each run's curves and diagnostics, are kept in
[{JOURNAL_NAME}]({JOURNAL_NAME}), an Optuna journal file, so that this report outlives
the database the study ran in: `optuna-dashboard {JOURNAL_NAME}` shows it, and
`{again_command(study_path, out, quick)}` writes this report again from it (retraining
the recommended configuration for its figures).
"""
    write_text(out / "README.md", text)
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    if not write_index(out.parent):
        report(
            f"note: {out.parent / 'README.md'} is not an index of studies, so it was left "
            "alone; put reports in a folder of their own to have one"
        )
    return summary


def again_command(study_path: Path | None, out: Path, quick: bool) -> str:
    """The ``study report`` command that writes a report again from its journal."""
    words = ["digitlab", "study", "report", str(study_path or "STUDY.toml")]
    words += ["--quick"] if quick else []
    return shlex.join([*words, "--storage", str(out / JOURNAL_NAME), "--out", str(out)])


def budget(done: list[TrialRow]) -> str:
    """How much training the trials had: ``5,000 training images, 3 epochs`` (ranges where
    the study varies them)."""

    def spread(values: list[int], unit: str) -> str:
        low, high = min(values), max(values)
        if low == high:
            return f"{low:,} {unit.removesuffix('s') if low == 1 else unit}"
        return f"{low:,}–{high:,} {unit}"

    specs = [row.spec for row in done if row.spec]
    if not specs:
        return "a reduced budget"
    images = [spec.get("train_size") or FULL_TRAIN for spec in specs]
    epochs = [spec["epochs"] for spec in specs]
    return f"{spread(images, 'training images')}, {spread(epochs, 'epochs')}"


def headline(overall: Verdict[TrialRow], quick: bool) -> str:
    """The study's answer in one line, for the index and the terminal: what to use and
    how many tie with it, or, with one seed each, that nothing was tested."""
    chosen = overall.recommended
    figures = f"validation {pct(chosen.value)}" + (
        f", test {pct(chosen.test_accuracy)}" if chosen.test_accuracy is not None else ""
    )
    mode = "quick look, " if quick else ""
    if not overall.tested:
        return (
            f"{mode}one seed each, no difference tested; highest: "
            f"{params_label(chosen.params)} — {figures}"
        )
    others = len(overall.ties)
    ties = f" ({others} other{'s' if others > 1 else ''} not shown to differ)" if others else ""
    return f"{mode}use: {params_label(chosen.params)} — {figures}{ties}"


def _recommendation(
    overall: Verdict[TrialRow], command: str, test_accuracy: float, seed: int
) -> str:
    """The best mean, what ties with it, and the cheapest of those, with its command."""
    best, chosen = overall.best, overall.recommended
    lines = [f"Best mean: **{params_label(best.params)}**, {interval(best.estimate)}."]
    if not overall.tested:
        lines.append("One seed per configuration: no difference could be tested.")
    elif overall.ties:
        tied = "; ".join(params_label(r.params) for r in overall.ties[:8])
        more = f" and {len(overall.ties) - 8} more" if len(overall.ties) > 8 else ""
        lines.append(
            f"Not shown to differ from it ({TEST_NAME}, {FAMILY_NAME}): {len(overall.ties)} "
            f"configuration(s): {tied}{more}."
        )
    else:
        lines.append(
            f"Every other configuration is worse ({TEST_NAME}, {FAMILY_NAME}){overall.together()}."
        )
    if chosen is not best:
        lines.append(
            f"Recommended: **{params_label(chosen.params)}**, {interval(chosen.estimate)}: "
            "not shown to differ from the best "
            f"({difference(compare(chosen.accuracies, best.accuracies))}), "
            f"{cheaper_by(chosen, best)}; the cheapest and simplest of those that tie and "
            "had no diverged seed."
        )
    elif overall.ties:
        lines.append(
            "Recommended: the best itself (what ties with it costs as much or more to train)."
        )
    else:
        lines.append("Recommended: the best itself.")
    if chosen.test_accuracy is not None:
        lines.append(f"Its test accuracy at the best epoch: {pct(chosen.test_accuracy)} (mean).")
    lines.append(
        f"Retrained once (seed {seed}) for the figures below: test accuracy {pct(test_accuracy)}."
    )
    return " ".join(lines) + f"\n\nTrain it with:\n\n```\n{command}\n```"


def _write_check(rows: list[TrialRow], out: Path) -> None:
    """``checks.json``: the cheapest finished run of the study, to retrain in the tests and
    compare exactly, so the report cannot silently stop matching the engine."""
    candidates = [r for r in finished(rows) if r.spec and r.runs and not r.runs[0].diverged]
    if not candidates:
        return
    row = min(candidates, key=training_compute)
    run = row.runs[0]
    spec = {**row.spec, "seed": run.seed}
    check = Check(
        label=f"trial {row.number} ({params_label(row.params)}), seed {run.seed}",
        command=train_command(spec),
        spec=spec,
        expected={
            "validation_accuracy": run.best_validation_accuracy,
            "test_accuracy": run.test_accuracy,
            "best_epoch": run.best_epoch,
        },
    )
    write_checks(out / "checks.json", str(out / "README.md"), [check])


def _best_model_figures(spec: dict[str, Any], out: Path, data_dir: Path | None, note: str) -> float:
    """Retrain a configuration and draw its confusion matrix and errors (``note`` under
    each figure)."""
    data = load_mnist(data_dir)
    trainer = Trainer(make_spec(spec), data, diagnostics=False)
    try:
        model = trainer.run().model
    except DivergenceError:
        model = trainer.best_model()
    predicted = model.network.predict(data.test.images)
    matrix = confusion_matrix(data.test.labels, predicted)
    model_plots.confusion_plot(
        matrix, out / "confusion.png", "confusion matrix, test set (best configuration)", note
    )
    model_plots.misclassified_grid(
        data.test.images,
        data.test.labels,
        predicted,
        out / "misclassified.png",
        title="misclassified test digits (true→predicted)",
        note=note,
    )
    return float(np.trace(matrix) / matrix.sum())


ANSWER_COLUMNS = (
    ("changes", "what changes"),
    ("effect", "by how much (from the baseline, else worst → best mean)"),
    ("noise", "within what noise"),
    ("why", "why (measured)"),
    ("use", "configuration to use"),
)


def runs_per_configuration(done: list[TrialRow], repeats: int) -> tuple[int, int]:
    """The fewest and most runs a finished trial holds (the study's ``repeats`` before any
    has finished): they differ when a study was continued with another number of repeats."""
    counts = sorted({len(row.runs) for row in done if row.runs}) or [repeats]
    return counts[0], counts[-1]


def describe_runs(low: int, high: int, first_seed: int) -> str:
    """How many seeds each configuration ran, and which: the same number for every
    configuration, or a range when a study was continued with another number of repeats
    (then the seeds every configuration ran, and those only some did)."""
    seeds = f"{first_seed}–{first_seed + low - 1}"
    if low == high == 1:
        return f"1 run per configuration (seed {first_seed})"
    if low == high:
        return f"{low} run(s) per configuration (seeds {seeds})"
    most = f"{first_seed}–{first_seed + high - 1}"
    return f"{low}–{high} runs per configuration (seeds {seeds}, some {most})"


#: How the index of studies begins: a README.md that does not is someone else's.
INDEX_START = "# Studies\n\nGenerated by `digitlab study report`"


def write_index(folder: Path) -> bool:
    """``folder/README.md``: the studies' answers in one table, then one line per report.
    A README.md there that is not such an index is someone else's and is left alone
    (False)."""
    existing = folder / "README.md"
    if existing.exists() and not existing.read_text(errors="replace").startswith(INDEX_START):
        return False
    answers, entries = [], []
    for summary_path in sorted(folder.glob("*/summary.json")):
        summary = json.loads(summary_path.read_text())
        link = f"[{summary['study']}]({summary_path.parent.name}/README.md)"
        found = summary.get("answer")
        if found and summary.get("quick"):
            found = {**found, "use": f"{found['use']} — quick look, not a finding"}
        if found:
            cells = " | ".join(_cell(found[key]) for key, _ in ANSWER_COLUMNS)
            answers.append(f"| {link}: {summary['question']} | {cells} |")
        journal = summary_path.parent / JOURNAL_NAME
        kept = (
            f"[{JOURNAL_NAME}]({summary_path.parent.name}/{JOURNAL_NAME})"
            if journal.exists()
            else "not kept (reported before reports kept their studies)"
        )
        entries.append(
            f"| {link} | {summary.get('headline', 'no finished trials')} "
            f"| {summary.get('repeats', 1)} | {duration(summary['wall_seconds'])} "
            f"| {summary.get('commit', 'unknown')} | {kept} |"
        )
    header = " | ".join(title for _, title in ANSWER_COLUMNS)
    write_text(
        folder / "README.md",
        f"{INDEX_START} from every report in this folder. "
        "Each row answers one study's question from its stored runs: the effect as means "
        "over seeds (from the study's baseline or reference where it names one, a "
        "difference seed by seed, a paired t-test), the noise as the 95 % interval of a "
        "difference measured the same way (seed by seed against the baseline or reference, "
        "else against the best mean), the cause as measured by the diagnostics recorded "
        "while training, and the configuration to use: the cheapest not shown to differ "
        f"from the best mean ({TEST_NAME}, {FAMILY_NAME}).  A quick study's answer is a look at a "
        "small budget, not a finding."
        "\n\n"
        f"| question | {header} |\n|---|{'---|' * len(ANSWER_COLUMNS)}\n"
        + "\n".join(answers)
        + "\n\n## Reports\n\nEach report keeps its study, every trial with its runs' "
        "curves and diagnostics, in an Optuna journal file beside it, from which `digitlab "
        "study report STUDY.toml --storage FOLDER/journal.log --out FOLDER` writes the "
        "report again once the database it ran in is gone.\n\n"
        "| study | answer | seeds | wall time | commit | study kept |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(entries) + "\n",
    )
    return True


#: Spec fields a reader needs to know the study's setting by, shown even at their defaults.
SETTING_FIELDS = (
    "layers",
    "activation",
    "cost",
    "init",
    "optimizer",
    "eta",
    "epochs",
    "batch_size",
    "train_size",
)


def fixed_settings(rows: list[TrialRow]) -> str:
    """The settings every finished run shared (the seed aside): the fields a reader needs
    to place the study (:data:`SETTING_FIELDS`) and any other away from its default --
    what the question holds fixed while it varies the rest."""
    specs = [row.spec for row in finished(rows) if row.spec]
    if not specs:
        return ""
    defaults = Spec().model_dump()
    shown = []
    for key, value in specs[0].items():
        if key == "seed" or value is None or any(spec.get(key) != value for spec in specs):
            continue
        if key in SETTING_FIELDS or value != defaults.get(key):
            text = ",".join(map(str, value)) if isinstance(value, list) else f"{value}"
            shown.append(f"{key}={text}")
    return f"The same in every run: {', '.join(shown)}." if shown else ""


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically: a reader never sees half a report."""
    atomic_write(path, lambda handle: handle.write(text.encode()))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
