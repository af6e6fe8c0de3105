"""What serve's main process loads."""

from __future__ import annotations

import subprocess
import sys


def test_the_service_module_loads_neither_alembic_nor_fastapi():
    # serve's main process needs neither when its HTTP side runs in a process of its own
    script = ("import sys\nimport notifier.service.app\n"
              "print(sorted(m for m in ('alembic', 'fastapi') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
