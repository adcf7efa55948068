"""Training a PET model with Keras: fit, evaluate every epoch, keep the best.

Before training the model is evaluated as it is (zero-shot, epoch 0). Each
epoch adds ``val_accuracy`` (and ``test_accuracy`` when validation improves)
to the Keras logs, so EarlyStopping and ModelCheckpoint work on it as usual.
The best weights are written atomically and reloaded at the end; the output
folder is a checkpoint pet_keras loads like a downloaded one, plus the
pattern (pvp.json) and the metrics (results.json).

Every epoch is backed up with Keras' BackupAndRestore (weights, optimizer
state, epoch), and run.json keeps the run's settings, zero-shot accuracy and
epochs so far: an interrupted run resumes from its last completed epoch.
"""
import hashlib
import json
import os
import time

import numpy as np
import tensorflow as tf

from pet_keras.compat import keras
from pet_keras.predict import Scorer, read_json
from bert4keras.optimizers import Adam

BEST_WEIGHTS = 'best_weights.h5'  # Keras h5 by layer name
RUN_STATE = 'run.json'  # settings, training data, zero-shot and epochs so far: what resuming needs
BACKUP = 'backup'  # keras.callbacks.BackupAndRestore's folder, removed when the run ends
# settings a resumed run may change: none of them changes the data or what the epochs done mean
# (--mixed-precision changes the compute dtype only; weights and optimizer state are float32 either way)
RESUME_MAY_CHANGE = ('resume', 'epochs', 'out', 'distribute', 'tensorboard', 'mixed_precision')
MODES = ('zero-shot', 'unsupervised', 'few-shot', 'semi-supervised')


def training_sets(mode, labeled, unlabeled):
    """(labeled, unlabeled) training examples of a mode (the blog's four experiments):
    zero-shot trains on nothing; unsupervised is MLM on the unlabeled text only;
    few-shot uses the labeled examples; semi-supervised both."""
    if mode not in MODES:
        raise ValueError('mode must be one of %s, got %r' % (', '.join(MODES), mode))
    return {'zero-shot': ([], []), 'unsupervised': ([], unlabeled),
            'few-shot': (labeled, []), 'semi-supervised': (labeled, unlabeled)}[mode]


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that writes to a temporary file, then renames it: a
    failed or interrupted write leaves the previous best weights intact."""

    def _save_model(self, epoch, batch, logs):
        final = self.filepath
        tmp = os.path.join(os.path.dirname(final), '.tmp-' + os.path.basename(final))
        # Keras writes the other workers' copies elsewhere and deletes them: only the chief's is renamed
        chief = self.model.distribute_strategy.extended.should_checkpoint
        self.filepath = tmp
        try:
            super()._save_model(epoch, batch, logs)
        except BaseException:
            if chief and os.path.exists(tmp):
                os.remove(tmp)  # a partial file, never renamed
            raise
        finally:
            self.filepath = final
        if chief and os.path.exists(tmp):
            os.replace(tmp, final)


def _finite(value):
    """A float, or None for a missing or non-finite value (strict JSON)."""
    return float(value) if value is not None and np.isfinite(value) else None


class Evaluator(keras.callbacks.Callback):
    """Validation accuracy every epoch; test accuracy at each new best.
    A resumed run passes the records of the epochs it has done as ``history``."""

    def __init__(self, scorer, valid, test=None, best=-np.inf, history=()):
        super().__init__()
        self.scorer, self.valid, self.test = scorer, valid, test
        self.best = best
        self.history = list(history)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != len(self.history):
            raise RuntimeError('epoch %d began after %d recorded epochs: the backup and run.json of the '
                               'resumed run disagree' % (epoch + 1, len(self.history)))
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        record = {'epoch': epoch + 1, 'seconds_train': round(time.time() - self.started, 2),
                  'loss': float(logs.get('loss', np.nan)), 'masked_accuracy': _finite(logs.get('accuracy'))}
        if not np.isfinite(record['loss']):
            record['loss'] = None  # diverged: TerminateOnNaN stops; this epoch is never the best
            self.history.append(record)
            return
        logs['val_accuracy'] = record['valid'] = self.scorer.accuracy(self.valid, verbose=False)
        if record['valid'] > self.best:
            self.best = record['valid']
            if self.test:
                logs['test_accuracy'] = record['test'] = self.scorer.accuracy(self.test, verbose=False)
        self.history.append(record)
        print(' - '.join(['epoch %d' % record['epoch']] + ['%s %.4f' % (k, record[k]) for k in
                         ('loss', 'masked_accuracy', 'valid', 'test') if record.get(k) is not None]), flush=True)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that first replays the monitored values of the epochs a
    resumed run has done, so its patience counts from the run's real best."""

    def __init__(self, past_values=(), **kwargs):
        super().__init__(**kwargs)
        self.past_values = list(past_values)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for epoch, value in enumerate(self.past_values):
            super().on_epoch_end(epoch, {self.monitor: value})


