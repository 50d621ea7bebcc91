"""Exercise 4: a map-reduce word count. A solution.

Run it:   python docs/course/ex04_word_count/solution.py
Check it: make course-check EX=4 SOLUTION=1
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


@ray.remote
def map_words(chunk, num_reducers):
    """Count the words of chunk: a tuple of num_reducers dicts, one per partition."""
    partitions = [Counter() for _ in range(num_reducers)]
    for word in words(chunk):
        partitions[partition_of(word, num_reducers)][word] += 1
    return tuple(dict(partition) for partition in partitions)


@ray.remote
def reduce_words(*partial_counts):
    """Add up the counts of one partition, given by every map task."""
    total = Counter()
    for counts in partial_counts:
        total.update(counts)
    return dict(total)


def word_count(chunks, num_reducers):
    """{word: count} over all chunks, by len(chunks) map tasks and num_reducers reduce tasks."""
    mapper = map_words.options(num_returns=num_reducers)
    # map_outputs[m][r]: the ref of map task m's counts for reducer r
    map_outputs = [mapper.remote(chunk, num_reducers) for chunk in chunks]
    reduced = [
        reduce_words.remote(*[outputs[r] for outputs in map_outputs]) for r in range(num_reducers)
    ]
    counts = {}
    for partition in ray.get(reduced):
        counts.update(partition)  # partitions never share a word
    return counts


if __name__ == "__main__":
    ray.init(num_cpus=4)
    chunks = TEXT.splitlines()
    counts = word_count(chunks, 3)
    print("most common:", sorted(counts.items(), key=lambda kv: -kv[1])[:4])
    print("matches a local count:", counts == dict(Counter(words(TEXT))))
    ray.shutdown()
