"""The checks a run passes before TensorFlow builds anything: the output folder, the data
rows, the checkpoint's files, the pattern's fields and the label words."""

import os
import tempfile
from pathlib import Path

from pet_keras import runlock
from pet_keras.modes import MODES, WITHOUT_VALIDATION
from pet_keras.convert import is_huggingface_folder
from pet_keras.model import checkpoint_variables
from pet_keras.io import refuse_overwriting_inputs
from pet_keras.runstate import check_not_interrupted, holds_finished_run, remove_run


def check_start(config, out, inputs, reuses_finished=False):
    """Refuse, before TensorFlow builds anything, a run that would spoil a folder: an ``out``
    that cannot be written, that is or holds or lies inside one of ``inputs`` ({flag: path}),
    another run writing it, an interrupted run there without ``config.resume``, a finished
    run there without ``config.overwrite`` (which then removes that run's files;
    ``reuses_finished``: the caller reuses finished runs, as the ensemble does)."""
    writable_folder(out)
    refuse_overwriting_inputs(out, '--out', inputs)
    runlock.check(out)
    if not config.resume or not MODES[config.mode].resumes:
        check_not_interrupted(out)
    if not reuses_finished and holds_finished_run(out):
        if not config.overwrite:
            raise FileExistsError(
                '%s holds a finished run (results.json): --overwrite replaces it, or choose another --out' % out
            )
        remove_run(out)


def writable_folder(path):
    """Refuse an --out that is a file or where nothing can be written (found otherwise only when
    the first weights are saved); a missing folder is not created here."""
    if os.path.islink(path) and not os.path.exists(path):
        raise FileExistsError(
            '%s: a symbolic link to %s, which does not exist (create that folder, or choose another --out)'
            % (path, os.readlink(path))
        )
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise FileExistsError(
            '%s: %s is a file, not a folder (choose another --out)'
            % (path, 'it' if existing == os.path.abspath(path) else existing)
        )
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        raise PermissionError(
            '%s: cannot write in %s (%s; choose another --out)' % (path, existing, e.strerror)
        ) from None


def check_data(mode, labeled_fraction, labeled, unlabeled, train, valid, test, *more):
    """Print how many blank rows each file had (skipped); refuse, before any model
    is built, an empty validation or test file, and a ``mode`` without the
    rows it trains on (it would silently be a zero-shot run; ``labeled_fraction`` kept
    ``labeled`` of ``train``). Without validation data (None) a
    run must be one that cross-validates (``pet_keras.crossval``) or does not train."""
    if valid is None and mode not in WITHOUT_VALIDATION:
        raise ValueError(
            '--mode %s chooses its best step on validation data: give it (few-shot, semi-supervised and '
            'classifier runs without it choose their steps by cross-validation over the labeled examples)' % mode
        )
    for data in (train, valid, test) + more:
        if data is not None and data.skipped:
            print('%s: %d blank rows skipped' % (data.path, data.skipped))
    for data, split in ((valid, 'validation'), (test, 'test')):
        if data is not None and not data:
            raise ValueError(
                '%s: no %s examples (%d blank rows; it needs at least one labeled row)'
                % (data.path, split, data.skipped)
            )
    if MODES[mode].labeled and not labeled:
        raise ValueError(
            '%s: no labeled training rows for --mode %s (%d blank rows; add rows, or --mode zero-shot)'
            % (train.path, mode, train.skipped)
        )
    if MODES[mode].unlabeled and not unlabeled:
        raise ValueError(
            '%s: no unlabeled training rows for --mode %s (--labeled-fraction %g keeps all %d rows '
            'labeled: a smaller one, or an unlabeled file)' % (train.path, mode, labeled_fraction, len(train))
        )


def checkpoint_files(folder, config=None, checkpoint=None, vocab=None):
    """(config_path, checkpoint_path, dict_path) of a Google-format checkpoint
    ``folder``, each overridable; a missing file, or data files shorter than
    the index says, is an error before any model is built."""
    folder = Path(folder)
    config = config or str(folder / 'bert_config.json')
    checkpoint = checkpoint or str(folder / 'bert_model.ckpt')
    vocab = vocab or str(folder / 'vocab.txt')
    for path in (config, vocab, checkpoint + '.index'):
        if not os.path.exists(path) and is_huggingface_folder(folder):
            raise FileNotFoundError(
                '%s not found: %s is a Hugging Face model folder; convert it first: pet-keras convert --from %s '
                '--out %s-google' % (path, folder, folder, str(folder).rstrip(os.sep))
            )
        if not os.path.exists(path):
            raise FileNotFoundError(
                '%s not found (pass --checkpoint-dir or --config-path/--checkpoint-path/'
                '--dict-path; see checkpoints/README.md)' % path
            )
    checkpoint_variables(checkpoint)
    return config, checkpoint, vocab
