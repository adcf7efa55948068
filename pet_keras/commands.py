"""The ``pet-keras`` command: train a task from files (pet_keras.task), use a run folder.

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
import contextlib
import json
import os
import sys

from pet_keras import cli, convert, runtime, startup, task
from pet_keras.data import Dataset, Example, read_jsonl, read_lines, read_tsv, split_labeled
from pet_keras.io import atomic_path, refuse_overwriting_inputs, write_json
from pet_keras.label_search import label_words_json, print_label_words, search
from pet_keras.pattern import PVP, Pattern
from pet_keras.serving import export_saved_model, load
from pet_keras.task import SPLITS, load_checkpoint, read_data, task_labels, task_verbalizer
from pet_keras.train import training_sets

FORMATS = {'.jsonl': 'jsonl', '.json': 'jsonl', '.tsv': 'tsv'}  # by extension; anything else is text
OUTPUT_KEYS = ('prediction', 'probabilities')  # added to each input row


def input_format(path, given=None):
    return given or FORMATS.get(os.path.splitext(path)[1].lower(), 'text')


def text_examples(path, fields, given=None):
    if len(fields) != 1:
        raise ValueError(
            '%s: the model reads fields %s; plain text gives one per line: use --format jsonl or tsv'
            % (path, ', '.join(fields))
        )
    examples, skipped = [], 0
    for number, line in read_lines(path):
        if line.strip():
            text = {fields[0]: line.strip()}
            examples.append(Example(text, None, '%s:%d' % (path, number), text))
        else:
            skipped += 1
    return Dataset(examples, skipped, path)


def jsonl_examples(path, fields, given=None):
    """``given``: --fields, field=key pairs for keys not named as the fields."""
    keys = {name: (name, 'text') if len(fields) == 1 and name != 'text' else name for name in fields}
    pairs = [item.split('=', 1) for item in given.split(',')] if given else []
    if any(len(pair) != 2 or pair[0] not in fields for pair in pairs):
        raise ValueError(
            "--fields %s: expected field=key pairs for the model's fields %s, e.g. --fields %s=content"
            % (given, ', '.join(fields), fields[0])
        )
    keys.update(pairs)
    return read_jsonl(path, keys, labeled=False, keep_rows=True)


def tsv_examples(path, fields, given=None):
    """``given``: --fields, the columns in order (every named column is copied to the output)."""
    columns = given.split(',') if given else fields
    missing = [name for name in fields if name not in columns]
    if missing:
        raise ValueError("--fields %s: no column for the model's field %s" % (given, ', '.join(missing)))
    data = read_tsv(path, fields=columns, labeled=False)
    return Dataset(
        [Example({name: e.fields[name] for name in fields}, None, e.source, e.fields) for e in data], data.skipped
    )


READERS = {'text': text_examples, 'jsonl': jsonl_examples, 'tsv': tsv_examples}


def predict(args):
    if args.input != '-' and not os.path.isfile(args.input):
        raise FileNotFoundError('--input %s: no such file' % args.input)
    if args.output:
        refuse_overwriting_inputs(args.output, '--output', {'--input': args.input, '--model-dir': args.model_dir})
        folder = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(folder):
            raise FileNotFoundError('--output %s: no folder %s (create it first)' % (args.output, folder))
    predictor = load(args.model_dir, batch_size=args.batch_size, calibrate=args.calibrate)
    fmt = input_format(args.input, args.format)
    examples = READERS[fmt](args.input, predictor.fields, args.fields)
    for example in examples:
        clash = [key for key in OUTPUT_KEYS if key in example.row]
        if clash:
            raise ValueError(
                '%s: the row has a key %r, which predict writes; rename it in the input' % (example.source, clash[0])
            )
    with contextlib.redirect_stdout(sys.stderr):  # the progress bar must not mix with JSON lines on stdout
        predictions = predictor.predict_examples(examples, verbose=True)
    lines = (
        json.dumps(dict(e.row, prediction=p['label'], probabilities=p['probabilities']), ensure_ascii=False) + '\n'
        for e, p in zip(examples, predictions)
    )
    if args.output:
        with atomic_path(args.output) as tmp, open(tmp, 'w', encoding='utf-8') as out:
            out.writelines(lines)  # whole or not at all: a previous file stays until the rename
    else:
        sys.stdout.writelines(lines)
    print(
        '%d predictions (%s input %s, %d blank or empty rows skipped) written to %s'
        % (
            len(predictions),
            fmt,
            'stdin' if args.input == '-' else args.input,
            examples.skipped,
            args.output or 'stdout',
        ),
        file=sys.stderr,
    )


def export(args):
    export_saved_model(args.model_dir, args.out, calibrate=args.calibrate, overwrite=args.overwrite)
    print(
        'SavedModel written to %s: signature serving_default(token_ids, segment_ids: int32 [batch, length]) '
        '-> probabilities, label; pvp.json and vocab.txt in %s' % (args.out, os.path.join(args.out, 'assets')),
        file=sys.stderr,
    )


def convert_command(args):
    """``pet-keras convert``: a Hugging Face folder to a Google-format checkpoint folder."""
    count = convert.convert_huggingface(args.source, args.out)
    print(
        'converted %s: %d variables, MLM head included, written to %s (use it as --checkpoint-dir)'
        % (convert.describe(args.source), count, args.out),
        file=sys.stderr,
    )


def train(args):
    """``pet-keras train``: the scripts' flow (scripts/sentiment.py) on the task's files."""
    required(args, 'train', 'valid', 'test', 'pattern')
    name = (
        os.path.splitext(os.path.basename(args.task))[0]
        if args.task
        else os.path.basename(os.path.dirname(os.path.abspath(args.train)))
    )
    out = args.out or os.path.join('runs', '%s-%s' % (name, args.mode))
    startup.check_start(args, out)
    strategy = runtime.strategy(args)  # first: multi-worker sets up TensorFlow
    runtime.seed(args.seed)
    runtime.set_precision(args)
    pattern = Pattern(args.pattern)
    data = read_data(args, pattern.fields)
    words = startup.read_label_words(args.label_words) if args.label_words else {}
    labels = task_labels(data, words)
    if len(labels) < 2:
        raise ValueError(
            '%s: every row has the label %r; classification needs at least two labels (rows of another '
            'label, or --label-words naming the others)' % (args.train, labels[0] if labels else None)
        )
    labeled, unlabeled = split_labeled(data['train'], args.labeled_fraction, args.split_seed)
    labeled, unlabeled = training_sets(args.mode, labeled, unlabeled + list(data.get('unlabeled', ())))
    print('labels (%d): %s' % (len(labels), ', '.join(labels)))
    print(
        'labeled %d, unlabeled %d, valid %d, test %d'
        % (len(labeled), len(unlabeled), len(data['valid']), len(data['test']))
    )
    startup.check_data(
        args,
        labeled,
        unlabeled,
        data['train'],
        data['valid'],
        data['test'],
        *[data[split] for split in ('unlabeled',) if split in data],
    )
    checkpoint = load_checkpoint(args)
    pvp = (
        None
        if args.mode == cli.CLASSIFIER
        else PVP(
            pattern,
            task_verbalizer(labels, words, checkpoint.tokenizer, args.aggregation, args.length_norm),
            checkpoint.tokenizer,
            args.maxlen,
        )
    )  # the classifier needs no label words
    return task.fit(args, checkpoint, pvp, labeled, unlabeled, data['valid'], data['test'], out, strategy, labels)


def label_words(args):
    """``pet-keras label-words``: PETAL's search (pet_keras.label_search) on the
    labeled training file, written as the JSON ``--label-words`` reads."""
    required(args, 'train', 'pattern')
    runtime.set_precision(args)
    pattern = Pattern(args.pattern)
    examples = read_data(args, pattern.fields, ('train',))['train']
    checkpoint = load_checkpoint(args)
    mlm = task.build_checkpoint_mlm(args, checkpoint)
    found = search(
        mlm,
        args.pattern,
        checkpoint.tokenizer,
        examples,
        k=args.top_k,
        maxlen=args.maxlen,
        length_norm=args.length_norm,
        batch_size=args.batch_size,
    )
    print_label_words(found)
    write_json(args.out, label_words_json(found))
    print('label words written to %s (pass it as --label-words %s)' % (args.out, args.out))


def data_flags(p, splits=SPLITS, task_file=True, pattern=False):
    """The task's files and how to read them, on parser ``p``; ``pattern``: with --pattern
    (cli.parser has its own)."""
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
        'valid': 'labeled examples that choose the best step',
        'test': 'labeled examples, scored once with the best weights',
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


def required(args, *names):
    missing = ['--' + name for name in names if getattr(args, name) is None]
    if missing:
        raise ValueError('%s required (or in the --task file)' % ', '.join(missing))


def parser():
    p = cli.Parser(prog='pet-keras', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest='command', required=True, metavar='{train,label-words,predict,export,convert}')
    calibrate = dict(
        action=argparse.BooleanOptionalAction,
        default=None,
        help='contextual calibration on or off (default: as the run was evaluated, results.json)',
    )

    tr = commands.add_parser(
        'train',
        help="train PET (or the classifier) on a task's files, no Python",
        description=task.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.parser(None, {}, None, None, labeled_fraction=1, p=tr)
    data_flags(tr)
    tr.set_defaults(run=train)

    lw = commands.add_parser(
        'label-words',
        help='search label words for a task (PETAL), as --label-words JSON',
        description=task.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.model_flags(lw)
    data_flags(lw, ('train',), task_file=False, pattern=True)
    lw.add_argument('--top-k', type=int, default=3, help='words per label (default 3)')
    lw.add_argument('--out', required=True, help='the JSON file to write, label → words')
    lw.add_argument('--maxlen', type=int, default=128)
    lw.add_argument('--batch-size', type=cli.whole(1), default=32, help='examples per scoring batch (default 32)')
    lw.add_argument('--length-norm', action='store_true', help='rank words by their mean token log-probability')
    lw.set_defaults(run=label_words)

    pr = commands.add_parser('predict', help='label texts with a trained model, as JSON lines')
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
    pr.add_argument('--batch-size', type=cli.whole(1), default=64, help='examples per scoring batch (default 64)')
    pr.add_argument('--calibrate', **calibrate)
    cli.output_flags(pr)
    pr.set_defaults(run=predict)

    ex = commands.add_parser('export', help='write a TensorFlow SavedModel for serving')
    ex.add_argument('--model-dir', required=True, help='a run folder written by fit_pet (with pvp.json)')
    ex.add_argument('--out', required=True, help='the SavedModel folder to write')
    ex.add_argument('--calibrate', **calibrate)
    ex.add_argument('--overwrite', action='store_true', help='replace --out when it is not empty (else refused)')
    cli.output_flags(ex)
    ex.set_defaults(run=export)

    co = commands.add_parser(
        'convert',
        help='convert a Hugging Face BERT-family masked LM (safetensors) to the checkpoint folder pet_keras loads',
        description=convert.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    co.set_defaults(run=convert_command)
    return p


def main(argv=None):
    p = parser()
    argv = sys.argv[1:] if argv is None else list(argv)

    def run(args):
        if getattr(args, 'task', None):  # the task file's flags first: those given override them
            args = p.parse_args(argv[:1] + task.task_flags(args.task, cli.long_flags(p, args.command)) + argv[1:])
        return args.run(args)

    cli.main(p, run, argv)
    return 0


if __name__ == '__main__':
    sys.exit(main())
