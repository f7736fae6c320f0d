"""Figures and the offline HTML report of an InPCA picture.

The report only reads results (:class:`deepmanifold.analysis.picture.Picture`); it
never computes geometry.

>>> from deepmanifold.report import write_report
>>> write_report("report.html", {"test": test_picture, "train": train_picture},
...              title="digits sweep", summary={"runs": 12})  # doctest: +SKIP
"""

from deepmanifold.report.figures import (
    RunColouring,
    accuracy_figure,
    axis_title,
    group_colours,
    inpca_figure,
    progress_figure,
    run_colourings,
    stress_figure,
)
from deepmanifold.report.page import main_probe, write_report

__all__ = [
    "write_report",
    "main_probe",
    "inpca_figure",
    "stress_figure",
    "progress_figure",
    "accuracy_figure",
    "group_colours",
    "axis_title",
    "run_colourings",
    "RunColouring",
]
