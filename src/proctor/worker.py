"""``python -m proctor.worker``: Proctor's test worker (see :mod:`proctor.runner.worker`).

Kept to an import and a call, so that starting a worker costs the interpreter,
the worker's own small modules and the suite, nothing more.
"""

import sys

from proctor.runner.worker.main import main

if __name__ == "__main__":
    sys.exit(main())
