"""``python -m proctor.worker``: Proctor's test worker (see :mod:`proctor.runner.worker`).

Kept to an import and a call, so that starting a worker costs the interpreter,
the worker's own small modules and the suite, nothing more. On the way out the
suite's atexit handlers run, but not the teardown of every object it made
(:mod:`proctor.runner.fastexit`).
"""

import sys

from proctor.runner import fastexit

fastexit.install()  # first, so that it runs after every handler the suite registers

from proctor.runner.worker.main import main  # noqa: E402 - after install(), on purpose

if __name__ == "__main__":
    status = main()
    fastexit.arm(status)
    sys.exit(status)
