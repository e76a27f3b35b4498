"""What ``check`` and the test process inside it agree on: environment variables
and marker names. Kept apart from the pytest plugin so that the notebook side
can read them without importing pytest (check must answer within seconds).
"""

from __future__ import annotations

from typing import Final

RESULTS_ENV: Final = "COURSEKIT_RESULTS"
PREFLIGHT_ENV: Final = "COURSEKIT_PREFLIGHT"
STAGE_ENV: Final = "COURSEKIT_STAGE"  # "fast": leave deep tests out; anything else: run what was asked
TIME_LIMIT_ENV: Final = "COURSEKIT_TIME_LIMIT"
PARENT_PID_ENV: Final = "COURSEKIT_PARENT_PID"
DEFAULT_TIME_LIMIT_S: Final = 5.0
# Importing the learner's module pulls in FastAPI or SQLAlchemy, which takes
# seconds on a cold, busy machine: the import gets a limit of its own.
IMPORT_TIME_LIMIT_ENV: Final = "COURSEKIT_IMPORT_TIME_LIMIT"
DEFAULT_IMPORT_TIME_LIMIT_S: Final = 30.0
DEEP_MARKER: Final = "deep"
TIME_LIMIT_MARKER: Final = "time_limit"
DATABASE_URL_ENV: Final = "COURSE_DATABASE_URL"  # read by coursekit.db too
