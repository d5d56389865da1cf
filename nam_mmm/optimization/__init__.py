"""Decisions from a trained run folder: the budget planner, the scenario planner and the ROI simulator.

Everything here reads a run folder (``predictor.pt``, ``config.yaml``; see ``docs/run_folder.md``) and the run's
data, never the training code. ``docs/budget_planner.md`` describes the settings and the files written.
"""
