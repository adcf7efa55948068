"""Label → words: the verbalizer, as data (no tokenizer, no TensorFlow); ``pattern.PVP`` binds
it to a tokenizer and scores it."""

AGGREGATIONS = ('sum', 'mean', 'max')


class Verbalizer:
    """Label → words. A word's score is its log-probability under the MLM at
    the slot (the sum over its tokens of the log-softmax over the vocabulary),
    or with ``length_norm`` that sum divided by its number of tokens (the mean
    token log-probability, which does not favour short words).
    ``aggregation`` combines several words of one label into its score:
    ``sum`` of their probabilities, ``mean`` of their scores (a geometric
    mean), or ``max`` (the likeliest word); the label distribution is the
    scores normalised over the labels."""

    def __init__(self, label_words, aggregation='sum', length_norm=False):
        if not label_words:
            raise ValueError('verbalizer has no labels')
        if aggregation not in AGGREGATIONS:
            raise ValueError('aggregation must be one of %s, got %r' % (AGGREGATIONS, aggregation))
        self.length_norm = bool(length_norm)
        self.label_words = {}
        for label, words in label_words.items():
            words = [words] if isinstance(words, str) else words
            if (
                not isinstance(words, (list, tuple))
                or not words
                or not all(isinstance(w, str) and w.strip() for w in words)
            ):
                raise ValueError(
                    'label %r has no (non-empty) words: expected a word or a list of words, got %r' % (label, words)
                )
            self.label_words[str(label)] = list(words)
        seen = {}
        for label, words in self.label_words.items():
            for word in words:
                if word in seen:  # one word scoring two labels (or twice one) makes the scores ambiguous
                    raise ValueError('label word %r is given twice (labels %r and %r)' % (word, seen[word], label))
                seen[word] = label
        self.labels = list(self.label_words)
        self.aggregation = aggregation

    def __repr__(self):
        return 'Verbalizer(%r, aggregation=%r, length_norm=%r)' % (self.label_words, self.aggregation, self.length_norm)
