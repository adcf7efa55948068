"""argparse types for the flags' ranges: a value out of range is argparse's one-line usage
error naming the flag, before anything runs."""

import argparse
import math


def whole(low):
    """An argparse type: a whole number >= ``low``."""

    def parse(text):
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError('must be a whole number >= %d, got %s' % (low, text))
        return value

    parse.__name__ = 'whole number'  # argparse's "invalid whole number value: 'x'"
    return parse


def number(low, high, bounds='[]'):
    """An argparse type: a finite number between ``low`` and ``high``, each
    included or not as ``bounds`` says: '(]' is low < x <= high."""

    def parse(text):
        value = float(text)
        if not (
            math.isfinite(value)
            and (low <= value if bounds[0] == '[' else low < value)
            and (value <= high if bounds[1] == ']' else value < high)
        ):
            raise argparse.ArgumentTypeError(
                'must be a number in %s%g, %g%s, got %s' % (bounds[0], low, high, bounds[1], text)
            )
        return value

    parse.__name__ = 'number'
    return parse


POSITIVE = number(0, math.inf, '()')


def share(text):
    """An argparse type: a number in (0, 1), or 'natural' (None)."""
    return None if text == 'natural' else number(0, 1, '()')(text)


share.__name__ = 'share'


def folds(text):
    """An argparse type: 0 (no cross-validation) or a number of folds >= 2."""
    value = whole(0)(text)
    if value == 1:
        raise argparse.ArgumentTypeError('must be 0 (no cross-validation) or at least 2, got 1')
    return value


folds.__name__ = 'whole number'
