"""Exercise 4: a map-reduce word count. The task is in README.md, next to this file.

Run it:   python docs/course/ex04_word_count/starter.py
Check it: make course-check EX=4
"""

import re
import zlib
from collections import Counter

import minray as ray

TEXT = """\
It was the best of times, it was the worst of times, it was the age of
wisdom, it was the age of foolishness, it was the epoch of belief, it was
the epoch of incredulity, it was the season of Light, it was the season of
Darkness, it was the spring of hope, it was the winter of despair.
"""


def words(text):
    return re.findall(r"[a-z]+", text.lower())


def partition_of(word, num_reducers):
    """The reducer that counts `word`: the same in every process (unlike hash())."""
    return zlib.crc32(word.encode()) % num_reducers


# TODO: make map_words a task. It returns one dict per reducer: call it as
# map_words.options(num_returns=num_reducers).remote(chunk, num_reducers), which gives
# back one ref per dict, so that each reducer fetches only its own part.
def map_words(chunk, num_reducers):
    """Count the words of chunk: a tuple of num_reducers dicts, one per partition."""
    partitions = [Counter() for _ in range(num_reducers)]
    for word in words(chunk):
        partitions[partition_of(word, num_reducers)][word] += 1
    return tuple(dict(partition) for partition in partitions)


# TODO: make reduce_words a task too.
def reduce_words(*partial_counts):
    """Add up the counts of one partition, given by every map task."""
    total = Counter()
    for counts in partial_counts:
        total.update(counts)
    return dict(total)


def word_count(chunks, num_reducers):
    """{word: count} over all chunks, by len(chunks) map tasks and num_reducers reduce tasks."""
    # TODO: start one map task per chunk; then one reduce task per partition r, given the
    # r-th ref of every map task (refs, not values: no ray.get of the map outputs); then
    # ray.get the reducers' dicts and merge them.
    map_outputs = [map_words(chunk, num_reducers) for chunk in chunks]
    reduced = [reduce_words(*[out[r] for out in map_outputs]) for r in range(num_reducers)]
    counts = {}
    for partition in reduced:
        counts.update(partition)
    return counts


if __name__ == "__main__":
    ray.init(num_cpus=4)
    chunks = TEXT.splitlines()
    counts = word_count(chunks, 3)
    print("most common:", sorted(counts.items(), key=lambda kv: -kv[1])[:4])
    print("matches a local count:", counts == dict(Counter(words(TEXT))))
    ray.shutdown()
