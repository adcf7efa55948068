"""Training a PET model with Keras: fit, evaluate every so many steps, keep the best.

The budget (``pet_keras.budget``) is in optimizer steps: Keras' "epoch" here
is one evaluation interval of ``eval_every`` steps over an endless tf.data
stream. Before training the model is evaluated as it is (zero-shot, step 0).
Each evaluation adds ``val_accuracy`` to the Keras logs, so EarlyStopping and
ModelCheckpoint work on it as usual. The best weights are written atomically
and reloaded at the end, and test accuracy is computed once, on them. The
output folder is a checkpoint pet_keras loads like a downloaded one, plus the
pattern (pvp.json) and the metrics (results.json).

Every interval is backed up with Keras' BackupAndRestore (weights, optimizer
state, interval), and run.json keeps the run's settings, zero-shot accuracy
and evaluations so far: an interrupted run resumes from its last evaluation.
"""
import hashlib
import json
import os
import time

import numpy as np
import tensorflow as tf

from pet_keras import budget, runlock
from pet_keras.compat import keras
from pet_keras.io import atomic_path, read_json, write_json
from pet_keras.scoring import Scorer
from bert4keras.optimizers import Adam

BEST_WEIGHTS = 'best_weights.h5'  # Keras h5 by layer name
RUN_STATE = 'run.json'  # settings, training data, zero-shot and evaluations so far: what resuming needs
BACKUP = 'backup'  # keras.callbacks.BackupAndRestore's folder, removed when the run ends
# settings a resumed run may change: none of them changes the data or what the steps done mean
# (--mixed-precision changes the compute dtype only; weights and optimizer state are float32 either way)
RESUME_MAY_CHANGE = ('resume', 'steps', 'patience', 'out', 'distribute', 'tensorboard', 'mixed_precision', 'debug',
                     'verbose')
MODES = ('zero-shot', 'unsupervised', 'few-shot', 'semi-supervised')


