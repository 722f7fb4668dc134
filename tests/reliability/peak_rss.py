"""Run a command and write its peak resident set size in KiB to a file.

``python -m tests.reliability.peak_rss OUT CMD...``: the exit status is the command's. The
figure is ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of this wrapper, whose only child is the
command, so nothing else the test runner started is counted.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path


def main() -> int:
    out, command = Path(sys.argv[1]), sys.argv[2:]
    status = subprocess.run(command, check=False).returncode
    out.write_text(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss), encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
