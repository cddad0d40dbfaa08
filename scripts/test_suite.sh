#!/usr/bin/env bash
# `make test`'s runner: `scripts/test_suite.sh <pytest command and its arguments>`.
# 1. The tests that may run beside others, on $PYTEST_WORKERS pytest-xdist workers: a test file
#    per worker at a time (a module's system stays in one process), files handed out in
#    collection order, so each worker runs a subsequence of the one-process order (xdist's
#    default, largest file first, let a test that changes the session's shared system run
#    before one that reads it).
# 2. The tests marked `alone` (tests/conftest.py), in one process.
# PYTEST_WORKERS=1: everything in one process, in collection order. PYTEST_ARGS that choose
# the parallelism or the part (-n, -p no:xdist, --dist, --voc-part) run as given.
# Exit status: pytest's, the first failing part's; 5 (no tests) only when neither part had one.
set -u
workers=${PYTEST_WORKERS:-2}
case " $* " in
*" -n"* | *" --numprocesses"* | *"no:xdist"* | *" --voc-part"* | *" --dist"*)
  exec "$@" # the caller chose the parallelism (or the part) in PYTEST_ARGS: theirs, unchanged
  ;;
esac
if ! [[ $workers =~ ^[0-9]+$ ]] || ((workers < 2)); then
  exec "$@" -p no:xdist
fi
"$@" -n "$workers" --dist loadfile --no-loadscope-reorder --voc-part shared
shared=$?
case $shared in 0 | 1 | 5) ;; *) exit "$shared" ;; esac # interrupted, or pytest itself failed
"$@" -p no:xdist --voc-part alone
alone=$?
if ((shared == 5 && alone == 5)); then exit 5; fi
((shared == 5)) && shared=0
((alone == 5)) && alone=0
exit $((shared != 0 ? shared : alone))
