"""Keras callbacks of a training run: evaluation, early stopping, atomic best weights, Ctrl-C.

The budget is in optimizer steps: Keras' "epoch" is one evaluation interval
of ``eval_every`` steps. Each evaluation adds ``val_accuracy`` to the Keras
logs, so EarlyStopping and ModelCheckpoint work on it as usual.
"""

import errno
import signal
import threading
import time

import numpy as np
import tensorflow as tf

from pet_keras.compat import keras
from pet_keras.io import atomic_path, is_disk_full
from pet_keras.progress import StepProgress


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that writes to a temporary file, then renames it: a
    failed or interrupted write leaves the previous best weights intact."""

    def _save_model(self, epoch, batch, logs):
        final = self.filepath
        if not self.model.distribute_strategy.extended.should_checkpoint:
            # Keras writes the other workers' copies elsewhere and deletes them
            return super()._save_model(epoch, batch, logs)
        with atomic_path(final) as tmp:
            self.filepath = tmp
            try:
                super()._save_model(epoch, batch, logs)
            finally:
                self.filepath = final


def best_weights_checkpoint(path, initial_best):
    """Saves the weights to ``path`` whenever validation accuracy beats the best so far
    (``initial_best``: the zero-shot or resumed run's), atomically."""
    return AtomicModelCheckpoint(
        path,
        monitor='val_accuracy',
        mode='max',
        save_best_only=True,
        save_weights_only=True,
        initial_value_threshold=initial_best,
    )


def last_weights_checkpoint(path):
    """Saves the weights to ``path`` after every evaluation interval, atomically: a run without
    validation keeps its last weights."""
    return AtomicModelCheckpoint(path, save_weights_only=True)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; its message says how far the run got and how to go on."""


class CtrlCAtStepEnd(keras.callbacks.Callback):
    """Ctrl-C during ``fit`` interrupts at the end of the current step. Python
    raises KeyboardInterrupt wherever it happens to be, and there (a finalizer
    of TensorFlow's, say) it can be swallowed and training go on; a second
    Ctrl-C interrupts at once."""

    def __init__(self, previous_handler):
        super().__init__()
        self.previous_handler = previous_handler
        self.pressed = False

    def press(self, signum, frame):
        self.pressed = True
        signal.signal(signal.SIGINT, self.previous_handler)

    def on_train_batch_end(self, batch, logs=None):
        if self.pressed:
            raise KeyboardInterrupt


def fit_interruptibly(model, going_on, out_dir, *args, callbacks=(), verbose=1, **kwargs):
    """``model.fit``, its progress shown in steps (``StepProgress``, where ``verbose``); Ctrl-C
    raises ``Interrupted`` naming the optimizer step reached and ``going_on``. A full disk
    under a TensorFlow writer (BackupAndRestore's, a checkpoint manager's) is an OSError
    naming ``out_dir``, the folder the run writes, with ``going_on``."""
    if verbose:
        steps = kwargs['steps_per_epoch']
        callbacks = list(callbacks) + [StepProgress(steps, steps * kwargs['epochs'])]
    previous = signal.getsignal(signal.SIGINT)
    # only where Ctrl-C raises KeyboardInterrupt (not when ignored or handled by someone else), and only
    # the main thread may set a handler
    takes_over = previous is signal.default_int_handler and threading.current_thread() is threading.main_thread()
    ctrl_c = CtrlCAtStepEnd(previous) if takes_over else None
    if ctrl_c:
        signal.signal(signal.SIGINT, ctrl_c.press)
    try:
        return model.fit(*args, callbacks=list(callbacks) + ([ctrl_c] if ctrl_c else []), verbose=0, **kwargs)
    except KeyboardInterrupt:
        raise Interrupted(
            'interrupted after step %d; %s' % (int(model.optimizer.iterations.numpy()), going_on)
        ) from None
    except tf.errors.OpError as e:
        if not is_disk_full(e):
            raise
        raise OSError(
            errno.ENOSPC,
            'No space left on device while saving the training state (free some space; %s)' % going_on,
            out_dir,
        ) from None
    finally:
        if ctrl_c:
            signal.signal(signal.SIGINT, previous)


def _finite(value):
    """A float, or None for a missing or non-finite value (strict JSON)."""
    return float(value) if value is not None and np.isfinite(value) else None


class Evaluator(keras.callbacks.Callback):
    """Validation accuracy after every interval of ``eval_every`` steps (a
    Keras epoch; ``valid=None``: the interval's loss only). A resumed run passes
    the records of the evaluations it has done as ``history``."""

    def __init__(self, scorer, valid, eval_every, best=-np.inf, history=()):
        super().__init__()
        self.scorer, self.valid, self.eval_every = scorer, valid, eval_every
        self.best = best
        self.history = list(history)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != len(self.history):
            raise RuntimeError(
                'evaluation %d began after %d recorded ones: the backup and run.json of the '
                'resumed run disagree' % (epoch + 1, len(self.history))
            )
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        record = {
            'step': (epoch + 1) * self.eval_every,
            'seconds_train': round(time.time() - self.started, 2),
            'loss': float(logs.get('loss', np.nan)),
            'masked_accuracy': _finite(logs.get('accuracy')),
        }
        if not np.isfinite(record['loss']):
            record['loss'] = None  # diverged: TerminateOnNaN stops; this interval is never the best
            self.history.append(record)
            return
        if self.valid is not None:
            logs['val_accuracy'] = record['valid'] = self.scorer.accuracy(self.valid, verbose=False)
            self.best = max(self.best, record['valid'])
        self.history.append(record)
        print(
            ' - '.join(
                ['step %d' % record['step']]
                + [
                    '%s %.4f' % (name, record[k])
                    for k, name in (('loss', 'loss'), ('masked_accuracy', 'masked-token acc'), ('valid', 'valid acc'))
                    if record.get(k) is not None
                ]
            ),
            flush=True,
        )


def best_evaluation(zero_valid, history):
    """(step, valid) of the first evaluation reaching the best validation accuracy; step 0 is the untrained model."""
    best_step, best = 0, zero_valid
    for record in history:
        if record.get('valid') is not None and record['valid'] > best:
            best_step, best = record['step'], record['valid']
    return best_step, best


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping over evaluations numbered from step 0: it first replays the
    validation accuracies the run already has (step 0's, then a resumed run's
    evaluations), so its patience counts from the run's real best, the
    untrained model included."""

    def __init__(self, past_values, **kwargs):
        super().__init__(**kwargs)
        self.past_values = list(past_values)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for evaluation, value in enumerate(self.past_values):
            super().on_epoch_end(evaluation, {self.monitor: value})

    def on_epoch_end(self, epoch, logs=None):
        # Keras numbers epochs from 0 and never stops after epoch 0; here the
        # first epoch ends with evaluation 1, which may stop a run at patience 1
        super().on_epoch_end(epoch + 1, logs)


def early_stopping(patience, past_values):
    """The callbacks that stop training after ``patience`` evaluations without
    a better validation accuracy than any of ``past_values`` (step 0's, then a
    resumed run's) or since; none for ``patience=None``, when the whole budget runs."""
    if patience is None:
        return []
    return [ResumableEarlyStopping(past_values, monitor='val_accuracy', mode='max', patience=patience)]
