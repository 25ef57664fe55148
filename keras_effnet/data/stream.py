"""The positional training stream: example g is a pure function of (seed, g).

A run killed after g examples resumes by starting the stream at g, and sees
exactly what the uninterrupted run would have seen from there on (docs/training.md,
"The run directory, and runs that survive"): the order of each pass is a
stateless permutation keyed by (seed, pass), and every random draw of the
per-example augmentation is keyed by (seed, g).
"""

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def positional_stream(values, labels, encoded, seed, start):
    """Endless training stream where example g is a pure function of (seed, g).

    Pass p = g // n visits the examples in the order of a stateless random
    permutation keyed by (seed, p) (`tf.random.experimental.index_shuffle`),
    so the stream from position `start` on is the same whether a run started
    there or got there: resuming is exact. Yields (image or file bytes,
    label, augmentation seeds).
    """
    n = len(labels)
    values, labels = tf.constant(values), tf.constant(labels)

    def example(g):
        p, i = g // n, g % n
        j = tf.random.experimental.index_shuffle(
            i, seed=tf.stack([tf.cast(seed, tf.int64), p]), max_index=tf.constant(n - 1, tf.int64)
        )
        x = tf.io.read_file(values[j]) if encoded else values[j]
        return x, labels[j], example_seeds(seed, g)

    return tf.data.Dataset.counter(start=start).map(example, num_parallel_calls=AUTOTUNE)


def example_seeds(seed, position):
    """The stateless (crop, flip) seeds of the example at `position` of a run's stream."""
    return tf.stack([[tf.cast(seed, tf.int64), position], [tf.cast(seed, tf.int64) + 1, position]])


def position_seeds(seed, start):
    """Dataset of `example_seeds` for positions `start`, `start` + 1, ... (streamed sources)."""
    return tf.data.Dataset.counter(start=start).map(lambda g: example_seeds(seed, g))
