"""What each ``pet-keras`` command does once its flags are parsed (``pet_keras.commands``).

Imported only then: it loads TensorFlow, which ``--help`` and a flag error do not wait for.
"""

import contextlib
import json
import os
import sys

from pet_keras import cli, convert, runner, runtime
from pet_keras.config import RunConfig, TaskSpec, read_label_words
from pet_keras.ensemble import full_pet
from pet_keras.inputs import READERS, input_format
from pet_keras.io import atomic_path, refuse_overwriting_inputs, write_json
from pet_keras.label_search import label_words_json, print_label_words, search
from pet_keras.pattern import Pattern
from pet_keras.serving import export_saved_model, load
from pet_keras.taskfile import SPLITS, read_task_files, task_labels

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
    """``pet-keras train``: the task of the files and flags, run as the scripts run theirs;
    with several --pattern, full PET (``ensemble.full_pet``)."""
    required(args, 'train', 'pattern')
    templates = list(dict.fromkeys(args.pattern))
    if len(templates) == 1:
        changed = ['--' + key for key, value in cli.ENSEMBLE_DEFAULTS.items() if getattr(args, key) != value]
        if changed:
            raise ValueError('%s: for an ensemble, which needs --pattern given several times' % ', '.join(changed))
    name = (
        os.path.splitext(os.path.basename(args.task))[0]
        if args.task
        else os.path.basename(os.path.dirname(os.path.abspath(args.train)))
    )
    config = RunConfig.from_flags(args)  # runner.prepare's default folder: runs/<name>-<mode>
    fields = list(dict.fromkeys(field for template in templates for field in Pattern(template).fields))
    files = {split: getattr(args, split) for split in SPLITS if getattr(args, split) is not None}
    data = read_task_files(files, fields, args.columns, args.label_field)
    words = read_label_words(args.label_words) if args.label_words else {}
    labels = task_labels(data, words)
    if len(labels) < 2:
        raise ValueError(
            '%s: every row has the label %r; classification needs at least two labels (rows of another '
            'label, or --label-words naming the others)' % (args.train, labels[0] if labels else None)
        )
    print('labels (%d): %s' % (len(labels), ', '.join(labels)))
    task = TaskSpec.from_flags(
        args,
        name,
        templates[0],
        {label: words.get(label, label) for label in labels},
        data['train'],
        data.get('valid'),
        data.get('test'),
        data.get('unlabeled', ()),
        named_labels=tuple(label for label in labels if label not in words),
    )
    if len(templates) == 1:
        return runner.run(task, config)
    return full_pet(
        task, config, {t: t for t in templates}, **{key: getattr(args, key) for key in cli.ENSEMBLE_DEFAULTS}
    )


def label_words(args):
    """``pet-keras label-words``: PETAL's search (pet_keras.label_search) on the
    labeled training file, written as the JSON ``--label-words`` reads."""
    required(args, 'train', 'pattern')
    config = RunConfig.from_flags(args)
    runtime.set_precision(config.mixed_precision)
    pattern = Pattern(args.pattern)
    examples = read_task_files({'train': args.train}, pattern.fields, args.columns, args.label_field)['train']
    checkpoint = runner.load_checkpoint(config)
    mlm = runner.build_checkpoint_mlm(config, checkpoint)
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
