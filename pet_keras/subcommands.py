"""What each ``pet-keras`` command does once its flags are parsed (``pet_keras.commands``).

Imported only then: it loads TensorFlow, which ``--help`` and a flag error do not wait for.
"""

import contextlib
import json
import os
import sys

from pet_keras import convert, runtime, startup, task
from pet_keras.data import split_labeled
from pet_keras.inputs import READERS, input_format
from pet_keras.io import atomic_path, refuse_overwriting_inputs, write_json
from pet_keras.label_search import label_words_json, print_label_words, search
from pet_keras.modes import CLASSIFIER, training_sets
from pet_keras.pattern import PVP, Pattern
from pet_keras.serving import export_saved_model, load
from pet_keras.task import load_checkpoint, read_data, task_labels, task_verbalizer

OUTPUT_KEYS = ('prediction', 'probabilities')  # added to each input row


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
    required(args, 'train', 'pattern')
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
    valid, test = data.get('valid'), data.get('test')
    print(
        'labeled %d, unlabeled %d, valid %s, test %s'
        % (
            len(labeled),
            len(unlabeled),
            len(valid) if valid is not None else '-',
            len(test) if test is not None else '-',
        )
    )
    startup.check_data(
        args,
        labeled,
        unlabeled,
        data['train'],
        valid,
        test,
        *[data[split] for split in ('unlabeled',) if split in data],
    )
    checkpoint = load_checkpoint(args)
    pvp = (
        None
        if args.mode == CLASSIFIER
        else PVP(
            pattern,
            task_verbalizer(labels, words, checkpoint.tokenizer, args.aggregation, args.length_norm),
            checkpoint.tokenizer,
            args.maxlen,
        )
    )  # the classifier needs no label words
    return task.fit(args, checkpoint, pvp, labeled, unlabeled, valid, test, out, strategy, labels)


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


def required(args, *names):
    missing = ['--' + name for name in names if getattr(args, name) is None]
    if missing:
        raise ValueError('%s required (or in the --task file)' % ', '.join(missing))
