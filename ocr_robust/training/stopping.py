"""When a run stops besides its epochs: signals, a STOP file, and the plateau criteria
(METHODS.md S8); the time limit is the schedule's and the loop's."""

from __future__ import annotations

import signal

__all__ = ["StopRequests", "STOP_FILE", "plateau_reason"]


class StopRequests:
    """SIGINT/SIGTERM during training: finish the current step, save, and stop."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._old: dict = {}

    def __enter__(self) -> StopRequests:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: no signal handling
            self._old = {}
        return self

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        print(f"\n{self.signal}: finishing the current step, then saving a checkpoint", flush=True)

    def __exit__(self, *exc) -> None:
        for sig, h in self._old.items():
            signal.signal(sig, h)


STOP_FILE = "STOP"


def plateau_reason(cfg, since_loss: int, since_val: int, easy_share: float | None) -> str | None:
    """Why the run should stop after this epoch by the config's criteria, or None."""
    if cfg.stop_loss_patience is not None and since_loss >= cfg.stop_loss_patience:
        return f"loss plateau ({since_loss} epochs)"
    if cfg.stop_val_patience is not None and since_val >= cfg.stop_val_patience:
        return f"validation plateau ({since_val} epochs)"
    if cfg.stop_easy_share is not None and (easy_share or 0.0) >= cfg.stop_easy_share:
        return f"easy share under attack {100 * (easy_share or 0.0):.1f}%"
    return None
