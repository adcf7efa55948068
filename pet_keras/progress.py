"""Progress of long loops, readable at a terminal and in a log file.

At a terminal Keras' bars redraw themselves with carriage returns; written to a
file or a pipe those frames would fill the log (a training run's, a megabyte),
so there a loop prints one line when it ends instead.
"""

import sys
import time

import numpy as np

from pet_keras.compat import keras


def progress_bar(target, unit_name):
    """A Keras Progbar of ``target`` units at a terminal; elsewhere a ``LogLine``."""
    if sys.stdout.isatty():
        return keras.utils.Progbar(target, unit_name=unit_name)
    return LogLine(target, unit_name)


class LogLine:
    """A progress bar's log form: one line when ``update`` reaches the target,
    ``3512 examples in 10 s (2.8 ms/example)``."""

    def __init__(self, target, unit_name):
        self.target, self.unit_name = target, unit_name
        self.started = time.time()

    def update(self, current, values=None):
        if current < self.target:
            return
        seconds = time.time() - self.started
        per_unit = 1000 * seconds / max(self.target, 1)
        print(
            '%d %ss in %.0f s (%.1f ms/%s)' % (self.target, self.unit_name, seconds, per_unit, self.unit_name),
            flush=True,
        )


class StepProgress(keras.callbacks.Callback):
    """Progress in optimizer steps, where Keras would show "Epoch 7/40" for evaluation intervals.

    Each interval opens with a line ``steps 300–350 (≤ 2000)``; at a terminal a bar of its
    steps follows. Written to a file or a pipe there is no bar, whose carriage-return frames
    would fill the log: the interval's line, then whatever reports its end (an evaluation).
    The bar shows Keras' ``accuracy`` of the training loss as "masked-token acc": the
    share of masked tokens the MLM guesses, not a classification accuracy."""

    NAMES = {'accuracy': 'masked-token acc'}

    def __init__(self, steps_per_epoch, total_steps, stream=None):
        super().__init__()
        self.steps_per_epoch, self.total_steps = steps_per_epoch, total_steps
        self.stream = stream or sys.stdout
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        first = epoch * self.steps_per_epoch
        last = min(first + self.steps_per_epoch, self.total_steps)
        print('steps %d–%d (≤ %d)' % (first, last, self.total_steps), file=self.stream, flush=True)
        self.interval = last - first

    def on_train_batch_end(self, batch, logs=None):
        if not self.stream.isatty():
            return
        values = [(self.NAMES.get(k, k), v) for k, v in (logs or {}).items() if np.ndim(v) == 0]
        if self.bar is None:  # Keras' logs are running means already: every value is shown as it is
            self.bar = keras.utils.Progbar(self.interval, unit_name='step', stateful_metrics=[k for k, _ in values])
        self.bar.update(batch + 1, values)

    def on_epoch_end(self, epoch, logs=None):
        self.bar = None
