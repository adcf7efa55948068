"""Command-line flags shared by the scripts, the checkpoint they default to,
and how a command fails: bad flags, data or folders are refused at start-up,
before TensorFlow builds anything, and every user error is one line.

It does not load TensorFlow (nor anything that does): ``--help`` and a flag error answer at once."""

import argparse
import os
import sys
import traceback

from pet_keras import budget, crossval
from pet_keras.argtypes import POSITIVE, folds, number, share, whole
from pet_keras.budget import EMBEDDED_CHECKPOINT
from pet_keras.modes import MODES, PET_MODES
from pet_keras.verbalizer import AGGREGATIONS

DISTRIBUTE = ('mirrored', 'multi-worker')  # --distribute (pet_keras.runtime.strategy)
MIXED_PRECISION_HELP = (
    'compute in bfloat16 with float32 weights (Keras policy mixed_bfloat16): faster where bfloat16 matmuls '
    'are (CPUs with AMX); slower than float32 on CPUs without AMX. Predictions can differ from float32 near ties'
)


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``error: <what> (<prog> --help lists the flags)``, status 2."""

    def error(self, message):
        self.exit(2, 'error: %s (%s --help lists the flags)\n' % (message, self.prog))


def output_flags(p):
    """--debug and --verbose, which every command takes (compat reads --verbose from sys.argv
    before TensorFlow loads)."""
    o = p.add_argument_group('output')
    o.add_argument('--debug', action='store_true', help='show the traceback of an error (also PET_KERAS_DEBUG=1)')
    o.add_argument(
        '--verbose', action='store_true', help="show TensorFlow's start-up log (CUDA, oneDNN, absl), hidden by default"
    )


def script_parser(
    description,
    patterns,
    default_pattern,
    data_help,
    several_patterns=False,
    labeled_fraction=0.01,
    maxlen=128,
    p=None,
    repeated_pattern=False,
):
    """An argparse parser with the flags every PET script takes; with
    ``several_patterns`` (an ensemble) it takes ``--patterns`` (a list)
    instead of ``--pattern``, and no classifier mode; with ``repeated_pattern``
    ``--pattern`` may be given several times (an ensemble, ``pet-keras train``).
    ``labeled_fraction`` and ``maxlen`` are the script's defaults. ``p``: add the flags to
    this parser (a ``pet-keras`` subcommand) instead; ``data_help=None``: no --data-dir."""
    p = p or Parser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_flags(p)
    data_flags(p, data_help, labeled_fraction)
    pattern_flags(p, patterns, default_pattern, several_patterns, maxlen, repeated_pattern)
    training_flags(p)
    output_flags(p)
    if several_patterns or repeated_pattern:
        ensemble_flags(p)
    return p


def data_flags(p, data_help, labeled_fraction):
    """The 'data' group: --data-dir (unless ``data_help`` is None), --labeled-fraction, --split-seed."""
    d = p.add_argument_group('data')
    if data_help:
        d.add_argument('--data-dir', help=data_help)
        d.add_argument(
            '--no-valid',
            action='store_true',
            help='leave the validation file out, as a user with only a few labels would: few-shot, '
            'semi-supervised and classifier runs choose their steps by cross-validation over the labeled '
            'examples (--folds)',
        )
    d.add_argument(
        '--labeled-fraction',
        type=number(0, 1, '(]'),
        default=labeled_fraction,
        help='fraction of the training file kept labeled; the rest is unlabeled (default %g)' % labeled_fraction,
    )
    d.add_argument(
        '--split-seed',
        type=int,
        default=None,
        help='pick the labeled rows at random with this seed (default: the first rows, as the reference)',
    )


def pattern_flags(p, patterns, default_pattern, several_patterns, maxlen, repeated_pattern=False):
    """The 'task' group: --mode, the pattern(s), --maxlen and the verbalizer's flags (one
    add_argument per flag, read top to bottom)."""
    t = p.add_argument_group('task')
    t.add_argument(
        '--mode',
        choices=PET_MODES if several_patterns else tuple(MODES),
        default='few-shot',
        help='; '.join('%s: %s' % (name, mode.description) for name, mode in MODES.items()) + ' (default few-shot)',
    )
    presets = ', '.join('%s = %s' % kv for kv in patterns.items())
    if several_patterns:
        t.add_argument(
            '--patterns',
            nargs='+',
            default=list(patterns),
            help='presets (%s) or templates with a ____ slot (default: all presets)' % presets,
        )
    elif repeated_pattern:
        t.add_argument(
            '--pattern',
            action='append',
            help="a template with a ____ slot and the task's fields; given several times, full PET: a model per "
            'pattern, their ensemble (iPET with --generations) and a [CLS] classifier distilled from it',
        )
    else:
        t.add_argument(
            '--pattern',
            default=default_pattern,
            help="%s a template with a ____ slot and the task's fields (default %s)"
            % ('a preset (%s) or' % presets if patterns else '', default_pattern),
        )
    t.add_argument('--maxlen', type=whole(1), default=maxlen, help='tokens per example (default %d)' % maxlen)
    t.add_argument(
        '--windows',
        action='store_true',
        help='read a text longer than --maxlen whole: its longest field is cut into overlapping windows that '
        'each fit, every window trains, and the label log-probabilities are averaged over its windows '
        '(default: the text is cut at --maxlen, as the reference)',
    )
    t.add_argument(
        '--label-words',
        default=None,
        help='label → word or list of words, as a JSON object inline or in a JSON file, e.g. '
        '\'{"negative": ["不", "难"], "positive": ["很", "挺", "太"]}\' (default: a script\'s '
        'words, in its description; pet-keras train: the label names); one key per label of the task; words may '
        'differ in length',
    )
    t.add_argument(
        '--aggregation',
        choices=AGGREGATIONS,
        default='sum',
        help='score of a label with several words: sum of their probabilities, mean of their '
        'log-probabilities, or max (default sum)',
    )
    t.add_argument(
        '--length-norm',
        action='store_true',
        help='score a label word by its mean token log-probability instead of its log-probability '
        '(words of different lengths)',
    )
    t.add_argument(
        '--calibrate',
        action='store_true',
        help='contextual calibration: divide the label probabilities by those of content-free inputs '
        '(the pattern with empty and "N/A" text), then renormalise',
    )


def training_flags(p):
    """The 'training' group: the budget, learning rate, masking, seed, --out, --resume, --distribute.
    Long as a list of declarations is: one add_argument per flag, read top to bottom."""
    r = p.add_argument_group('training (README, "Training budget")')
    r.add_argument(
        '--steps',
        type=whole(0),
        default=budget.STEPS,
        help='at most this many optimizer steps; the best evaluation is kept (default %d)' % budget.STEPS,
    )
    r.add_argument(
        '--eval-every',
        type=whole(1),
        default=budget.EVAL_EVERY,
        help='validation accuracy every N steps (default %d)' % budget.EVAL_EVERY,
    )
    r.add_argument(
        '--patience',
        type=whole(0),
        default=budget.PATIENCE,
        help='stop after N evaluations without a better validation accuracy (default %d; 0: never stop '
        'early)' % budget.PATIENCE,
    )
    r.add_argument('--batch-size', type=whole(1), default=32, help='examples per training step (default 32)')
    r.add_argument(
        '--lr',
        type=POSITIVE,
        default=None,
        help='learning rate (Adam); default: for the embedded model the rate chosen on validation for '
        "the mode (%s), for any other checkpoint %g, the reference's"
        % (
            ', '.join(
                '%s %g' % (name, m.embedded_learning_rate) for name, m in MODES.items() if m.labeled or m.unlabeled
            ),
            budget.REFERENCE_LEARNING_RATE,
        ),
    )
    r.add_argument(
        '--mask-rate',
        type=number(0, 1, '[)'),
        default=0.15,
        help='random extra masking of training text (default 0.15)',
    )
    r.add_argument(
        '--slot-loss',
        choices=budget.SLOT_LOSSES,
        default=budget.SLOT_LOSS,
        help="how PET's slot trains: the gold word's masked-LM loss over the whole vocabulary (mlm, the "
        "reference's), cross-entropy over the labels' words (labels), or ADAPET's decoupled label loss "
        '(decoupled); the random extra masks keep the masked-LM loss (default %s)' % budget.SLOT_LOSS,
    )
    r.add_argument(
        '--lexical',
        action=argparse.BooleanOptionalAction,
        help='the lexical expert beside PET: TF-IDF character n-grams and a linear SVM trained on the labeled '
        "examples, its scores added to PET's label log-probabilities with a weight chosen on validation. "
        'The default for few-shot and semi-supervised runs of one pattern; --no-lexical: PET alone '
        '(README, "Accuracy, measured")',
    )
    r.add_argument(
        '--prompt-only',
        action='store_true',
        help="train only the embeddings of the pattern's learned tokens [P]; the encoder, the MLM head and "
        "every other embedding stay the checkpoint's (P-tuning with the model frozen)",
    )
    r.add_argument(
        '--labeled-share',
        type=share,
        default=budget.LABELED_SHARE,
        help='semi-supervised: repeat the labeled examples so they are about this share of the training '
        "stream, or 'natural': once an epoch, as the reference (default %s)" % (budget.LABELED_SHARE or 'natural'),
    )
    r.add_argument(
        '--folds',
        type=folds,
        default=crossval.FOLDS,
        help='without validation data: the folds of the cross-validation that chooses the number of steps; '
        'the run trains k + 1 times and reports the cross-validated accuracy (default %d; 0: no '
        'cross-validation, --steps steps are trained and the last weights kept)' % crossval.FOLDS,
    )
    r.add_argument(
        '--fold-patience',
        type=whole(0),
        default=budget.FOLD_PATIENCE,
        help='without validation data: each fold stops after N evaluations without a better held-out accuracy '
        '(default %d; 0: never stop early)' % budget.FOLD_PATIENCE,
    )
    r.add_argument(
        '--fold-valid',
        action='store_true',
        help='add the validation examples to the labeled ones and choose the steps by cross-validation over '
        "both (--folds; FewCLUE's train + dev): for a validation set too small to choose on",
    )
    r.add_argument('--seed', type=int, default=0, help='seeds TensorFlow, NumPy and the masking')
    r.add_argument(
        '--out',
        default=None,
        help='output folder (default: under runs/, named after the script or task, the mode and the pattern)',
    )
    r.add_argument(
        '--overwrite',
        action='store_true',
        help='replace the finished run in --out (its files only); without it such an --out is refused',
    )
    r.add_argument('--tensorboard', action='store_true', help='write TensorBoard logs to <out>/tensorboard')
    r.add_argument(
        '--resume',
        action='store_true',
        help='continue the interrupted run in --out after its last evaluation (same flags; '
        '--steps and --patience may change)',
    )
    r.add_argument(
        '--distribute',
        choices=DISTRIBUTE,
        default=None,
        help='train on all local GPUs (mirrored) or on several machines configured by TF_CONFIG '
        '(multi-worker); --batch-size is the global batch',
    )


# the ensemble's flags and defaults (ensemble.full_pet's arguments)
ENSEMBLE_DEFAULTS = {'weighted': False, 'generations': 0, 'growth': 5, 'temperature': 2.0}


def ensemble_flags(p):
    """The 'ensemble, iPET, distillation' group of scripts/sentiment_ensemble.py and ``pet-keras train``."""
    e = p.add_argument_group('ensemble, iPET, distillation')
    e.add_argument('--weighted', action='store_true', help='weight each pattern by its validation accuracy')
    e.add_argument(
        '--generations',
        type=whole(0),
        default=ENSEMBLE_DEFAULTS['generations'],
        help='iPET generations after the first (default 0: PET)',
    )
    e.add_argument(
        '--growth',
        type=whole(1),
        default=ENSEMBLE_DEFAULTS['growth'],
        help='iPET: the training set grows this many times per generation (default %d)' % ENSEMBLE_DEFAULTS['growth'],
    )
    e.add_argument(
        '--temperature',
        type=POSITIVE,
        default=ENSEMBLE_DEFAULTS['temperature'],
        help='softening of the distillation targets (default %g)' % ENSEMBLE_DEFAULTS['temperature'],
    )
    e.add_argument('--max-unlabeled', type=whole(0), help='use only the first N unlabeled texts (shorter runs)')


def model_flags(p):
    """The checkpoint flags (``checkpoint_paths`` reads them) on parser ``p``."""
    m = p.add_argument_group('model (bert4keras names; default: the embedded checkpoint)')
    m.add_argument(
        '--checkpoint-dir',
        help='a folder with bert_config.json, bert_model.ckpt.*, vocab.txt '
        '(default: %s)' % os.path.relpath(EMBEDDED_CHECKPOINT),
    )
    m.add_argument('--config-path', help='bert_config.json (overrides --checkpoint-dir)')
    m.add_argument('--checkpoint-path', help='checkpoint prefix, e.g. .../bert_model.ckpt')
    m.add_argument('--dict-path', help='vocab.txt')
    m.add_argument('--model', default='bert', help='bert4keras model family: bert, roberta, albert, nezha …')
    m.add_argument(
        '--allow-random-mlm-head',
        action='store_true',
        help='accept a checkpoint without cls/predictions/* (the head starts random)',
    )
    m.add_argument('--mixed-precision', action='store_true', help=MIXED_PRECISION_HELP)


def refuse_undecoded_arguments(argv):
    """Under an ASCII locale (LC_ALL=C with PYTHONUTF8=0) Python keeps non-ASCII arguments as
    undecoded bytes (surrogates): a pattern would reach the tokenizer as [UNK]s and the error
    would blame the vocabulary."""
    for arg in argv:
        if any('\udc80' <= ch <= '\udcff' for ch in arg):
            print(
                'error: the argument %s holds text the locale (%s) cannot read; run under a UTF-8 locale '
                '(e.g. LC_ALL=C.UTF-8) or with PYTHONUTF8=1' % (ascii(arg), sys.getfilesystemencoding()),
                file=sys.stderr,
            )
            raise SystemExit(2)


def long_flags(parser, command):
    """The long flags (``--name``) that sub-command ``command`` of ``parser`` takes."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {flag for action in sub._actions for flag in action.option_strings if flag.startswith('--')}


def run(parser, main, argv=None):
    """Parse the flags and ``main(args)``: the one place a command's errors are shown.
    A user error (ValueError or OSError: bad data, flags, files, folders) ends it
    with one line ``error: …`` and status 2, Ctrl-C with ``interrupted …`` and
    status 130; the traceback only with --debug or PET_KERAS_DEBUG=1. Output that the
    terminal's encoding cannot show (Chinese under PYTHONIOENCODING=latin-1) is written
    escaped rather than failing the command."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, 'reconfigure'):
            stream.reconfigure(errors='backslashreplace')
    refuse_undecoded_arguments(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        return main(args)
    except (KeyboardInterrupt, ValueError, OSError) as e:
        if getattr(args, 'debug', False) or os.environ.get('PET_KERAS_DEBUG') == '1':
            traceback.print_exc()
        if isinstance(e, KeyboardInterrupt):
            print(str(e) or 'interrupted', file=sys.stderr)
            raise SystemExit(130) from None
        # an OSError of the system names its file apart: "<file>: No such file or directory"
        print(
            'error: %s' % ('%s: %s' % (e.filename, e.strerror) if isinstance(e, OSError) and e.filename else e),
            file=sys.stderr,
        )
        raise SystemExit(2) from None
