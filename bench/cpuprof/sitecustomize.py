"""A CPU-time sampler for one bench process (bench/bids.py --profile-cpu).

py-spy samples wall time, or with --gil the moments the GIL is held; on two
shared cores both also count the time the process is runnable but preempted
(a send that wakes Redis hands it the core while the sender still holds the
GIL). Here SIGPROF fires every `BENCH_CPU_PROFILE_HZ`-th of a second of this
process's own CPU time (user and kernel), so samples are shares of CPU spent.
CPython runs the handler at the next bytecode boundary, in the frame that made
the C call (a send, a signature): the call's time lands on its caller.

Loaded as `sitecustomize` when bench/cpuprof is first on PYTHONPATH and
BENCH_CPU_PROFILE names the output file. SIGUSR2 starts sampling; a second
SIGUSR2 stops it and writes py-spy's raw format (collapsed stacks, a count).
"""
import collections
import os
import signal

_PATH = os.environ.get("BENCH_CPU_PROFILE")

if _PATH:
    _counts: collections.Counter = collections.Counter()
    _on = [False]
    _interval = 1.0 / float(os.environ.get("BENCH_CPU_PROFILE_HZ", "997"))

    def _sample(_sig, frame):  # noqa: ANN001
        names = []
        while frame is not None:
            code = frame.f_code
            names.append(f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})")
            frame = frame.f_back
        names.reverse()
        _counts[";".join(names)] += 1

    def _toggle(_sig, _frame):  # noqa: ANN001
        if not _on[0]:
            _counts.clear()
            _on[0] = True
            signal.setitimer(signal.ITIMER_PROF, _interval, _interval)
            return
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        _on[0] = False
        with open(_PATH + ".part", "w") as out:
            for stack, n in _counts.items():
                out.write(f"{stack} {n}\n")
        os.replace(_PATH + ".part", _PATH)  # whole, or not there yet

    signal.signal(signal.SIGPROF, _sample)
    signal.signal(signal.SIGUSR2, _toggle)
