"""Bad input refused before any work, one run per output folder, one line per
user error: the library's checks (fit_pet, fit_classifier, the run lock, the
checkpoint check) and the scripts' (pet_keras.cli), on tiny models and data."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
import os
import re
import runpy
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pet_keras import classifier, cli, model, runlock
from pet_keras.classifier import build_classifier, fit_classifier
from pet_keras.compat import keras, write_checkpoint
from pet_keras.batching import PetDataGenerator
from pet_keras.callbacks import Interrupted, fit_interruptibly
from pet_keras.model import build_mlm, checkpoint_variables
from pet_keras.runstate import BACKUP, RUN_STATE, backed_up_intervals
from pet_keras.train import fit_pet
from test_predict_train import synthetic_setup
from test_scripts import run_script
from tiny import make_mlm, write_vocab

REPO = Path(__file__).resolve().parents[1]
RUNLOCK = REPO / 'pet_keras' / 'runlock.py'
# holds the run lock of argv[1] until its stdin closes, loading runlock.py alone (no TensorFlow: fast)
HOLDER = (
    'import importlib.util, sys\n'
    'spec = importlib.util.spec_from_file_location("runlock", %r)\n'
    'runlock = importlib.util.module_from_spec(spec); spec.loader.exec_module(runlock)\n'
    'with runlock.locked(sys.argv[1]):\n'
    '    print("locked", flush=True); sys.stdin.read()\n' % str(RUNLOCK)
)


def listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else None


class Holder:
    """Another process holding ``folder``'s run lock until ``release()``."""

    def __init__(self, folder):
        self.process = subprocess.Popen(
            [sys.executable, '-c', HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout.readline() == 'locked\n'
        self.pid = self.process.pid

    def release(self):
        self.process.communicate('', timeout=60)
        assert self.process.returncode == 0


# ---------------------------------------------------------------- the run lock


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    folder = tmp_path / 'run'
    holder = Holder(folder)
    try:
        with pytest.raises(
            runlock.FolderLocked, match=r'run: another run \(process %d\) is writing there' % holder.pid
        ):
            with runlock.locked(str(folder)):
                pass
        with pytest.raises(runlock.FolderLocked, match='process %d' % holder.pid):
            runlock.check(str(folder))
    finally:
        holder.release()
    assert not folder.exists()  # released: its lock file, and the folder it made, are gone
    with runlock.locked(str(folder)):
        with runlock.locked(str(folder)):  # re-entrant within a process
            runlock.check(str(folder))
        assert listing(folder) == [runlock.LOCK]
    assert not folder.exists()


def test_the_lock_is_released_on_an_error_and_a_new_empty_folder_removed(tmp_path):
    folder = tmp_path / 'new'
    with pytest.raises(KeyError):
        with runlock.locked(str(folder)):
            assert listing(folder) == [runlock.LOCK]
            raise KeyError('anything')
    assert not folder.exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over_saying_so(tmp_path, capsys):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    pid = int(dead.stdout)
    folder = tmp_path / 'run'
    folder.mkdir()
    (folder / runlock.LOCK).write_text('%d\n' % pid)  # a run killed with -9 leaves its lock file
    (folder / ('.tmp-%d-run.json' % pid)).write_text('{"half')  # and what it was writing
    (folder / 'run.json').write_text('{}')
    with runlock.locked(str(folder)):
        assert (folder / runlock.LOCK).read_text() == '%d\n' % os.getpid()
        assert listing(folder) == [runlock.LOCK, 'run.json']
    assert 'taking over the lock of process %d' % pid in capsys.readouterr().err
    assert listing(folder) == ['run.json']


def test_fit_pet_and_fit_classifier_refuse_a_locked_folder(tok, tmp_path):
    train, valid, test, pvp, mlm = synthetic_setup(tok, tmp_path)
    out = tmp_path / 'run'
    holder = Holder(out)
    try:
        generator = PetDataGenerator(pvp, train[:16], batch_size=16, seed=0)
        with pytest.raises(runlock.FolderLocked, match='process %d' % holder.pid):
            fit_pet(mlm, pvp, generator, valid, steps=2, eval_every=2, out_dir=str(out), verbose=0)
        with pytest.raises(runlock.FolderLocked, match='process %d' % holder.pid):
            fit_pet(mlm, pvp, None, valid, steps=0, out_dir=str(out), verbose=0)
        mlm.save_checkpoint(str(tmp_path / 'ckpt'), mlm.config, str(tmp_path / 'vocab.txt'))
        ckpt = tmp_path / 'ckpt'
        model = build_classifier(str(ckpt / 'bert_config.json'), str(ckpt / 'bert_model.ckpt'), 2)
        with pytest.raises(runlock.FolderLocked, match='process %d' % holder.pid):
            fit_classifier(model, tok, pvp.labels, train[:8], valid, steps=2, eval_every=2, out_dir=str(out), verbose=0)
        assert listing(out) == [runlock.LOCK]  # nothing written beside the holder's lock
    finally:
        holder.release()


# ---------------------------------------------------------------- refused before any work


@pytest.mark.parametrize('learning_rate', [float('nan'), float('inf'), -1e-3])
def test_fit_pet_refuses_a_learning_rate_that_is_not_finite_and_positive(tok, tmp_path, learning_rate):
    train, valid, test, pvp, mlm = synthetic_setup(tok, tmp_path)
    generator = PetDataGenerator(pvp, train, batch_size=16, seed=0)
    with pytest.raises(ValueError, match='learning_rate must be a finite number >= 0, got'):
        fit_pet(
            mlm,
            pvp,
            generator,
            valid,
            steps=2,
            eval_every=2,
            learning_rate=learning_rate,
            out_dir=str(tmp_path / 'out'),
            verbose=0,
        )
    assert not (tmp_path / 'out').exists()


def test_fit_pet_and_fit_classifier_refuse_empty_validation_sets(tok, tmp_path):
    train, valid, test, pvp, mlm = synthetic_setup(tok, tmp_path)
    with pytest.raises(ValueError, match='no validation examples'):
        fit_pet(mlm, pvp, PetDataGenerator(pvp, train, batch_size=16), [], out_dir=str(tmp_path / 'out'), verbose=0)
    with pytest.raises(ValueError, match='no validation examples'):
        fit_classifier(None, tok, pvp.labels, train, [], steps=2, out_dir=str(tmp_path / 'out'))
    with pytest.raises(ValueError, match='no training examples'):
        fit_classifier(None, tok, pvp.labels, [], valid, steps=2, out_dir=str(tmp_path / 'out'))
    assert not (tmp_path / 'out').exists()


class CtrlCInAFinalizer:
    """Sends this process SIGINT, as Ctrl-C does, from ``__del__``: where a
    KeyboardInterrupt raised at once would be swallowed ("Exception ignored")."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)


class CtrlCAtStep(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.step:
            CtrlCInAFinalizer()  # dropped at once


def test_ctrl_c_anywhere_interrupts_fit_at_the_end_of_the_step_and_restores_the_handler():
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer='sgd', loss='mse')
    data = tf.data.Dataset.from_tensors((np.ones((4, 2)), np.ones((4, 1)))).repeat()
    # fit_interruptibly takes over only from Python's own Ctrl-C handler: set it, whatever ran before
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(Interrupted, match=r'^interrupted after step 3; go on$'):
            fit_interruptibly(
                model, 'go on', 'out', data, steps_per_epoch=10, epochs=1, verbose=0, callbacks=[CtrlCAtStep(3)]
            )
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


class StopAfterFirstEvaluation(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


def test_a_zero_shot_run_refuses_a_folder_holding_an_interrupted_run(tok, tmp_path):
    train, valid, test, pvp, mlm = synthetic_setup(tok, tmp_path)
    out = tmp_path / 'run'
    generator = PetDataGenerator(pvp, train, batch_size=16, seed=0)
    with pytest.raises(KeyboardInterrupt, match=r'^interrupted after step 8; the same command with --resume'):
        fit_pet(
            mlm,
            pvp,
            generator,
            valid,
            steps=40,
            eval_every=8,
            learning_rate=1e-3,
            out_dir=str(out),
            verbose=0,
            callbacks=[StopAfterFirstEvaluation()],
        )
    before = listing(out)
    assert BACKUP in before and RUN_STATE in before and runlock.LOCK not in before
    with pytest.raises(ValueError, match=r'holds a run interrupted after evaluation 1 \(continue it with --resume'):
        fit_pet(mlm, pvp, None, valid, test, steps=0, out_dir=str(out), verbose=0)
    assert listing(out) == before


# ---------------------------------------------------------------- an incomplete checkpoint


def test_a_truncated_checkpoint_is_named_incomplete(tmp_path):
    prefix = str(tmp_path / 'bert_model.ckpt')
    write_checkpoint(prefix, {'a': np.ones((4, 3), 'float32'), 'b': np.arange(5, dtype='int64')})
    assert checkpoint_variables(prefix) == {'a': (4, 3), 'b': (5,)}
    data = prefix + '.data-00000-of-00001'
    assert os.path.getsize(data) == 4 * 3 * 4 + 5 * 8  # the tensors' bytes, back to back
    with open(data, 'r+b') as f:
        f.truncate(47)
    with pytest.raises(
        ValueError,
        match=r'bert_model.ckpt.data-00000-of-00001: incomplete checkpoint: 47 bytes '
        r'of the 88 its .index lists',
    ):
        checkpoint_variables(prefix)
    os.remove(data)
    with pytest.raises(ValueError, match=r'bert_model.ckpt.data-\*: incomplete checkpoint: 0 bytes'):
        checkpoint_variables(prefix)


def test_build_mlm_refuses_a_truncated_checkpoint_before_bert4keras_reads_it(tok, tmp_path):
    mlm = make_mlm(len(tok._token_dict), tmp_path / 'build')
    mlm.save_checkpoint(str(tmp_path / 'ckpt'), mlm.config, write_vocab(tmp_path / 'vocab.txt'))
    data = tmp_path / 'ckpt' / 'bert_model.ckpt.data-00000-of-00001'
    with open(data, 'r+b') as f:
        f.truncate(data.stat().st_size - 1)
    with pytest.raises(ValueError, match='incomplete checkpoint'):
        build_mlm(str(tmp_path / 'ckpt' / 'bert_config.json'), str(tmp_path / 'ckpt' / 'bert_model.ckpt'))


# ---------------------------------------------------------------- the scripts: flags


def parse(*flags):
    return cli.script_parser('test', {'P1': '____满意。{text}'}, 'P1', 'data').parse_args(list(flags))


@pytest.mark.parametrize(
    'flags, message',
    [
        (('--batch-size', '0'), 'argument --batch-size: must be a whole number >= 1, got 0'),
        (('--batch-size', '-2'), 'argument --batch-size: must be a whole number >= 1, got -2'),
        (('--lr', 'nan'), r'argument --lr: must be a number in \(0, inf\), got nan'),
        (('--lr', 'inf'), r'argument --lr: must be a number in \(0, inf\), got inf'),
        (('--lr', '0'), r'argument --lr: must be a number in \(0, inf\), got 0'),
        (('--mask-rate', '2'), r'argument --mask-rate: must be a number in \[0, 1\), got 2'),
        (('--mask-rate', '1'), r'argument --mask-rate: must be a number in \[0, 1\), got 1'),
        (('--labeled-fraction', '0'), r'argument --labeled-fraction: must be a number in \(0, 1\], got 0'),
        (('--maxlen', '0'), 'argument --maxlen: must be a whole number >= 1, got 0'),
        (('--steps', '-1'), 'argument --steps: must be a whole number >= 0, got -1'),
        (('--eval-every', '0'), 'argument --eval-every: must be a whole number >= 1, got 0'),
        (('--patience', '-1'), 'argument --patience: must be a whole number >= 0, got -1'),
        (('--steps', 'many'), "argument --steps: invalid whole number value: 'many'"),
        (('--labeled-share', '1'), r'argument --labeled-share: must be a number in \(0, 1\), got 1'),
        (('--labeled-share', 'half'), "argument --labeled-share: invalid share value: 'half'"),
    ],
)
def test_numeric_flags_out_of_range_are_one_line_errors(capsys, flags, message):
    with pytest.raises(SystemExit) as info:
        parse(*flags)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: ') and err.endswith(' --help lists the flags)\n')
    assert re.search(message, err), err


def test_in_range_flags_parse():
    args = parse('--lr', '1e-4', '--mask-rate', '0', '--labeled-fraction', '1', '--patience', '0', '--steps', '0')
    assert (args.lr, args.mask_rate, args.labeled_fraction, args.patience, args.steps) == (1e-4, 0, 1, 0, 0)
    assert parse('--labeled-share', '0.5').labeled_share == 0.5
    assert parse('--labeled-share', 'natural').labeled_share is None


# ---------------------------------------------------------------- the scripts: runs on tiny data


@pytest.fixture(scope='module')
def checkpoint(tok, tmp_path_factory):
    """A tiny random BERT over the tests' tiny vocabulary, as a Google-format folder."""
    folder = tmp_path_factory.mktemp('reliability')
    mlm = make_mlm(len(tok._token_dict), folder / 'build', hidden=32, layers=1, max_position=64)
    mlm.save_checkpoint(str(folder / 'ckpt'), mlm.config, write_vocab(folder / 'vocab.txt'))
    return folder / 'ckpt'


def sentiment_data(folder, train=None, valid=None, rows=(24, 6, 6)):
    """sentiment.{train,valid,test}.data of random tiny-vocabulary texts (``train``,
    ``valid``: that file's text instead)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    pool = list('我你他她们这那有在人大小上中来去说到天年日月水火山石木花草风雨春夏秋冬')
    for split, n, text in zip(('train', 'valid', 'test'), rows, (train, valid, None)):
        text = (
            text if text is not None else ''.join(''.join(rng.choice(pool, 8)) + '\t%d\n' % (i % 2) for i in range(n))
        )
        (folder / ('sentiment.%s.data' % split)).write_text(text, encoding='utf-8')
    return folder


def forbid_building_models(monkeypatch):
    """From here on, building a model fails the test: a refusal must come before any."""

    def build_transformer_model(*args, **kwargs):
        raise AssertionError('a model was built before the refusal')

    for module in (model, classifier):
        monkeypatch.setattr(module, 'build_transformer_model', build_transformer_model)


def run_in_process(monkeypatch, capsys, script, *flags):
    """A script run in this process (no TensorFlow start-up): (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, 'argv', [script] + [str(f) for f in flags])
    try:
        runpy.run_path(str(REPO / 'scripts' / script), run_name='__main__')
        code = 0
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def short_run(checkpoint, data, out):
    """sentiment.py's flags for a 2-step few-shot run on ``data`` into ``out`` (later flags override)."""
    budget = '--labeled-fraction 0.5 --steps 2 --eval-every 2'.split()
    return ['--checkpoint-dir', checkpoint, '--data-dir', data, '--out', out] + budget


def one_error_line(err):
    lines = err.strip().splitlines()
    assert 'Traceback' not in err and lines[-1].startswith('error: '), err
    return lines[-1]


@pytest.mark.parametrize(
    'case, flags, message',
    [
        (
            'empty validation file',
            {'valid': ''},
            r'^error: \S+sentiment.valid.data: no validation examples \(0 blank rows',
        ),
        (
            'blank-only training file',
            {'train': '\n  \n\t\n'},
            r'^error: \S+sentiment.train.data: no labeled training rows for --mode few-shot \(3 blank rows; add rows',
        ),
        (
            'few-shot with --steps 0',
            ('--steps', 0),
            r'^error: --steps 0: --mode few-shot trains, so it needs at least one step',
        ),
        (
            'semi-supervised, every row labeled',
            ('--mode', 'semi-supervised', '--labeled-fraction', 1),
            r'^error: \S+sentiment.train.data: no unlabeled training rows for --mode semi-supervised '
            r'\(--labeled-fraction 1 keeps all 24 rows labeled',
        ),
        ('classifier with --steps 0', ('--mode', 'classifier', '--steps', 0), r'^error: --steps 0: --mode classifier'),
        (
            'a pattern naming a field the task lacks',
            ('--pattern', '____{txt}'),
            r"^error: --pattern '____\{txt\}' names \{txt\}, not a field of this task \(use its fields: \{text\}\)$",
        ),
    ],
)
def test_the_script_refuses_data_or_budget_a_run_cannot_use(
    checkpoint, tmp_path, monkeypatch, capsys, case, flags, message
):
    data = sentiment_data(tmp_path / 'data', **(flags if isinstance(flags, dict) else {}))
    out = tmp_path / 'out'
    forbid_building_models(monkeypatch)
    extra = flags if isinstance(flags, tuple) else ()
    code, _, err = run_in_process(monkeypatch, capsys, 'sentiment.py', *short_run(checkpoint, data, out), *extra)
    assert code == 2, err
    assert re.search(message, one_error_line(err)), err
    assert not out.exists()  # refused before anything was written


def test_blank_rows_are_counted_per_file(checkpoint, tmp_path, monkeypatch, capsys):
    data = sentiment_data(tmp_path / 'data', valid='春天\t1\n\n秋天\t0\n  \n')
    code, stdout, err = run_in_process(
        monkeypatch,
        capsys,
        'sentiment.py',
        '--checkpoint-dir',
        checkpoint,
        '--data-dir',
        data,
        '--mode',
        'zero-shot',
        '--maxlen',
        16,
        '--out',
        tmp_path / 'out',
    )
    assert code == 0, err
    assert '%s: 2 blank rows skipped' % (data / 'sentiment.valid.data') in stdout
    assert 'sentiment.train.data: ' not in stdout and 'sentiment.test.data: ' not in stdout


def test_tensorboard_flag_writes_event_files(checkpoint, tmp_path, monkeypatch, capsys):
    out = tmp_path / 'out'
    flags = short_run(checkpoint, sentiment_data(tmp_path / 'data'), out)
    code, _, err = run_in_process(monkeypatch, capsys, 'sentiment.py', *flags, '--maxlen', 16, '--tensorboard')
    assert code == 0, err
    events = list((out / 'tensorboard').rglob('events.out.tfevents.*'))
    assert events and all(path.stat().st_size > 0 for path in events)


def can_write(folder):
    try:
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def test_an_unwritable_or_file_out_is_refused_at_start_up(checkpoint, tmp_path, monkeypatch, capsys):
    data = sentiment_data(tmp_path / 'data')
    afile = tmp_path / 'afile'
    afile.write_text('x')
    forbid_building_models(monkeypatch)
    code, _, err = run_in_process(
        monkeypatch, capsys, 'sentiment.py', '--checkpoint-dir', checkpoint, '--data-dir', data, '--out', afile
    )
    assert code == 2 and one_error_line(err) == 'error: %s: it is a file, not a folder (choose another --out)' % afile
    code, _, err = run_in_process(
        monkeypatch, capsys, 'sentiment.py', '--checkpoint-dir', checkpoint, '--data-dir', data, '--out', afile / 'run'
    )
    assert code == 2 and 'is a file, not a folder' in one_error_line(err)
    unwritable = tmp_path / 'ro'
    unwritable.mkdir(mode=0o555)
    if can_write(unwritable):  # root writes anywhere, but not in /sys
        unwritable = Path('/sys')
        if not unwritable.is_dir() or can_write(unwritable):
            pytest.skip('no unwritable folder here')
    code, _, err = run_in_process(
        monkeypatch,
        capsys,
        'sentiment.py',
        '--checkpoint-dir',
        checkpoint,
        '--data-dir',
        data,
        '--out',
        unwritable / 'run',
    )
    assert code == 2 and re.match(
        r'error: \S+/run: cannot write in \S+ \(.+; choose another --out\)$', one_error_line(err)
    ), err


def test_a_truncated_checkpoint_is_one_line(checkpoint, tmp_path, monkeypatch, capsys):
    copy = tmp_path / 'ckpt'
    copy.mkdir()
    for path in checkpoint.iterdir():
        (copy / path.name).write_bytes(
            path.read_bytes()[:-100] if path.name.startswith('bert_model.ckpt.data') else path.read_bytes()
        )
    forbid_building_models(monkeypatch)
    code, _, err = run_in_process(
        monkeypatch,
        capsys,
        'sentiment.py',
        '--checkpoint-dir',
        copy,
        '--data-dir',
        sentiment_data(tmp_path / 'data'),
        '--mode',
        'zero-shot',
        '--out',
        tmp_path / 'out',
    )
    assert code == 2
    assert re.match(
        r'error: \S+bert_model.ckpt.data-00000-of-00001: incomplete checkpoint: \d+ bytes '
        r'of the \d+ its .index lists \(copy or download it again\)$',
        one_error_line(err),
    )
    assert not (tmp_path / 'out').exists()


def test_debug_shows_the_traceback(checkpoint, tmp_path, monkeypatch, capsys):
    data = sentiment_data(tmp_path / 'data', valid='')
    flags = ('--checkpoint-dir', checkpoint, '--data-dir', data, '--out', tmp_path / 'out')
    code, _, err = run_in_process(monkeypatch, capsys, 'sentiment.py', *flags, '--debug')
    assert code == 2 and 'Traceback' in err and 'in check_data' in err
    assert err.strip().splitlines()[-1].startswith('error: ')
    monkeypatch.setenv('PET_KERAS_DEBUG', '1')
    code, _, err = run_in_process(monkeypatch, capsys, 'sentiment.py', *flags)
    assert code == 2 and 'Traceback' in err


def test_pretrain_and_the_other_scripts_give_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = run_in_process(
        monkeypatch, capsys, 'pretrain.py', '--out', tmp_path / 'mlm', '--corpus', tmp_path / 'missing.txt'
    )
    assert code == 2 and one_error_line(err) == 'error: %s: No such file or directory' % (tmp_path / 'missing.txt')
    code, _, err = run_in_process(monkeypatch, capsys, 'pretrain.py', '--out', tmp_path / 'mlm', '--lr', 'nan')
    assert code == 2 and one_error_line(err).startswith('error: argument --lr: must be a number')
    for script in ('news.py', 'pair.py'):
        code, _, err = run_in_process(
            monkeypatch, capsys, script, '--data-dir', tmp_path / 'nowhere', '--out', tmp_path / 'out'
        )
        assert code == 2 and one_error_line(err) == 'error: %s has none of %s' % (
            tmp_path / 'nowhere',
            'train_few_all.json, train.json'
            if script == 'news.py'
            else 'train_few_all.json, train.json, train.tsv, train.txt',
        )
    code, _, err = run_in_process(monkeypatch, capsys, 'sentiment_ensemble.py', '--temperature', '0')
    assert code == 2 and 'argument --temperature: must be a number in (0, inf), got 0' in one_error_line(err)


# ---------------------------------------------------------------- a real second process, Ctrl-C, --resume


def evaluations(out):
    try:
        return len(json.loads((out / RUN_STATE).read_text(encoding='utf-8'))['evaluations'])
    except (OSError, ValueError):
        return 0


def test_second_run_ctrl_c_zero_shot_and_resume(checkpoint, tmp_path, monkeypatch, capsys):
    """A run trains in another process: a second run into its folder is refused
    naming it; Ctrl-C stops it with status 130 and how to go on; a zero-shot run
    into the interrupted folder is refused; --resume finishes it."""
    data = sentiment_data(tmp_path / 'data', rows=(64, 6, 6))
    out = tmp_path / 'out'
    flags = [
        '--checkpoint-dir',
        checkpoint,
        '--data-dir',
        data,
        '--labeled-fraction',
        0.5,
        '--batch-size',
        4,
        '--eval-every',
        2,
        '--patience',
        0,
        '--maxlen',
        16,
        '--out',
        out,
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    first = subprocess.Popen(
        [sys.executable, str(REPO / 'scripts' / 'sentiment.py'), *map(str, flags + ['--steps', 100000])],
        cwd=str(REPO),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C must reach it: a shell starts background jobs with SIGINT ignored, which a child inherits
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 300
        while evaluations(out) < 2 and first.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        assert evaluations(out) >= 2, first.stderr.read() if first.poll() is not None else 'no evaluation in 300 s'
        with monkeypatch.context() as refusing:
            forbid_building_models(refusing)
            code, _, err = run_in_process(refusing, capsys, 'sentiment.py', *flags, '--steps', 4)
        assert code == 2
        assert one_error_line(err) == (
            'error: %s: another run (process %d) is writing there (wait for it to end, or '
            'use another --out)' % (out, first.pid)
        )
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err
    assert 'Traceback' not in err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r'interrupted after step \d+; the same command with --resume continues', last), err
    done = backed_up_intervals(out / BACKUP)  # run.json may record one more, trained again on resume
    assert done >= 1
    assert runlock.LOCK not in os.listdir(out) and BACKUP in os.listdir(out)

    before = listing(out)
    with monkeypatch.context() as refusing:
        forbid_building_models(refusing)
        code, _, err = run_in_process(refusing, capsys, 'sentiment.py', *flags, '--mode', 'zero-shot')
    assert code == 2 and ('holds a run interrupted after evaluation %d' % done) in one_error_line(err)
    assert listing(out) == before

    code, _, err = run_in_process(monkeypatch, capsys, 'sentiment.py', *flags, '--steps', 2 * done + 2, '--resume')
    assert code == 0, err
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    assert [r['step'] for r in results['evaluations']] == [2 * i for i in range(1, done + 2)]
    assert runlock.LOCK not in os.listdir(out) and BACKUP not in os.listdir(out)


def test_start_up_is_quiet_unless_verbose(checkpoint, tmp_path):
    data = sentiment_data(tmp_path / 'data')
    flags = ['--checkpoint-dir', checkpoint, '--data-dir', data, '--mode', 'zero-shot', '--maxlen', 16]
    quiet = run_script('sentiment.py', *flags, '--out', tmp_path / 'quiet')
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    absl = re.compile(r'^[IWEF]\d{4} |absl::InitializeLog', re.M)
    assert not absl.search(quiet.stderr), quiet.stderr
    verbose = run_script('sentiment.py', *flags, '--out', tmp_path / 'verbose', '--verbose')
    assert verbose.returncode == 0 and absl.search(verbose.stderr), verbose.stderr