def training_sets(mode, labeled, unlabeled):
    """(labeled, unlabeled) training examples of a mode (the blog's four experiments,
    and the classifier baseline): zero-shot trains on nothing; unsupervised is MLM
    on the unlabeled text only; few-shot uses the labeled examples; semi-supervised
    both; the classifier the labeled examples."""
    sets = {'zero-shot': ([], []), 'unsupervised': ([], unlabeled), 'few-shot': (labeled, []),
            'semi-supervised': (labeled, unlabeled), 'classifier': (labeled, [])}
    if mode not in sets:
        raise ValueError('mode must be one of %s, got %r' % (', '.join(sets), mode))
    return sets[mode]


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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; its message says how far the run got and how to go on."""


def fit_interruptibly(model, going_on, *args, **kwargs):
    """``model.fit``; Ctrl-C raises ``Interrupted`` naming the optimizer step reached and ``going_on``."""
    try:
        return model.fit(*args, **kwargs)
    except KeyboardInterrupt:
        raise Interrupted('interrupted after step %d; %s'
                          % (int(model.optimizer.iterations.numpy()), going_on)) from None


def _finite(value):
    """A float, or None for a missing or non-finite value (strict JSON)."""
    return float(value) if value is not None and np.isfinite(value) else None


class Evaluator(keras.callbacks.Callback):
    """Validation accuracy after every interval of ``eval_every`` steps (a
    Keras epoch). A resumed run passes the records of the evaluations it has
    done as ``history``."""

    def __init__(self, scorer, valid, eval_every, best=-np.inf, history=()):
        super().__init__()
        self.scorer, self.valid, self.eval_every = scorer, valid, eval_every
        self.best = best
        self.history = list(history)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != len(self.history):
            raise RuntimeError('evaluation %d began after %d recorded ones: the backup and run.json of the '
                               'resumed run disagree' % (epoch + 1, len(self.history)))
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        record = {'step': (epoch + 1) * self.eval_every, 'seconds_train': round(time.time() - self.started, 2),
                  'loss': float(logs.get('loss', np.nan)), 'masked_accuracy': _finite(logs.get('accuracy'))}
        if not np.isfinite(record['loss']):
            record['loss'] = None  # diverged: TerminateOnNaN stops; this interval is never the best
            self.history.append(record)
            return
        logs['val_accuracy'] = record['valid'] = self.scorer.accuracy(self.valid, verbose=False)
        self.best = max(self.best, record['valid'])
        self.history.append(record)
        print(' - '.join(['step %d' % record['step']] + ['%s %.4f' % (k, record[k]) for k in
                         ('loss', 'masked_accuracy', 'valid') if record.get(k) is not None]), flush=True)


def best_evaluation(zero_valid, history):
    """(step, valid) of the first evaluation reaching the best validation accuracy; step 0 is the untrained model."""
    best_step, best = 0, zero_valid
    for record in history:
        if record.get('valid') is not None and record['valid'] > best:
            best_step, best = record['step'], record['valid']
    return best_step, best


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
    """The callbacks that stop training after ``patience`` evaluations without
    a better validation accuracy (``past_values``: a resumed run's); none for
    ``patience=None``, when the whole budget runs."""
    if patience is None:
        return []
    return [ResumableEarlyStopping(past_values, monitor='val_accuracy', mode='max', patience=patience)]


def backed_up_intervals(backup_dir):
    """How many evaluation intervals (Keras epochs) the BackupAndRestore backup in ``backup_dir``
    has done (0: no backup). Keras keeps the chief's checkpoint in ``chief/`` with the last epoch
    begun (0-based)."""
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


def check_not_interrupted(out_dir):
    """Refuse ``out_dir`` when it holds an interrupted run (a backup): a new run, zero-shot
    or not, would overwrite what resuming needs."""
    done = backed_up_intervals(os.path.join(out_dir, BACKUP))
    if done:
        raise ValueError('%s holds a run interrupted after evaluation %d (continue it with --resume, or use '
                         'another --out)' % (out_dir, done))


def saved_run(out_dir, run, resume):
    """The state (run.json) of the interrupted run in ``out_dir`` that ``run``
    (its settings and training data; None: zero-shot, nothing to train)
    continues with ``resume``, its evaluations cut to those the backup holds;
    None when the run starts afresh. Refuses to start over an interrupted run
    without ``resume``, to resume a finished run, and to resume with other
    settings or training data."""
    if not resume or run is None:
        check_not_interrupted(out_dir)
        return None
    done = backed_up_intervals(os.path.join(out_dir, BACKUP))
    path = os.path.join(out_dir, RUN_STATE)
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
    if len(saved['evaluations']) < done:
        raise ValueError('%s records %d evaluations, its backup %d: cannot resume'
                         % (path, len(saved['evaluations']), done))
    if not os.path.exists(os.path.join(out_dir, BEST_WEIGHTS)):
        raise FileNotFoundError('%s: missing; cannot resume without the best weights so far'
                                % os.path.join(out_dir, BEST_WEIGHTS))
    saved['evaluations'] = saved['evaluations'][:done]  # an interval recorded after the last backup is trained again
    return saved


def run_mode(generator):
    """The PET mode a training generator's data makes: few-shot (labeled only), unsupervised
    (unlabeled only) or semi-supervised (both); zero-shot without one."""
    if generator is None:
        return 'zero-shot'
    labeled = {item.label is not None for item in generator.data}
    return 'semi-supervised' if len(labeled) == 2 else 'few-shot' if True in labeled else 'unsupervised'


def fit_pet(mlm, pvp, generator, valid, test=None, steps=budget.STEPS, eval_every=budget.EVAL_EVERY,
            patience=budget.PATIENCE, learning_rate=None, out_dir=None, settings=None, tensorboard=False,
            verbose=1, calibrate=False, resume=False, callbacks=()):
    """Train ``mlm`` on ``generator`` (a PetDataGenerator; None: zero-shot)
    for at most ``steps`` optimizer steps, evaluating validation accuracy
    every ``eval_every`` steps and keeping the weights of the best; with
    ``patience`` it stops after so many evaluations without a better one
    (``None``: the whole budget runs). ``steps=0`` only evaluates (zero-shot).
    Test accuracy is computed once, with the best weights.
    ``learning_rate`` (Adam; a float or a Keras schedule) defaults to
    ``budget.default_learning_rate`` for the run's mode and checkpoint.
    ``calibrate`` evaluates with contextual calibration (``Scorer``).
    ``callbacks``: more Keras callbacks for ``fit``.

    ``resume`` continues the interrupted run in ``out_dir`` after its last
    evaluation, with its optimizer state, history and best weights; it must
    have the same ``settings`` and training data. It replays the batch
    stream up to there, so with the same seeds (NumPy's and the generator's)
    it trains on the batches the uninterrupted run would have. Without
    ``resume`` an interrupted run in ``out_dir`` is an error.

    The model trains under the tf.distribute strategy it was built in
    (``with strategy.scope(): mlm = build_mlm(...)``); with several workers
    only the chief writes ``out_dir``, holding its lock (``runlock``) while
    it runs: another run into the same folder is refused.
    Returns the results dict (also written to ``out_dir/results.json``)."""
    budget.check(steps, eval_every, patience, learning_rate)
    if not valid:
        raise ValueError('no validation examples: the best weights are chosen on validation accuracy')
    out_dir = out_dir or 'runs/pet'
    strategy = mlm.full_model.distribute_strategy
    chief = strategy.extended.should_checkpoint  # multi-worker: as for Keras' checkpoints, the chief writes
    with runlock.locked(out_dir, hold=chief):
        started = time.time()
        settings = settings or {}
        if generator is None:
            steps = 0
        if learning_rate is None and steps:
            learning_rate = budget.default_learning_rate(run_mode(generator),
                                                         getattr(mlm, 'checkpoint_path', None))
        scorer = Scorer(mlm, pvp, calibrate=calibrate)
        results = {'settings': settings, 'pattern': pvp.to_json(), 'calibrate': calibrate,
                   'budget': {'steps': steps, 'eval_every': eval_every, 'patience': patience,
                              'learning_rate': learning_rate if isinstance(learning_rate, (int, float)) else None}}
        run = {'settings': settings, 'training_data': training_data(generator)} if steps else None
        saved = saved_run(out_dir, run, resume)
        if saved:
            zero = saved['zero_shot']
            print('resuming the run in %s after step %d' % (out_dir, len(saved['evaluations']) * eval_every))
        else:
            print('zero-shot evaluation (step 0)')
            zero = {'valid': scorer.accuracy(valid)}
            if test:
                zero['test'] = scorer.accuracy(test)
        results['zero_shot'] = zero
        print('step 0 - valid %.4f' % zero['valid'] + (' - test %.4f' % zero['test'] if test else ''))
        history = []
        if steps:
            history = train_intervals(mlm, scorer, generator, valid, steps, eval_every, patience, learning_rate,
                                      out_dir, run, saved, zero, tensorboard, verbose, callbacks)
        best_step, best_valid = best_evaluation(zero['valid'], history)
        best_test = zero.get('test')
        if test and best_step:
            print('test accuracy of the best weights (step %d)' % best_step)
            best_test = scorer.accuracy(test)
        results.update({'evaluations': history, 'best_step': best_step, 'valid': best_valid, 'test': best_test,
                        'wall_seconds': round(time.time() - started, 1)})
        if chief:
            mlm.save_checkpoint(out_dir, mlm.config, getattr(mlm, 'dict_path', None))
            pvp.save(os.path.join(out_dir, 'pvp.json'))
            write_json(os.path.join(out_dir, 'results.json'), results)
            if run:
                run['finished'] = True
                write_json(os.path.join(out_dir, RUN_STATE), run)
        print('best step %d: valid %.4f, test %s; results in %s'
              % (best_step, best_valid, '%.4f' % best_test if best_test is not None else '-',
                 os.path.join(out_dir, 'results.json')))
        return results


def train_intervals(mlm, scorer, generator, valid, steps, eval_every, patience, learning_rate, out_dir, run,
                    saved, zero, tensorboard, verbose, callbacks):
    """fit_pet's training: Keras ``fit`` over evaluation intervals, the best
    weights written to and reloaded from ``out_dir``; the evaluation records."""
    strategy = mlm.full_model.distribute_strategy
    chief = strategy.extended.should_checkpoint
    best_path = os.path.join(out_dir, BEST_WEIGHTS)
    with strategy.scope():
        model = mlm.training_model()
        model.compile(optimizer=Adam(learning_rate))
    # the logged loss and accuracy are already averaged over all replicas; Keras' default ("auto")
    # sums them again over multi-worker workers
    model.distribute_reduction_method = 'first'
    if chief and not saved:
        model.save_weights(best_path)  # step 0 is the best until an evaluation beats it
    done = saved['evaluations'] if saved else []
    best_so_far = best_evaluation(zero['valid'], done)[1]
    evaluator = Evaluator(scorer, valid, eval_every, best=best_so_far, history=done)
    run.update(zero_shot=zero, evaluations=evaluator.history, finished=False)
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
    # after the callbacks that record an interval: a crash in between trains that interval again
    fit_callbacks.append(keras.callbacks.BackupAndRestore(os.path.join(out_dir, BACKUP)))
    dataset = generator.to_dataset(random=True).skip(len(done) * eval_every)
    fit_interruptibly(model, 'the same command with --resume continues', dataset,
                      steps_per_epoch=eval_every, epochs=budget.evaluations(steps, eval_every),
                      callbacks=fit_callbacks + list(callbacks), verbose=verbose)
    if chief:
        model.load_weights(best_path)
        backup_dir = os.path.join(out_dir, BACKUP)
        if os.path.isdir(backup_dir) and not os.listdir(backup_dir):
            os.rmdir(backup_dir)  # emptied by BackupAndRestore at the end of fit
    return evaluator.history
