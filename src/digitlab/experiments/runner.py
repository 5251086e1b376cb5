"""Running a study: workers that take trials from the shared storage until none are left.

Grids are queued in full when the study is created (each point once, guarded by the
database's unique study name), and a worker only ever takes a queued trial by moving
it from WAITING to RUNNING in the database -- an atomic step -- so no point runs twice
however many workers share the study.  Random and TPE studies ask the sampler for new
configurations until the budget of trials is used.

While a trial runs its worker sends heartbeats.  A worker that dies (SIGKILL, power cut)
stops beating; whichever worker looks next marks that trial failed and queues its
configuration again, so re-running ``study run`` finishes the study and loses nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import BaseDistribution
from optuna.storages import JournalStorage, RDBStorage, fail_stale_trials
from optuna.storages._rdb.models import TrialModel  # the trials table, for the atomic claim
from optuna.trial import FrozenTrial, TrialState

from digitlab.data import Dataset, load_mnist
from digitlab.errors import DigitlabError, DivergenceError
from digitlab.experiments.results import (
    RUN_ATTR,
    RUN_DATA_ATTR,
    STATES,
    RunSummary,
    counted_trials,
)
from digitlab.experiments.storage import (
    DEFAULT_HEARTBEAT,
    default_storage_exists,
    open_storage,
    read_storage,
)
from digitlab.experiments.study_file import (
    Range,
    StudyFile,
    apply_params,
    base_spec,
    grid_points,
    numeric,
)
from digitlab.reporting import Report, silent
from digitlab.spec import Spec
from digitlab.train import Trainer
from digitlab.train.callbacks import Callback

READY_TIMEOUT = 30  # seconds a worker waits for another to finish creating the study
METRIC_NAME = "validation accuracy"  # the objective, as optuna-dashboard labels it


class StudyError(DigitlabError):
    """A study that cannot be run as asked (e.g. its file no longer matches its storage)."""


@dataclass(frozen=True)
class RunSettings:
    """What every worker of one ``study run`` needs to know (picklable for processes)."""

    study_file: StudyFile
    storage_url: str | None
    quick: bool
    heartbeat: int = DEFAULT_HEARTBEAT
    data_dir: Path | None = None

    @property
    def study_name(self) -> str:
        return study_name(self.study_file, self.quick)

    @property
    def repeats(self) -> int:
        return self.study_file.quick.repeats if self.quick else self.study_file.search.repeats

    @property
    def budget(self) -> int:
        """How many configurations the study tries."""
        if self.study_file.search.sampler == "grid":
            return len(grid_points(self.study_file))
        quick_trials = self.study_file.quick.trials if self.quick else None
        return quick_trials or self.study_file.search.trials

    def overrides(self) -> dict[str, Any]:
        """Quick mode's smaller settings, except for what the study itself varies: a field
        in the space or set by any variant keeps its value in every trial (quick epochs
        would erase a variant that differs in its epochs).  Smaller only: a base already
        below them keeps its own."""
        if not self.quick:
            return {}
        base, wanted = base_spec(self.study_file), self.study_file.quick
        quick = {
            "train_size": min(wanted.train_size, base.train_size or wanted.train_size),
            "epochs": min(wanted.epochs, base.epochs),
        }
        return {k: v for k, v in quick.items() if k not in self.study_file.varied_fields()}


def study_name(study_file: StudyFile, quick: bool) -> str:
    return f"{study_file.name}-quick" if quick else study_file.name


class SeededPerTrial(optuna.samplers.BaseSampler):
    """A sampler made anew for every trial, seeded with the study's seed plus the
    trial's number.

    The storage hands out each trial number once, to whichever process asks, so workers
    in any number of processes on any number of machines never draw with the same seed
    (one seed per process would make two ``study run`` commands repeat each other's
    trials), while a study run by one process is repeatable.  TPE keeps no state between
    trials besides its random generator -- it reads the finished trials from the
    storage -- so nothing is lost by making it anew.
    """

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._make, self._seed = make, seed
        self._inner = make(seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._inner = self._make(self._seed + trial.number)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._inner.after_trial(study, trial, state, values)


def make_sampler(study_file: StudyFile) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded per trial (:class:`SeededPerTrial`); grids only run
    the trials they queued, so theirs is never asked for a point."""
    kind = (
        optuna.samplers.TPESampler
        if study_file.search.sampler == "tpe"
        else optuna.samplers.RandomSampler
    )
    return SeededPerTrial(lambda seed: kind(seed=seed), study_file.search.seed)


