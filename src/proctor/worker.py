"""``python -m proctor.worker``: Proctor's test worker (see :mod:`proctor.runner.worker`).

Kept to an import and a call, so that starting a worker costs the interpreter,
the worker's own small modules and the suite, nothing more. On the way out the
suite's atexit handlers run, but not the teardown of every object it made, and
the worker does not wait for non-daemon threads a test left running (the
interpreter would join them before the atexit handlers, for as long as they
run): once :func:`main` has returned, results flushed and channels closed, it
runs the atexit handlers and exits (:func:`proctor.runner.fastexit.leave`).
"""

from proctor.runner import fastexit

fastexit.install()  # first, so that it runs after every handler the suite registers

from proctor.runner.worker.main import main  # noqa: E402 - after install(), on purpose

if __name__ == "__main__":
    fastexit.leave(main(), "proctor.worker")
