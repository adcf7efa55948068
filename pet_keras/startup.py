"""A script's flags turned into checked inputs before TensorFlow builds
anything: the output folder, the data files and rows, the checkpoint's
files, the pattern, the verbalizer and the budget."""

import json
import os
import tempfile
from pathlib import Path

from pet_keras import runlock
from pet_keras.budget import EMBEDDED_CHECKPOINT
from pet_keras.modes import MODES, TRAINED, WITHOUT_VALIDATION
from pet_keras.convert import is_huggingface_folder
from pet_keras.model import checkpoint_variables
from pet_keras.pattern import Pattern
from pet_keras.verbalizer import Verbalizer
from pet_keras.io import refuse_overwriting_inputs
from pet_keras.runstate import check_not_interrupted, holds_finished_run, remove_run


# the flags whose paths a training command reads: its --out may not be, hold or lie inside any
INPUT_FLAGS = ('train', 'valid', 'test', 'unlabeled', 'task', 'data_dir', 'label_words')


def check_start(args, out, reuses_finished=False):
    """Refuse, right after parsing and before TensorFlow builds anything, a run
    that would fail later or spoil a folder: a training mode without a step, an
    --out that cannot be written, that is or holds or lies inside an input, another
    run writing it, an interrupted run there without --resume, a finished run there
    without --overwrite (which then removes that run's files; ``reuses_finished``: the
    caller reuses finished runs, as the ensemble does). The flags' own ranges are their
    argparse types."""
    if args.mode in TRAINED and args.steps < 1:
        raise ValueError(
            '--steps %d: --mode %s trains, so it needs at least one step (--mode zero-shot only '
            'evaluates)' % (args.steps, args.mode)
        )
    writable_folder(out)
    refuse_overwriting_inputs(out, '--out', input_paths(args))
    runlock.check(out)
    if not getattr(args, 'resume', False) or not MODES[args.mode].resumes:
        check_not_interrupted(out)
    if not reuses_finished and holds_finished_run(out):
        if not getattr(args, 'overwrite', False):
            raise FileExistsError(
                '%s holds a finished run (results.json): --overwrite replaces it, or choose another --out' % out
            )
        remove_run(out)


def input_paths(args):
    """{flag: path} of what a training command reads: data, task and label-word files, the checkpoint."""
    paths = {'--' + name.replace('_', '-'): getattr(args, name, None) for name in INPUT_FLAGS}
    if paths['--label-words'] is not None and not os.path.exists(paths['--label-words']):
        del paths['--label-words']  # inline JSON
    # the paths as given: checkpoint_files checks them when the model is loaded
    paths.update(
        {
            '--checkpoint-dir': str(args.checkpoint_dir or EMBEDDED_CHECKPOINT),
            '--config-path': args.config_path,
            '--checkpoint-path': args.checkpoint_path,
            '--dict-path': args.dict_path,
        }
    )
    return paths


def check_ensemble(p, args):
    """Refuse, as usage errors of parser ``p``, the ensemble's flags that cannot go together."""
    if args.generations and args.mode not in ('few-shot', 'semi-supervised'):
        p.error('--generations needs --mode few-shot or semi-supervised (iPET trains on pseudo-labels)')
    if args.no_valid:
        p.error('--no-valid is not supported by sentiment_ensemble.py: the ensemble weighs its patterns on validation')
    if args.resume or args.distribute:
        # each pattern's run resumes and distributes in sentiment.py; here the generations would need it too
        p.error(
            '--resume and --distribute are not supported by sentiment_ensemble.py: train the patterns '
            'with sentiment.py, which has both'
        )


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


