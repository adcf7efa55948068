"""Scoring examples with a PVP: label probabilities from the MLM at the slot."""
import numpy as np
import tensorflow as tf

from pet_keras.compat import keras
from bert4keras.snippets import sequence_padding


class Scorer:
    """Label probabilities for examples.

    By default only the label tokens' logits are computed at the slot
    (``MaskedLM.scoring_model``) and examples are batched by length, so
    padding is small; ``bucket=False`` keeps file order.
    """

    def __init__(self, mlm, pvp, batch_size=64, bucket=True):
        max_position = getattr(mlm.transformer, 'max_position', None)
        if max_position is not None and pvp.maxlen > max_position:
            raise ValueError('maxlen %d exceeds the model\'s %d positions (max_position_embeddings in its config)'
                             % (pvp.maxlen, max_position))
        self.pvp = pvp
        self.batch_size = batch_size
        self.bucket = bucket
        scoring = mlm.scoring_model(pvp.label_token_ids)
        probs = keras.layers.Softmax(name='Label-Probabilities')(
            keras.layers.Lambda(pvp.class_logits, name='Label-Logits')(scoring.output))
        self.model = keras.Model(scoring.inputs, probs, name='pet_classifier')
        self._predict = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def batches(self, encoded):
        """(indices, inputs) batches; lengths padded to a multiple of 8."""
        order = np.argsort([len(e.token_ids) for e in encoded], kind='stable') if self.bucket \
            else np.arange(len(encoded))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            items = [encoded[i] for i in idx]
            length = -(-max(len(e.token_ids) for e in items) // 8) * 8
            yield idx, (sequence_padding([e.token_ids for e in items], length).astype('int32'),
                        sequence_padding([e.segment_ids for e in items], length).astype('int32'),
                        np.array([e.slots for e in items], dtype='int32'))

    def predict_encoded(self, encoded, verbose=True):
        probs = np.zeros((len(encoded), len(self.pvp.labels)), dtype='float32')
        bar = keras.utils.Progbar(len(encoded), unit_name='example') if verbose else None
        done = 0
        for idx, inputs in self.batches(encoded):
            probs[idx] = self._predict(inputs).numpy()
            done += len(idx)
            if bar:
                bar.update(done)
        return probs

    def predict_proba(self, examples, verbose=True):
        """(examples, labels) probabilities, labels in ``pvp.labels`` order."""
        return self.predict_encoded([self.pvp.encode(e) for e in examples], verbose)

    def accuracy(self, examples, verbose=True):
        encoded = [self.pvp.encode(e) for e in examples]
        if any(e.label is None for e in encoded):
            raise ValueError('accuracy needs labeled examples')
        probs = self.predict_encoded(encoded, verbose)
        # a diverged model (non-finite probabilities) gets nothing right
        predicted = np.where(np.isfinite(probs).all(1), probs.argmax(1), -1)
        return float(np.mean(predicted == np.array([e.label for e in encoded])))
