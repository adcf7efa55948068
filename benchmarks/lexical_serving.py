#!/usr/bin/env python
"""The lexical expert inside a SavedModel: its TensorFlow scores against scikit-learn's.

`pet-keras export` of a run with the lexical expert scores the text inside the graph
(pet_keras.serving._LexicalScores: scikit-learn's char analyzer, tf-idf and the SVM's weights
in TensorFlow ops). For each task the expert is fitted on the labeled rows as a run fits it
(n-gram range and C chosen on validation), then both score the test texts: the largest
difference of their scores, how often their best label agrees, the wall time of each
(TensorFlow in batches of 64, after one batch has traced the graph), and the size of a
SavedModel that holds only the expert.

    python benchmarks/lexical_serving.py --tasks iflytek --out results
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (imports pet_keras first)
from lexical import load_tasks  # noqa: E402

import tensorflow as tf  # noqa: E402

from pet_keras.lexical import LexicalModel, text_of  # noqa: E402
from pet_keras.serving import _LexicalScores  # noqa: E402

BATCH = 64


def folder_size(folder):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def measure(labeled, valid, test):
    labels = sorted({e.label for e in labeled + valid + test})
    model, record = LexicalModel.fit(labeled, labels, ['text'], valid)
    started = time.perf_counter()
    expected = model.scores(test)
    sklearn_seconds = time.perf_counter() - started
    module = _LexicalScores(model)
    module.serve = tf.function(module.__call__, input_signature=[tf.TensorSpec([None], tf.string, name='text')])
    texts = [text_of(e, ['text']) for e in test]
    module.serve(tf.constant(texts[:BATCH]))
    started = time.perf_counter()
    served = np.concatenate(
        [module.serve(tf.constant(texts[i : i + BATCH])).numpy() for i in range(0, len(texts), BATCH)]
    )
    tensorflow_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as out:
        tf.saved_model.save(module, out, signatures={'serving_default': module.serve})
        size, graph = folder_size(out), os.path.getsize(os.path.join(out, 'saved_model.pb'))
    return {
        'labels': len(labels),
        'ngram_range': record['ngram_range'],
        'C': record['C'],
        'vocabulary': record['vocabulary'],
        'test_texts': len(test),
        'max_abs_difference': float(np.abs(served - expected).max()),
        'best_label_agrees': float(np.mean(served.argmax(1) == expected.argmax(1))),
        'sklearn_seconds': round(sklearn_seconds, 3),
        'tensorflow_seconds': round(tensorflow_seconds, 3),
        'saved_model_mib': round(size / 2**20, 1),
        'saved_model_pb_mib': round(graph / 2**20, 2),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--tasks', nargs='+', choices=('sentiment', 'tnews', 'iflytek'), default=['iflytek'])
    p.add_argument('--data-dir', default=str(common.SHARED / 'datasets'), help='holds sentiment/, tnews/, iflytek/')
    p.add_argument('--out', default=str(common.REPO / 'results'))
    args = p.parse_args(argv)
    record = {
        'command': common.command_line('benchmarks/lexical_serving.py', sys.argv[1:] if argv is None else argv),
        'machine': common.machine_info(),
        'tasks': {},
    }
    for name, (labeled, valid, test) in load_tasks(args.tasks, Path(args.data_dir)).items():
        record['tasks'][name] = measure(labeled, valid, test)
        print(name, record['tasks'][name], flush=True)
        common.write_json(Path(args.out) / 'lexical_serving.json', record)


if __name__ == '__main__':
    main()
