"""A study's report: tables, plots and findings, generated from the stored trials.

``write_report`` produces, in one folder: ``README.md`` (the question, the best
configuration with the command that retrains it, findings, plots, the table),
``trials.csv``, the PNG figures and ``summary.json``; then it rewrites the index page
``README.md`` one folder up from every study's ``summary.json`` found there.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from digitlab.data import load_mnist
from digitlab.errors import DivergenceError
from digitlab.experiments import plots
from digitlab.experiments.findings import findings, finished, params_label, pct
from digitlab.experiments.results import TrialRow, trial_rows
from digitlab.experiments.study_file import StudyFile
from digitlab.spec import Spec, make_spec
from digitlab.train import Trainer
from digitlab.train.metrics import confusion_matrix

Report = Callable[[str], None]


def train_command(spec: dict[str, Any]) -> str:
    """The ``digitlab train`` command line for a spec (fields left at defaults omitted)."""
    defaults = Spec().model_dump()
    parts = ["digitlab train"]
    for key, value in spec.items():
        if value == defaults[key] or value is None:
            continue
        text = (
            ",".join(map(str, value))
            if isinstance(value, list)
            else f"{value:g}"
            if isinstance(value, float)
            else value
        )
        parts.append(f"--{key.replace('_', '-')} {text}")
    return " ".join(parts)


def columns(study_file: StudyFile) -> list[str]:
    return [
        "rank",
        "trial",
        *study_file.space,
        "state",
        "validation_accuracy",
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
        table.append(
            [
                rank,
                row.number,
                *(row.params.get(k, "") for k in study_file.space),
                row.state,
                number(row.value),
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
        if name in ("validation_accuracy", "min", "max", "test_accuracy") and value != "":
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
    report: Report = lambda _: None,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study)
    done = finished(rows)
    quick = bool(study.user_attrs.get("quick"))
    header = columns(study_file)
    table = table_rows(study_file, rows)
    with open(out / "trials.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([round(v, 6) if isinstance(v, float) else v for v in row] for row in table)

    figures = []
    for key in study_file.space:
        plots.effect_plot(study_file, rows, key, out / f"effect-{key}.png")
        figures.append((f"Validation accuracy against {key}", f"effect-{key}.png"))
    plots.learning_curves(rows, out / "learning-curves.png")
    figures.append(("Learning curves", "learning-curves.png"))
    plots.history_plot(rows, out / "history.png")
    figures.append(("Optimisation history", "history.png"))
    importances = param_importances(study, study_file)
    if importances:
        plots.importance_plot(importances, out / "importance.png")
        figures.append(("Hyperparameter importance", "importance.png"))

    summary: dict[str, Any] = {
        "name": study_file.name,
        "study": study.study_name,
        "question": study_file.question,
        "quick": quick,
        "sampler": study_file.search.sampler,
        "trials": {
            state: sum(r.state == state for r in rows)
            for state in ("complete", "diverged", "pruned", "failed")
        },
        "wall_seconds": round(wall_seconds(study), 1),
    }
    best_section = "No trial has finished yet."
    if done:
        best = done[0]
        command = train_command(best.spec) + f" --seed {study_file.search.seed}"
        report(f"retraining the best configuration for the confusion matrix: {command}")
        test_accuracy = _best_model_figures(best, out, data_dir)
        figures += [
            ("Confusion matrix of the best configuration", "confusion.png"),
            ("Misclassified test digits", "misclassified.png"),
        ]
        summary.update(
            best_params=best.params,
            best_validation_accuracy=best.value,
            best_test_accuracy=best.test_accuracy,
            command=command,
            headline=f"best: {params_label(best.params)} — validation {pct(best.value)}"
            + (f", test {pct(best.test_accuracy)}" if best.test_accuracy is not None else ""),
        )
        best_section = (
            f"**{params_label(best.params)}**: validation accuracy {pct(best.value)} "
            f"(mean of {len(best.runs)} run{'s' if len(best.runs) > 1 else ''}"
            + (
                f", range {pct(min(best.accuracies))}–{pct(max(best.accuracies))}"
                if len(best.runs) > 1
                else ""
            )
            + ")"
            + (
                f", test accuracy {pct(best.test_accuracy)} at the best epoch"
                if best.test_accuracy is not None
                else ""
            )
            + f". Retrained once for the figures below: test accuracy {pct(test_accuracy)}.\n\n"
            f"Retrain it with:\n\n```\n{command}\n```"
        )
    trial_counts = ", ".join(f"{n} {state}" for state, n in summary["trials"].items() if n)
    quick_note = (
        " **Quick mode**: a small training subset and few epochs, for a first look; the full "
        "study runs without `--quick`."
        if quick
        else ""
    )
    paragraphs = findings(study_file, rows)
    if importances:
        ranked = ", ".join(f"{name} {share:.2f}" for name, share in importances.items())
        paragraphs.append(
            f"**importance** (fANOVA: the share of the variation in validation accuracy each "
            f"hyperparameter explains, summing to 1): {ranked}."
        )
    findings_list = "\n".join(f"- {line}" for line in paragraphs)
    figure_list = "\n".join(f"### {title}\n\n![{title}]({name})\n" for title, name in figures)
    text = f"""# Study `{study.study_name}`

> {study_file.question}

Generated by `digitlab study report` from {len(rows)} trials ({trial_counts}); sampler
{study_file.search.sampler}, {study.user_attrs.get("repeats", 1)} run(s) per configuration,
wall time {duration(summary["wall_seconds"])}.{quick_note}
Accuracies are the best validation accuracy over the epochs (mean over runs); the test set
is only used for the final numbers.

## Best configuration

{best_section}

## Findings

{findings_list}

## Figures

{figure_list}
## All trials

Also as [trials.csv](trials.csv).

{markdown_table(header, table)}
"""
    (out / "README.md").write_text(text)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_index(out.parent)
    return summary


def _best_model_figures(best: TrialRow, out: Path, data_dir: Path | None) -> float:
    """Retrain the best configuration (first seed) and draw its confusion matrix and errors."""
    data = load_mnist(data_dir)
    trainer = Trainer(make_spec(best.spec), data)
    try:
        model = trainer.run().model
    except DivergenceError:
        model = trainer.best_model()
    predicted = model.network.predict(data.test.images)
    matrix = confusion_matrix(data.test.labels, predicted)
    plots.confusion_plot(matrix, out / "confusion.png")
    plots.misclassified_grid(
        data.test.images, data.test.labels, predicted, out / "misclassified.png"
    )
    return float(np.trace(matrix) / matrix.sum())


def write_index(folder: Path) -> None:
    """``folder/README.md``: one line per study report found below ``folder``."""
    entries = []
    for summary_path in sorted(folder.glob("*/summary.json")):
        summary = json.loads(summary_path.read_text())
        link = f"[{summary['study']}]({summary_path.parent.name}/README.md)"
        entries.append(
            f"| {link} | {summary['question']} | {summary.get('headline', 'no finished trials')} "
            f"| {duration(summary['wall_seconds'])} |"
        )
    (folder / "README.md").write_text(
        "# Studies\n\nGenerated by `digitlab study report`: one row per study report in this "
        "folder.\n\n| study | question | headline | wall time |\n|---|---|---|---|\n"
        + "\n".join(entries)
        + "\n"
    )
