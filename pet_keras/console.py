"""The ``pet-keras`` command: use a run folder written by ``fit_pet``.

    pet-keras predict --model-dir runs/sentiment-few-shot-P1 --input reviews.txt --output predictions.jsonl
    pet-keras export --model-dir runs/sentiment-few-shot-P1 --out export/sentiment

``predict`` reads plain text (one text per line), JSON lines (the pattern's
field names as keys; ``text`` also for a one-field pattern; other keys are
not read) or TSV (the pattern's fields as tab-separated columns in order; with
one field the whole line is the text, tabs included). Blank lines and rows
with an empty field are skipped and counted, as the training readers do.
Errors name the file and line. It writes one JSON line per text:
``{<fields>, "label", "probabilities": {label: p}}``.
"""
import argparse
import contextlib
import json
import os
import sys

from pet_keras import cli
from pet_keras.data import Dataset, Example, read_jsonl, read_lines, read_tsv
from pet_keras.predict import export_saved_model, load

FORMATS = {'.jsonl': 'jsonl', '.json': 'jsonl', '.tsv': 'tsv'}  # by extension; anything else is text
OUTPUT_KEYS = ('label', 'probabilities')


def input_format(path, given=None):
    return given or FORMATS.get(os.path.splitext(path)[1].lower(), 'text')


def text_examples(path, fields):
    if len(fields) != 1:
        raise ValueError('%s: the model reads fields %s; plain text gives one per line: use --format jsonl or tsv'
                         % (path, ', '.join(fields)))
    examples, skipped = [], 0
    for number, line in read_lines(path):
        if line.strip():
            examples.append(Example({fields[0]: line.strip()}, None, '%s:%d' % (path, number)))
        else:
            skipped += 1
    return Dataset(examples, skipped, path)


def jsonl_examples(path, fields):
    keys = {name: (name, 'text') if len(fields) == 1 and name != 'text' else name for name in fields}
    return read_jsonl(path, keys, labeled=False)


def tsv_examples(path, fields):
    return read_tsv(path, fields=fields, labeled=False)


READERS = {'text': text_examples, 'jsonl': jsonl_examples, 'tsv': tsv_examples}


def predict(args):
    if not os.path.isfile(args.input):
        raise FileNotFoundError('--input %s: no such file' % args.input)
    predictor = load(args.model_dir, batch_size=args.batch_size, calibrate=args.calibrate)
    clash = [name for name in predictor.fields if name in OUTPUT_KEYS]
    if clash:
        raise ValueError('pattern field {%s} would clash with the output key of that name' % clash[0])
    fmt = input_format(args.input, args.format)
    examples = READERS[fmt](args.input, predictor.fields)
    with contextlib.redirect_stdout(sys.stderr):  # the progress bar must not mix with JSON lines on stdout
        predictions = predictor.predict_examples(examples, verbose=True)
    out = open(args.output, 'w', encoding='utf-8') if args.output else sys.stdout
    try:
        for example, prediction in zip(examples, predictions):
            out.write(json.dumps(dict(example.fields, **prediction), ensure_ascii=False) + '\n')
    finally:
        if args.output:
            out.close()
    print('%d predictions (%s input, %d blank or empty rows skipped) written to %s'
          % (len(predictions), fmt, examples.skipped, args.output or 'stdout'), file=sys.stderr)


def export(args):
    export_saved_model(args.model_dir, args.out, calibrate=args.calibrate, overwrite=args.overwrite)
    print('SavedModel written to %s: signature serving_default(token_ids, segment_ids: int32 [batch, length]) '
          '-> probabilities, label; pvp.json and vocab.txt in %s' % (args.out, os.path.join(args.out, 'assets')),
          file=sys.stderr)


def parser():
    p = cli.Parser(prog='pet-keras', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest='command', required=True, metavar='{predict,export}')
    calibrate = dict(action=argparse.BooleanOptionalAction, default=None,
                     help='contextual calibration on or off (default: as the run was evaluated, results.json)')

    pr = commands.add_parser('predict', help='label texts with a trained model, as JSON lines')
    pr.add_argument('--model-dir', required=True, help='a run folder written by fit_pet (with pvp.json)')
    pr.add_argument('--input', required=True, help='the texts: plain text, JSON lines or TSV')
    pr.add_argument('--output', help='JSON lines file to write (default: stdout)')
    pr.add_argument('--format', choices=sorted(READERS),
                    help='input format (default: by extension: .jsonl/.json jsonl, .tsv tsv, else text)')
    pr.add_argument('--batch-size', type=cli.whole(1), default=64)
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
    return p


def main(argv=None):
    cli.main(parser(), lambda args: args.run(args), argv)
    return 0


if __name__ == '__main__':
    sys.exit(main())