def early_stopping(patience, past_values=()):
    """The callbacks that stop training after ``patience`` epochs without a
    better validation accuracy (``past_values``: a resumed run's); none for
    ``patience=None``, when every epoch runs."""
    if patience is None:
        return []
    return [ResumableEarlyStopping(past_values, monitor='val_accuracy', mode='max', patience=patience)]


def write_json(path, value):
    """Strict JSON to ``path`` through a temporary file and a rename: never half-written."""
    tmp = os.path.join(os.path.dirname(path), '.tmp-' + os.path.basename(path))
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(value, f, ensure_ascii=False, indent=2, allow_nan=False)
    os.replace(tmp, path)


def backed_up_epochs(backup_dir):
    """How many epochs the BackupAndRestore backup in ``backup_dir`` has done (0: no backup).
    Keras keeps the chief's checkpoint in ``chief/`` with the last epoch begun (0-based)."""
    latest = tf.train.latest_checkpoint(os.path.join(backup_dir, 'chief'))
    if latest is None:
        return 0
    return int(tf.train.load_variable(latest, 'ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE')) + 1


def training_data(generator):
    """What fixes a run's batches: the encoded training examples (labeled and
    unlabeled, so the data split), the batch size and the masking rate."""
    digest = hashlib.sha256()
    for item in generator.data:
        digest.update(json.dumps([[int(t) for t in item.token_ids], [int(s) for s in item.segment_ids],
                                  None if item.label is None else int(item.label)]).encode())
    return {'examples': len(generator.data), 'sha256': digest.hexdigest(), 'batch_size': generator.batch_size,
            'mask_rate': generator.mask_rate}


def changes(saved, run, may_change):
    """How a run's settings and training data differ from a saved run's,
    leaving out the settings in ``may_change``: a list of 'what: then, now'."""
    old, new = saved['settings'], json.loads(json.dumps(run['settings']))
    changed = ['%s: %s, now %s' % (key, json.dumps(old.get(key), ensure_ascii=False),
                                   json.dumps(new.get(key), ensure_ascii=False))
               for key in sorted(set(old) | set(new)) if key not in may_change and old.get(key) != new.get(key)]
    if saved['training_data'] != run['training_data']:
        changed.append('training data: %s, now %s' % (json.dumps(saved['training_data']),
                                                       json.dumps(run['training_data'])))
    return changed


def finished_run(out_dir, settings, generator, may_change=RESUME_MAY_CHANGE):
    """The results of the run ``fit_pet`` finished in ``out_dir`` with these
    settings and this generator's training data, or None when it holds no
    finished run. Refuses a finished run made with other settings or data:
    training again would overwrite it."""
    path = os.path.join(out_dir, RUN_STATE)
    saved = read_json(path) if os.path.exists(path) else {}
    if not saved.get('finished'):
        return None
    changed = changes(saved, {'settings': settings, 'training_data': training_data(generator)}, may_change)
    if changed:
        raise ValueError('%s holds a finished run with other settings or training data (%s): use another folder'
                         % (out_dir, '; '.join(changed)))
    return read_json(os.path.join(out_dir, 'results.json'))