def make_pruner(study_file: StudyFile) -> optuna.pruners.BasePruner:
    if study_file.search.pruner == "median":
        return optuna.pruners.MedianPruner(
            # Steps are epochs counted from 1, and Optuna prunes at steps >= warm-up:
            # so prune_warmup whole epochs run before a trial may be pruned.
            n_startup_trials=5,
            n_warmup_steps=study_file.search.prune_warmup + 1,
        )
    return optuna.pruners.NopPruner()


def open_study(settings: RunSettings, storage: RDBStorage) -> optuna.Study:
    """Create the study (queueing a grid in full) or join it, checking it is the same study."""
    study_file = settings.study_file
    common = {
        "study_name": settings.study_name,
        "storage": storage,
        "sampler": make_sampler(study_file),
        "pruner": make_pruner(study_file),
    }
    fingerprint = study_file.space_fingerprint()
    try:
        study = optuna.create_study(direction="maximize", **common)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**common)
        ready = _wait_until_ready(study)
        if not ready and study.user_attrs.get("fingerprint") in (None, fingerprint):
            _finish_creating(study, settings)  # its creator died part of the way through
        if study.user_attrs.get("fingerprint") != fingerprint:
            raise StudyError(
                f"a study named {settings.study_name!r} already exists with a different base or "
                "search space, or was stored by an older digitlab; rename the study in its file "
                "or use another --storage"
            ) from None
        return study
    _finish_creating(study, settings)
    return study


def _finish_creating(study: optuna.Study, settings: RunSettings) -> None:
    """Describe a new study and queue its grid, then mark it ready.  Every step may be
    repeated: a creator killed half-way leaves a study the next run finishes (grid
    points already queued are not queued again)."""
    study_file = settings.study_file
    study.set_metric_names([METRIC_NAME])
    study.set_user_attr("fingerprint", study_file.space_fingerprint())
    study.set_user_attr("question", study_file.question)
    study.set_user_attr("quick", settings.quick)
    study.set_user_attr("repeats", settings.repeats)
    study.set_user_attr("sampler", study_file.search.sampler)
    if study_file.search.sampler == "grid":
        for point in grid_points(study_file):
            study.enqueue_trial(point, skip_if_exists=True)
    study.set_user_attr("ready", True)


def _wait_until_ready(study: optuna.Study) -> bool:
    """Wait for another process to finish creating ``study``; False if it never does
    within READY_TIMEOUT (it died), True once it is ready."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not study.user_attrs.get("ready"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def suggest(trial: optuna.Trial, study_file: StudyFile) -> dict[str, Any]:
    """The trial's hyperparameters (queued ones come back exactly as queued).

    Numbers are stored as numbers: a range as the float or int distribution it is, and a
    grid's list of numbers as a float or int distribution over its span (log scale when
    it spans a factor of 10 or more), so that optuna-dashboard's slice, contour and rank
    plots order them.  A list searched by random or TPE sampling stays categorical: the
    sampler may only pick its values."""
    grid = study_file.search.sampler == "grid"
    params = {}
    for key, values in study_file.space.items():
        if isinstance(values, Range):
            low, high, log, whole = values.low, values.high, values.log, values.int
        elif grid and numeric(values):
            low, high, whole = min(values), max(values), all(isinstance(v, int) for v in values)
            log = low > 0 and high / low >= 10
        else:
            params[key] = trial.suggest_categorical(key, values)
            continue
        if whole:
            params[key] = trial.suggest_int(key, int(low), int(high), log=log)
        else:
            params[key] = trial.suggest_float(key, float(low), float(high), log=log)
    return params


class ReportToTrial(Callback):
    """Feeds per-epoch validation accuracy to Optuna, which may prune the trial."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def on_epoch_end(self, record) -> None:
        self.trial.report(record.validation_accuracy, record.epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {record.epoch}")


def run_trial(
    trial: optuna.Trial,
    trial_id: int,
    storage: RDBStorage,
    settings: RunSettings,
    base: Spec,
    data: Dataset,
) -> float:
    """Train the trial's configuration ``repeats`` times; its value is the mean best accuracy.

    Each run's headline numbers become a user attribute of their own (short enough for
    optuna-dashboard's table); its curves and diagnostics (at initialisation and after
    every epoch) a system attribute, which reports read.  A run that
    diverges is a result, not a crash: it counts with the best accuracy it had reached
    (a NaN network scores about chance)."""
    study_file = settings.study_file
    spec = apply_params(base, suggest(trial, study_file), settings.overrides(), study_file.variants)
    trial.set_user_attr("spec", spec.model_dump())
    runs: list[RunSummary] = []
    # The runs' seeds: the study's, or the trial's own when the study varies the seed.
    first_seed = (
        spec.seed if "seed" in settings.study_file.space else settings.study_file.search.seed
    )
    for repeat in range(settings.repeats):
        seed = first_seed + repeat
        callbacks = [ReportToTrial(trial)] if repeat == 0 else []
        trainer = Trainer(spec.with_overrides(seed=seed), data, callbacks)
        initial = trainer.diagnose()
        started = time.perf_counter()
        diverged = False
        try:
            trainer.run()
        except DivergenceError:
            diverged = True
        except optuna.TrialPruned:
            pruned = RunSummary.from_history(
                seed, trainer.history, time.perf_counter() - started, False, initial
            )
            _record_run(trial, trial_id, storage, repeat, pruned)
            raise
        run = RunSummary.from_history(
            seed, trainer.history, time.perf_counter() - started, diverged, initial
        )
        _record_run(trial, trial_id, storage, repeat, run)
        runs.append(run)
    _record_headline(trial, runs)
    return statistics.fmean(run.best_validation_accuracy for run in runs)


def _record_run(
    trial: optuna.Trial, trial_id: int, storage: RDBStorage, repeat: int, run: RunSummary
) -> None:
    trial.set_user_attr(RUN_ATTR.format(repeat), run.headline())
    storage.set_trial_system_attr(trial_id, RUN_DATA_ATTR.format(repeat), run.to_dict())


def _record_headline(trial: optuna.Trial, runs: list[RunSummary]) -> None:
    """The numbers a reader of the study scans for, as separate user attributes."""
    tests = [r.test_accuracy for r in runs if r.test_accuracy is not None]
    if tests:
        trial.set_user_attr("test_accuracy", round(statistics.fmean(tests), 6))
    trial.set_user_attr("validation_accuracy_per_seed", [r.best_validation_accuracy for r in runs])
    trial.set_user_attr("best_epoch", statistics.median(r.best_epoch or 0 for r in runs))
    trial.set_user_attr("train_seconds", round(sum(r.seconds for r in runs), 2))
    trial.set_user_attr("diverged_runs", sum(r.diverged for r in runs))


class Heartbeat:
    """Records a trial's heartbeat in the storage every ``interval`` seconds while it runs."""

    def __init__(self, storage: RDBStorage, trial_id: int, interval: int) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        self.storage.record_heartbeat(self.trial_id)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _beat(self) -> None:
        while not self.stopped.wait(self.interval):
            self.storage.record_heartbeat(self.trial_id)


def trial_id_of(storage: RDBStorage, study: optuna.Study, trial: optuna.Trial) -> int:
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)


