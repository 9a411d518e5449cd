"""``simpul run`` says what it is doing: plain lines when its output is not a terminal."""

from __future__ import annotations

import io
import sys

import pytest
import typer
from rich.console import Console

from shared.cli import Steps


def plain_steps() -> tuple[Steps, io.StringIO]:
    out = io.StringIO()
    return Steps(Console(file=out, highlight=False, soft_wrap=True)), out


class TestSteps:
    def test_a_step_is_one_plain_line_with_its_time_and_output_under_it(self) -> None:
        steps, out = plain_steps()
        script = "print('150 households loaded')"
        steps.command("registry", "loading the demo data", [sys.executable, "-c", script], {})
        first, second = out.getvalue().splitlines()
        assert first.startswith("registry     loading the demo data ... done (")
        assert first.endswith(" s)")
        assert second == " " * 13 + "150 households loaded"
        assert "\x1b" not in out.getvalue()

    def test_a_failed_command_shows_its_output_and_stops(self) -> None:
        steps, out = plain_steps()
        script = "import sys; print('no database'); sys.exit(3)"
        with pytest.raises(typer.Exit):
            steps.command("programs", "migrating", [sys.executable, "-c", script], {})
        assert out.getvalue().splitlines() == [
            "programs     migrating ... failed",
            " " * 13 + "no database",
            f"python -c {script} exited with 3",
        ]