def saved_run(out_dir, run, resume):
    """The state (run.json) of the interrupted run in ``out_dir`` that ``run``
    (its settings and training data) continues with ``resume``, its epochs cut
    to those the backup holds; None when the run starts afresh. Refuses to
    start over an interrupted run without ``resume``, to resume a finished run,
    and to resume with other settings or training data."""
    done = backed_up_epochs(os.path.join(out_dir, BACKUP))
    path = os.path.join(out_dir, RUN_STATE)
    if not resume:
        if done:
            raise ValueError('%s holds a run interrupted after epoch %d: continue it with --resume (fit_pet(..., '
                             'resume=True)), or write to another folder' % (out_dir, done))
        return None
    if not os.path.exists(path):
        if done:
            raise ValueError('%s: a backup (%s/) but no %s with the run\'s settings; cannot resume'
                             % (out_dir, BACKUP, RUN_STATE))
        print('nothing to resume in %s: starting the run' % out_dir)
        return None
    saved = read_json(path)
    if saved['finished']:
        raise ValueError('%s: the run finished (results.json); there is nothing to resume' % out_dir)
    changed = changes(saved, run, RESUME_MAY_CHANGE)
    if changed:
        raise ValueError('cannot resume the run in %s with other settings (they fix the data split and the '
                         'training); different from %s: %s' % (out_dir, path, '; '.join(changed)))
    if len(saved['epochs']) < done:
        raise ValueError('%s records %d epochs, its backup %d: cannot resume' % (path, len(saved['epochs']), done))
    if not os.path.exists(os.path.join(out_dir, BEST_WEIGHTS)):
        raise FileNotFoundError('%s: missing; cannot resume without the best weights so far'
                                % os.path.join(out_dir, BEST_WEIGHTS))
    saved['epochs'] = saved['epochs'][:done]  # an epoch recorded after the last backup is trained again
    return saved


