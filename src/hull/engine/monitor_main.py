"""The exec'd monitor's entry: `python -S -B monitor_main.py ARGS-JSON` (see monitor.py).

A stub on purpose: a script is always compiled at start, and compiling monitor.py left
~1 MiB of the compiler's memory in every monitor (4.4 -> 3.4 MiB PSS). Imported from here,
monitor.py comes from its .pyc (monitor.entry() writes it when missing or stale)."""

import sys

import monitor

sys.exit(monitor.main(sys.argv))
