"""The console's number formats (issue 24: overview B/s shown unrounded).

Runs tests/js/console_format.js in node: src/console/assets/format.js, the
file the browser loads, evaluated as the browser does, with rates such as
123.456789 B/s shown as "123 B/s" and 12.3 MiB/s as "12.3 MiB/s".
"""
import shutil
import subprocess
from pathlib import Path

JS_TEST = Path(__file__).resolve().parents[1] / "js" / "console_format.js"


def test_console_overview_rates_rounded_to_a_human_unit():
    node = shutil.which("node")
    assert node is not None, "node not installed (scripts/lib/deps.sh installs it)"
    run = subprocess.run([node, str(JS_TEST)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert "cases pass" in run.stdout
