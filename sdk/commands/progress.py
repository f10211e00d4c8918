"""What the converting commands show while they work: a progress bar per stage, then the convert report.

Shared by ``edgesmith convert``, ``demo`` and ``convert-and-deploy``.
"""

from __future__ import annotations

import sys

import click


class StageProgress:
    """The ``progress(stage, done, total)`` callback of :func:`edgesmith.pipeline.convert`, drawn on a console.

    One progress bar per training stage; a one-line note for a stage that starts
    (``total`` None: ``qat...``) and for one ``--resume`` reused (``total`` 0:
    ``prune: reused``). ``stream`` is where it draws
    (default: stderr).

    >>> progress = StageProgress(enabled=True)
    >>> report = convert("digits.keras", "int8-qat", "builtin:digits", "out/", progress=progress)
    >>> progress.close()
    """

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream
        self._bar = None
        self._stage = None

    def __call__(self, stage: str, done: int, total) -> None:
        if not self.enabled:
            return
        if stage != self._stage or total is None:
            self.close()
            self._stage = stage
            if total is None or total == 0:
                click.echo(f"{stage}..." if total is None else f"{stage}: reused", file=self._stream)
                return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=f"{stage:>8}", unit="step", file=self._stream, leave=False)
        self._bar.update(done - self._bar.n)

    @property
    def _stream(self):
        return self.stream or sys.stderr

    def close(self) -> None:
        """Remove the current bar (call when the work ends, also after an error)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def print_report(report: dict) -> None:
    """The per-stage table and the headline figures of a convert report, on stdout."""
    from edgesmith.pipeline import format_table, stage_table, summary_lines

    click.echo(format_table(stage_table(report)))
    for line in summary_lines(report):
        click.echo(line)