def check_data(args, labeled, unlabeled, train, valid, test, *more):
    """Print how many blank rows each file had (skipped); refuse, before any model
    is built, an empty validation or test file, and a training mode without the
    rows it trains on (it would silently be a zero-shot run). Without validation data (None) a
    run must be one that cross-validates (``pet_keras.crossval``) or does not train."""
    if valid is None and args.mode not in WITHOUT_VALIDATION:
        raise ValueError(
            '--mode %s chooses its best step on validation data: give it (few-shot, semi-supervised and '
            'classifier runs without it choose their steps by cross-validation over the labeled examples)' % args.mode
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
    if MODES[args.mode].labeled and not labeled:
        raise ValueError(
            '%s: no labeled training rows for --mode %s (%d blank rows; add rows, or --mode zero-shot)'
            % (train.path, args.mode, train.skipped)
        )
    if MODES[args.mode].unlabeled and not unlabeled:
        raise ValueError(
            '%s: no unlabeled training rows for --mode %s (--labeled-fraction %g keeps all %d rows '
            'labeled: a smaller one, or an unlabeled file)' % (train.path, args.mode, args.labeled_fraction, len(train))
        )


def budget_args(args):
    """``fit_pet``'s and ``fit_classifier``'s budget and learning rate from the flags."""
    return {
        'steps': args.steps,
        'eval_every': args.eval_every,
        'patience': args.patience or None,
        'learning_rate': args.lr,
    }


def checkpoint_paths(args):
    """(config_path, checkpoint_path, dict_path) from the flags."""
    return checkpoint_files(
        args.checkpoint_dir or EMBEDDED_CHECKPOINT, args.config_path, args.checkpoint_path, args.dict_path
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


def pattern_template(args, presets):
    """--pattern: a preset's template, or the template given, which may name only the
    fields the presets name (the task's data has no others)."""
    template = presets.get(args.pattern, args.pattern)
    fields = {name for preset in presets.values() for name in Pattern(preset).fields}
    unknown = [name for name in Pattern(template).fields if name not in fields]
    if unknown:
        raise ValueError(
            '--pattern %r names %s, not a field of this task (use its fields: %s)'
            % (template, ', '.join('{%s}' % name for name in unknown), ', '.join('{%s}' % f for f in sorted(fields)))
        )
    return template


def verbalizer(args, default_words):
    """The ``Verbalizer`` of --label-words (default ``default_words``) and
    --aggregation. The JSON must have exactly the labels of ``default_words``
    (the task's labels); they keep that order."""
    words = default_words
    if args.label_words is not None:
        words = read_label_words(args.label_words)
        unknown = [label for label in words if label not in default_words]
        missing = [label for label in default_words if label not in words]
        if unknown or missing:
            raise ValueError(
                '--label-words: expected exactly the labels %s; unknown: %s; missing: %s'
                % (', '.join(default_words), ', '.join(unknown) or 'none', ', '.join(missing) or 'none')
            )
        words = {label: words[label] for label in default_words}
    try:
        return Verbalizer(words, args.aggregation, args.length_norm)
    except ValueError as e:
        raise ValueError('--label-words: %s' % e) from None


def read_label_words(value):
    """The JSON object of --label-words: the file ``value`` if it exists, else ``value`` itself."""
    if os.path.isdir(value):
        raise ValueError('--label-words %s is a folder; expected a JSON file or inline JSON' % value)
    if os.path.isfile(value):
        where = value
        try:
            with open(value, encoding='utf-8') as f:
                value = f.read()
        except UnicodeDecodeError:
            raise ValueError('--label-words: %s is not UTF-8 text' % where) from None
    else:
        where = 'inline JSON %r (no file of that name)' % value
    try:
        words = json.loads(value)
    except json.JSONDecodeError as e:
        raise ValueError(
            '--label-words: %s: malformed JSON (%s at line %d column %d)' % (where, e.msg, e.lineno, e.colno)
        ) from None
    if not isinstance(words, dict):
        raise ValueError(
            '--label-words: %s: expected a JSON object label → list of words, found %s' % (where, type(words).__name__)
        )
    return words


def data_file(data_dir, names, required=True):
    """The first of the file ``names`` present in ``data_dir``; None when
    none is and the file is not ``required`` (a missing required file is an error)."""
    for name in names:
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    if required:
        raise FileNotFoundError('%s has none of %s' % (data_dir, ', '.join(names)))
    return None
