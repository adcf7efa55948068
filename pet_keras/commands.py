"""The ``pet-keras`` command: train a task from files (pet_keras.taskfile, pet_keras.runner), use a run folder.

    pet-keras train --train train.jsonl --valid dev.jsonl --test test.jsonl --pattern '这是一篇____的文章。{content}'
    pet-keras label-words --train train.jsonl --pattern '这是一篇____的文章。{content}' --out words.json
    pet-keras predict --model-dir runs/sentiment-few-shot-P1 --input reviews.txt --output predictions.jsonl
    pet-keras export --model-dir runs/sentiment-few-shot-P1 --out export/sentiment

``predict`` reads plain text (one text per line), JSON lines (the pattern's
field names as keys; ``text`` also for a one-field pattern; other keys are
not read; ``--fields text=content`` reads a field from another key) or TSV
(the pattern's fields as tab-separated columns in order, or the columns
``--fields`` names; with one field the whole line is the text, tabs
included). ``--input -`` reads standard input. Blank lines and rows with an
empty field are skipped and counted, as the training readers do. Errors name
the file and line. It writes one JSON line per text: the input row with every
key kept (JSON lines: the object; TSV: the named columns; text: the field)
and ``"prediction": label, "probabilities": {label: p}``, so a gold label
the input holds stays beside the prediction.
"""

import argparse
import sys

from pet_keras import argtypes, cli, convert, taskfile
from pet_keras.inputs import READERS
from pet_keras.taskfile import SPLITS, task_file_flags


def file_flags(p, splits=SPLITS, task_file=True, pattern=False):
    """The task's files and how to read them, on parser ``p``; ``pattern``: with --pattern
    (cli.script_parser has its own)."""
    d = p.add_argument_group('task files (JSON lines, or TSV with --columns)')
    if task_file:
        d.add_argument(
            '--task',
            help='a JSON file of these flags\' values, e.g. {"train": "train.jsonl", "valid": '
            '…, "test": …, "pattern": …, "label_field": …, "label_words": {…}, "mode": …}; its '
            'relative paths are relative to it; flags given on the command line override it',
        )
    helps = {
        'train': 'the labeled training examples',
        'valid': 'labeled examples that choose the best step (without it, few-shot, semi-supervised and '
        'classifier runs choose their number of steps by cross-validation over the labeled examples, --folds)',
        'test': 'labeled examples, scored once with the best weights (optional)',
        'unlabeled': 'more unlabeled text (unsupervised and semi-supervised modes)',
    }
    for split in splits:
        d.add_argument('--' + split, help=helps[split])
    d.add_argument(
        '--columns',
        help='the files are TSV with these columns, the label last, e.g. sentence,label (a .tsv file needs it)',
    )
    d.add_argument('--label-field', default='label', help='the key (or column) of the label (default label)')
    if pattern:
        d.add_argument('--pattern', help="a template with a ____ slot and the data's keys as {fields}")


def command(commands, name, run, help, description=None):
    """Sub-command ``name`` of ``commands`` (argparse sub-parsers), done by ``subcommands.<run>``;
    its --help shows ``description`` as written."""
    p = commands.add_parser(
        name, help=help, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.set_defaults(run=run)
    return p


def parser():
    """The ``pet-keras`` parser: each sub-command and its flags, declared top to bottom."""
    p = cli.Parser(prog='pet-keras', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest='command', required=True, metavar='{train,label-words,predict,export,convert}')
    calibrate = dict(
        action=argparse.BooleanOptionalAction,
        default=None,
        help='contextual calibration on or off (default: as the run was evaluated, results.json)',
    )

    tr = command(
        commands, 'train', 'train', "train PET (or the classifier) on a task's files, no Python", taskfile.__doc__
    )
    cli.script_parser(None, {}, None, None, labeled_fraction=1, p=tr, repeated_pattern=True)
    file_flags(tr)

    lw = command(
        commands, 'label-words', 'label_words', 'search label words for a task (PETAL), as --label-words JSON',
        taskfile.__doc__,
    )  # fmt: skip
    cli.model_flags(lw)
    file_flags(lw, ('train',), task_file=False, pattern=True)
    lw.add_argument('--top-k', type=int, default=3, help='words per label (default 3)')
    lw.add_argument('--out', required=True, help='the JSON file to write, label → words')
    lw.add_argument('--maxlen', type=int, default=128)
    lw.add_argument('--batch-size', type=argtypes.whole(1), default=32, help='examples per scoring batch (default 32)')
    lw.add_argument('--length-norm', action='store_true', help='rank words by their mean token log-probability')

    pr = command(commands, 'predict', 'predict', 'label texts with a trained model, as JSON lines')
    pr.add_argument('--model-dir', required=True, help='a run folder written by fit_pet (with pvp.json)')
    pr.add_argument('--input', required=True, help='the texts: plain text, JSON lines or TSV; - for stdin')
    pr.add_argument(
        '--fields',
        help='JSON lines: field=key pairs, e.g. text=content; TSV: the columns in order, '
        "e.g. id,text (default: the model's fields by name, in order)",
    )
    pr.add_argument('--output', help='JSON lines file to write (default: stdout)')
    pr.add_argument(
        '--format',
        choices=sorted(READERS),
        help='input format (default: by extension: .jsonl/.json jsonl, .tsv tsv, else text)',
    )
    pr.add_argument('--batch-size', type=argtypes.whole(1), default=64, help='examples per scoring batch (default 64)')
    pr.add_argument('--calibrate', **calibrate)
    cli.output_flags(pr)

    ex = command(commands, 'export', 'export', 'write a TensorFlow SavedModel for serving')
    ex.add_argument('--model-dir', required=True, help='a run folder written by fit_pet (with pvp.json)')
    ex.add_argument('--out', required=True, help='the SavedModel folder to write')
    ex.add_argument('--calibrate', **calibrate)
    ex.add_argument('--overwrite', action='store_true', help='replace --out when it is not empty (else refused)')
    cli.output_flags(ex)

    co = command(
        commands, 'convert', 'convert_command',
        'convert a Hugging Face BERT-family masked LM (safetensors) to the checkpoint folder pet_keras loads',
        convert.__doc__,
    )  # fmt: skip
    co.add_argument(
        '--from',
        dest='source',
        required=True,
        help='the Hugging Face folder: config.json, model.safetensors, vocab.txt',
    )
    co.add_argument(
        '--out', required=True, help='the new folder to write (bert_config.json, bert_model.ckpt.*, vocab.txt)'
    )
    cli.output_flags(co)
    return p


def main(argv=None):
    p = parser()
    argv = sys.argv[1:] if argv is None else list(argv)

    def dispatch(args):
        if getattr(args, 'task', None):  # the task file's flags first: those given override them
            from_file = task_file_flags(args.task, cli.long_flags(p, args.command))
            if getattr(args, 'pattern', None):  # --pattern accumulates: the command line's replace the file's
                from_file = [flag for flag in from_file if not flag.startswith('--pattern=')]
            args = p.parse_args(argv[:1] + from_file + argv[1:])
        from pet_keras import subcommands  # after parsing: it loads TensorFlow, which --help need not wait for

        return getattr(subcommands, args.run)(args)

    cli.run(p, dispatch, argv)
    return 0


if __name__ == '__main__':
    sys.exit(main())