def claim_queued_trial(study: optuna.Study, storage: RDBStorage) -> optuna.Trial | None:
    """Atomically take a WAITING trial (WAITING -> RUNNING), or None if there is none."""
    study_id = storage.get_study_id_from_name(study.study_name)
    for frozen in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        # Beat *before* claiming: a worker killed right after the claim then still leaves a
        # heartbeat that goes stale, so the trial is retried instead of staying RUNNING
        # forever (Optuna only judges trials that have a heartbeat).
        storage.record_heartbeat(trial_id)
        if _take(storage, trial_id):
            study.get_trials(deepcopy=False)  # let the study's trial cache see the claim
            return optuna.Trial(study, trial_id)
    return None


def _take(storage: RDBStorage, trial_id: int) -> bool:
    """Move a trial from WAITING to RUNNING in one conditional UPDATE; True if this call
    did it.  Optuna's own state change reads, then writes: on SQLite, which ignores
    SELECT ... FOR UPDATE, two processes could both read WAITING and both run the trial
    (seen with two workers on one grid).  The database decides the UPDATE alone."""
    trials = TrialModel.__table__
    claim = (
        sqlalchemy.update(trials)
        .where(trials.c.trial_id == trial_id, trials.c.state == TrialState.WAITING)
        .values(state=TrialState.RUNNING, datetime_start=datetime.now())
    )
    with storage.engine.begin() as connection:
        return connection.execute(claim).rowcount == 1


def counts(study: optuna.Study) -> dict[TrialState, int]:
    trials = study.get_trials(deepcopy=False)
    return {state: sum(t.state == state for t in trials) for state in TrialState}


def work(settings: RunSettings, worker: int = 0, report: Report = silent) -> None:
    """One worker: run trials of the study until none are queued, left or running."""
    storage = open_storage(settings.storage_url, settings.heartbeat)
    study = open_study(settings, storage)
    base = base_spec(settings.study_file)
    data = load_mnist(settings.data_dir)
    while True:
        fail_stale_trials(study)  # dead workers' trials: failed, then queued again
        trial = claim_queued_trial(study, storage)
        if trial is None and settings.study_file.search.sampler != "grid":
            tally = counts(study)
            started = sum(
                tally[s] for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            )
            if started < settings.budget:
                trial = study.ask()
                storage.record_heartbeat(trial_id_of(storage, study, trial))
        if trial is None:
            if counts(study)[TrialState.RUNNING]:  # others still at work, or dead: wait and see
                time.sleep(settings.heartbeat)
                continue
            return
        _execute(trial, study, storage, settings, base, data, worker, report)


