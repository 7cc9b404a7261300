"""search layer: Optuna studies, samplers (``suggest_td3_params``), pruners, the trial objective, storage
URLs and worker processes. The only layer that imports optuna (lazily, inside functions).

- :mod:`autogai.search.budget`: budget presets (smoke, quick, standard, paper).
- :mod:`autogai.search.space`: the search space of a trial.
- :mod:`autogai.search.storage`: storage URLs -> Optuna storages (SQLite WAL, journal, PostgreSQL).
- :mod:`autogai.search.studies`: study naming, the trial queue, recovery of dead workers' trials.
- :mod:`autogai.search.objective`: one trial (training through :func:`autogai.training.train`).
- :mod:`autogai.search.worker`: worker processes (``autogai worker``).
"""
