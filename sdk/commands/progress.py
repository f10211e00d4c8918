"""What commands show while they work, fitted to where the output goes; then what they found.

One mechanism for the whole CLI: :class:`Progress` is the ``progress(stage, done, total)``
callback the library takes (convert, optimize, sensitivity, demo), and also the
``progress(message)`` one deploy takes (a message is a stage without a count).
"""

from __future__ import annotations

import json
import sys
import time

import click

from edgesmith.commands import interrupt


class Progress:
    """Progress on ``stream`` (default: stderr): bars on a terminal, plain lines in a log, nothing when quiet.

    * on a terminal: a line when a stage starts (``qat...``), a progress bar while it
      reports ``(done, total)``, and ``qat: done in 12.3 s`` when the next stage starts or
      :meth:`close` is called;
    * on a pipe or a log file: the same start and end lines, never a bar (no carriage-return frames);
    * ``total == 0`` marks a stage ``--resume`` reused: ``prune: reused``;
    * every call raises KeyboardInterrupt once Ctrl-C was pressed (:mod:`edgesmith.commands.interrupt`).

    >>> import io
    >>> log = io.StringIO()
    >>> progress = Progress(stream=log)
    >>> progress("qat", 0, None); progress("qat", 5, 10); progress.close()
    >>> log.getvalue().splitlines()[0]
    'qat...'
    """

    def __init__(self, enabled: bool = True, stream=None, unit: str = "step"):
        self.enabled, self.stream, self.unit = enabled, stream, unit
        self._bar = self._stage = None
        self._started = 0.0

    def __call__(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        interrupt.check()  # a Ctrl-C the library swallowed stops the command at its next step
        if not self.enabled:
            return
        if stage != self._stage or total is None:
            self.close()
            self._stage, self._started = stage, time.perf_counter()
            if total == 0 and done == 0:
                self._stage = None
                click.echo(f"{stage}: reused", file=self._stream)
                return
            click.echo(f"{stage}...", file=self._stream)
            if total is None:
                return
        if total and self._terminal:
            self._draw(stage, done or 0, total)

    def _draw(self, stage: str, done: int, total: int) -> None:
        if self._bar is None:
            try:
                from tqdm import tqdm
            except ImportError:  # a board with the base install only: start and end lines suffice
                return
            self._bar = tqdm(total=total, desc=f"{stage:>8}", unit=self.unit, file=self._stream, leave=False)
        if self._bar.total != total:  # a time budget: the steps expected to fit in it, re-estimated as it runs
            self._bar.total = total
            self._bar.refresh()
        self._bar.update(done - self._bar.n)

    @property
    def _stream(self):
        return self.stream or sys.stderr

    @property
    def _terminal(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def close(self) -> None:
        """End the current stage with its time (call when the work ends, also after an error)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._stage is not None:
            click.echo(f"{self._stage}: done in {time.perf_counter() - self._started:.1f} s", file=self._stream)
            self._stage = None


def quiet_option(command):
    """``--quiet``: no progress output (results and errors still print)."""
    return click.option("--quiet", "-q", is_flag=True, help="Show no progress (results and errors still print).")(command)


def show_result(report: dict, as_json: bool, text, plot_path=None, plot=None) -> None:
    """Write ``plot(report)`` (PNG bytes) to ``plot_path`` when one is given, then print ``report`` as JSON (what JSON
    cannot hold as its text), or as ``text(report)`` followed by where the plot went."""
    if plot_path:
        from pathlib import Path

        from edgesmith.runtime.atomic_write import atomic_write_bytes

        atomic_write_bytes(Path(plot_path), plot(report))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(text(report))
    if plot_path:
        click.echo(f"wrote {plot_path}")


def print_report(report) -> None:
    """The per-stage table and the headline figures of a convert report, on stdout."""
    from edgesmith.report.text import format_table, stage_table, summary_lines

    click.echo(format_table(stage_table(report)))
    for line in summary_lines(report):
        click.echo(line)