def fit_pet(mlm, pvp, generator, valid, test=None, epochs=10, learning_rate=1e-5, patience=None,
            out_dir=None, settings=None, tensorboard=False, verbose=1, calibrate=False, jit_compile=False,
            resume=False, callbacks=()):
    """Train ``mlm`` on ``generator`` (a PetDataGenerator) for at most
    ``epochs`` epochs, keeping the weights of the best validation accuracy;
    with ``patience`` it stops early when that has not improved for so many
    epochs (default: every epoch runs, as in the reference — a few-shot
    trajectory on a small model can dip for several epochs before it climbs).
    ``epochs=0`` only evaluates (zero-shot).
    ``calibrate`` evaluates with contextual calibration (``Scorer``).
    ``jit_compile`` compiles the training step with XLA (each new batch shape compiles anew).
    ``callbacks``: more Keras callbacks for ``fit``.

    ``resume`` continues the interrupted run in ``out_dir`` after its last
    completed epoch, with its optimizer state, history and best weights; it
    must have the same ``settings`` and training data. It replays the batch
    stream up to that epoch, so with the same seeds (NumPy's and the
    generator's) it trains on the batches the uninterrupted run would have.
    Without ``resume`` an interrupted run in ``out_dir`` is an error.

    The model trains under the tf.distribute strategy it was built in
    (``with strategy.scope(): mlm = build_mlm(...)``); with several workers
    only the chief writes ``out_dir``.
    Returns the results dict (also written to ``out_dir/results.json``)."""
    started = time.time()
    out_dir = out_dir or 'runs/pet'
    os.makedirs(out_dir, exist_ok=True)
    strategy = mlm.full_model.distribute_strategy
    chief = strategy.extended.should_checkpoint  # multi-worker: as for Keras' checkpoints, the chief writes
    settings = settings or {}
    scorer = Scorer(mlm, pvp, calibrate=calibrate)
    results = {'settings': settings, 'pattern': pvp.to_json(), 'calibrate': calibrate}
    run = {'settings': settings, 'training_data': training_data(generator)} if epochs > 0 else None
    saved = saved_run(out_dir, run, resume) if run else None
    if saved:
        zero = saved['zero_shot']
        print('resuming the run in %s after epoch %d' % (out_dir, len(saved['epochs'])))
    else:
        print('zero-shot evaluation (epoch 0)')
        zero = {'valid': scorer.accuracy(valid)}
        if test:
            zero['test'] = scorer.accuracy(test)
    results['zero_shot'] = zero
    print('epoch 0 - valid %.4f' % zero['valid'] + (' - test %.4f' % zero['test'] if test else ''))
    best_path = os.path.join(out_dir, BEST_WEIGHTS)
    history = []
    best_epoch, best = 0, dict(zero)
    if epochs > 0:
        with strategy.scope():
            model = mlm.training_model()
            model.compile(optimizer=Adam(learning_rate), jit_compile=jit_compile)
        # the logged loss and accuracy are already averaged over all replicas; Keras' default ("auto")
        # sums them again over multi-worker workers
        model.distribute_reduction_method = 'first'
        if chief and not saved:
            model.save_weights(best_path)  # epoch 0 is the best until an epoch beats it
        done = saved['epochs'] if saved else []
        best_so_far = max([zero['valid']] + [r['valid'] for r in done if r.get('valid') is not None])
        evaluator = Evaluator(scorer, valid, test, best=best_so_far, history=done)
        run.update(zero_shot=zero, epochs=evaluator.history, finished=False)
        state_path = os.path.join(out_dir, RUN_STATE)

        def record_run(epoch=None, logs=None):
            if chief:
                write_json(state_path, run)

        record_run()
        fit_callbacks = [
            evaluator,
            AtomicModelCheckpoint(best_path, monitor='val_accuracy', mode='max', save_best_only=True,
                                  save_weights_only=True, initial_value_threshold=best_so_far),
            keras.callbacks.LambdaCallback(on_epoch_end=record_run),
            keras.callbacks.TerminateOnNaN()] + early_stopping(patience, [r.get('valid') for r in done])
        if tensorboard:
            fit_callbacks.append(keras.callbacks.TensorBoard(os.path.join(out_dir, 'tensorboard')))
        # after the callbacks that record an epoch: a crash in between trains that epoch again
        fit_callbacks.append(keras.callbacks.BackupAndRestore(os.path.join(out_dir, BACKUP)))
        dataset = generator.to_dataset(random=True).skip(len(done) * len(generator))
        model.fit(dataset, steps_per_epoch=len(generator), epochs=epochs, callbacks=fit_callbacks + list(callbacks),
                  verbose=verbose)
        history = evaluator.history
        if chief:
            model.load_weights(best_path)
            backup_dir = os.path.join(out_dir, BACKUP)
            if os.path.isdir(backup_dir) and not os.listdir(backup_dir):
                os.rmdir(backup_dir)  # emptied by BackupAndRestore at the end of fit
        for record in history:
            if record.get('valid') is not None and record['valid'] > best['valid']:
                best_epoch, best = record['epoch'], {'valid': record['valid'], 'test': record.get('test')}
    results.update({'epochs': history, 'best_epoch': best_epoch, 'valid': best['valid'],
                    'test': best.get('test'), 'wall_seconds': round(time.time() - started, 1)})
    if chief:
        mlm.save_checkpoint(out_dir, mlm.config, getattr(mlm, 'dict_path', None))
        pvp.save(os.path.join(out_dir, 'pvp.json'))
        write_json(os.path.join(out_dir, 'results.json'), results)
        if run:
            run['finished'] = True
            record_run()
    print('best epoch %d: valid %.4f, test %s; results in %s'
          % (best_epoch, best['valid'], '%.4f' % best['test'] if best.get('test') is not None else '-',
             os.path.join(out_dir, 'results.json')))
    return results
