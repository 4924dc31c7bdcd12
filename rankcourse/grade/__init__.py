"""Grading for instructors: run submitted notebooks, each in its own limited process, and check
their exercises with the course's checks, into a grade table (CSV and HTML).

``python -m rankcourse.grade SUBMISSIONS/ --out grades.csv --seed S --jobs 4``; a student runs
``python -m rankcourse.grade --one NOTEBOOK`` to see the row an instructor will see.

Pieces: :mod:`~rankcourse.grade.exercises` (which exercises, from the notebooks' labels),
:mod:`~rankcourse.grade.limits` (the child processes and their limits),
:mod:`~rankcourse.grade.execute` (runs the cells in a kernel, exports the answers),
:mod:`~rankcourse.grade.check` (runs the checks with their guards in a fresh process),
:mod:`~rankcourse.grade.feedback` (the three feedback levels), :mod:`~rankcourse.grade.batch`
(one submission, a folder) and :mod:`~rankcourse.grade.table` (CSV and HTML).
"""

from .batch import Row, grade_folder, grade_submission
from .exercises import GradedExercise, course_chapters, graded_exercises
from .limits import Limits

__all__ = ["GradedExercise", "Limits", "Row", "course_chapters", "grade_folder", "grade_submission",
           "graded_exercises"]