def _execute(
    trial: optuna.Trial,
    study: optuna.Study,
    storage: RDBStorage,
    settings: RunSettings,
    base: Spec,
    data: Dataset,
    worker: int,
    report: Report,
) -> None:
    """Run one claimed trial under heartbeats and record how it ended."""
    started = time.perf_counter()
    trial_id = trial_id_of(storage, study, trial)
    with Heartbeat(storage, trial_id, settings.heartbeat):
        try:
            value = run_trial(trial, trial_id, storage, settings, base, data)
        except optuna.TrialPruned as pruned:
            study.tell(trial, state=TrialState.PRUNED)
            report(f"[worker {worker}] trial {trial.number} {trial.params}: {pruned}")
            return
        except DigitlabError:  # the configuration itself is wrong: running it again won't help
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception:
            # Not a result (a diverged run is one, recorded by run_trial): the disk, the
            # database or the machine failed.  The point is queued again, so a grid loses
            # nothing; a sampled study simply asks for another trial.
            study.tell(trial, state=TrialState.FAIL)
            if settings.study_file.search.sampler == "grid":  # its point, as it was queued
                study.enqueue_trial(storage.get_trial_system_attrs(trial_id)["fixed_params"])
            raise
    study.tell(trial, value)
    report(
        f"[worker {worker}] trial {trial.number} {trial.params}: validation {value:.2%} "
        f"({time.perf_counter() - started:.0f}s)"
    )


def _die_with_parent(parent: int) -> None:
    """Have the kernel stop this worker process when the ``study run`` that started it
    dies, however it dies (SIGKILL included): Linux's PR_SET_PDEATHSIG.  Elsewhere a
    worker left behind finishes its trial and stops."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)


#: prctl's option number for "signal me when my parent dies" (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def _work_in_process(settings: RunSettings, worker: int, parent: int) -> None:
    _die_with_parent(parent)
    try:
        work(settings, worker, report=lambda line: print(line, file=sys.stderr, flush=True))
    except DigitlabError as exc:
        print(f"error: [worker {worker}] {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def run_study(settings: RunSettings, workers: int = 1, report: Report = silent) -> optuna.Study:
    """Run (or continue) a study with ``workers`` local processes; return it when done."""
    storage = open_storage(settings.storage_url, settings.heartbeat)
    open_study(settings, storage)  # create it once, before the workers race to
    if workers == 1:
        work(settings, 0, report)
    else:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per worker process
        context = multiprocessing.get_context("spawn")
        processes = [
            context.Process(target=_work_in_process, args=(settings, w, os.getpid()))
            for w in range(workers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        failed = [p.exitcode for p in processes if p.exitcode]
        if failed:
            raise StudyError(
                f"{len(failed)} of {workers} workers failed; re-run to finish the study"
            )
    return optuna.load_study(study_name=settings.study_name, storage=storage)


def load_existing_study(settings: RunSettings) -> optuna.Study:
    """The stored study for these settings, or a clear error if it was never run."""
    storage = read_storage(settings.storage_url)
    try:
        study = optuna.load_study(study_name=settings.study_name, storage=storage)
    except KeyError:
        if isinstance(storage, JournalStorage):  # a report's: running adds nothing to it
            names = ", ".join(map(repr, optuna.get_all_study_names(storage)))
            raise StudyError(
                f"no study named {settings.study_name!r} in {settings.storage_url}: it keeps "
                f"{names or 'none'}"
            ) from None
        raise StudyError(
            f"no study named {settings.study_name!r} in the storage; run it first with "
            "`digitlab study run`"
        ) from None
    if study.user_attrs.get("fingerprint") != settings.study_file.space_fingerprint():
        raise StudyError(
            f"the stored study {settings.study_name!r} has a different base or search space "
            "than its file now"
        )
    return study


def list_studies(storage_url: str | None) -> list[dict[str, Any]]:
    """Every study in the storage: trials per state (counted as its report counts them:
    a finished trial with a diverged run is "diverged", a dead worker's retried trial
    appears once) and the best value; none where the default storage was never made."""
    if storage_url is None and not default_storage_exists():
        return []
    storage = read_storage(storage_url)
    entries = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=True):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        states = {state: 0 for state in ("complete", "diverged", *STATES.values())}
        for _, state in counted_trials(study):
            states[state] += 1
        entries.append(
            {
                "name": summary.study_name,
                "trials": states,
                "best_value": summary.best_trial.value if summary.best_trial else None,
            }
        )
    return entries
