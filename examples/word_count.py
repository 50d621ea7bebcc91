"""Map-reduce word count: map tasks split the counting, reduce tasks merge it by key.

Each map task counts the words of one chunk of text and returns one dict per
reduce partition, as separate objects (``num_returns``), so every reducer
fetches only its own share of each map output. A word always goes to the same
partition (a stable hash of the word), so each reducer sees every count of
its words and the partitions never overlap. The result is checked against a
plain count on the driver.

Run: ``python examples/word_count.py``
"""

import re
import zlib
from collections import Counter

import minray as ray

NUM_REDUCERS = 3

TEXT = """\
A task is a function that runs somewhere else. You call it and get back a
reference at once, and the value arrives later. A reference can go into
another task before its value exists, and the runtime waits for the value
before it starts the task that needs it. An actor is a class that runs
somewhere else and keeps its state between calls. Calls from one caller run
in the order they were sent. An object is a value the runtime stores once
and hands to every task that asks for it. Large values live in shared memory
and are read without a copy. The owner of an object is the process that
created it, and it counts the references to the object. When no process
holds a reference, the object is freed. When a worker dies, its task runs
again on another worker. When a task fails, the caller gets the error with
the traceback of the task, and the error is also the type the task raised.
Map tasks count the words of a chunk. Reduce tasks add up the counts of the
words of their partition. The driver puts the partitions together.
"""


def chunks(text, lines_per_chunk=3):
    lines = text.splitlines()
    starts = range(0, len(lines), lines_per_chunk)
    return ["\n".join(lines[i : i + lines_per_chunk]) for i in starts]


def words(text):
    return re.findall(r"[a-z]+", text.lower())


def partition_of(word):
    return zlib.crc32(word.encode()) % NUM_REDUCERS  # stable in every process, unlike hash()


@ray.remote(num_returns=NUM_REDUCERS)
def map_words(chunk):
    partitions = [Counter() for _ in range(NUM_REDUCERS)]
    for word in words(chunk):
        partitions[partition_of(word)][word] += 1
    return tuple(dict(partition) for partition in partitions)


@ray.remote
def reduce_words(*partial_counts):
    total = Counter()
    for counts in partial_counts:
        total.update(counts)
    return dict(total)


def main():
    ray.init(num_cpus=2)
    pieces = chunks(TEXT)
    # map_outputs[m][r]: the ref of map task m's counts for reducer r.
    map_outputs = [map_words.remote(piece) for piece in pieces]
    reduced = [
        reduce_words.remote(*[outputs[r] for outputs in map_outputs]) for r in range(NUM_REDUCERS)
    ]
    counts = {}
    for partition in ray.get(reduced):
        assert not counts.keys() & partition.keys(), "a word reached two reducers"
        counts.update(partition)
    ray.shutdown()

    expected = Counter(words(TEXT))
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
    print(f"{len(pieces)} map tasks, {NUM_REDUCERS} reduce tasks")
    print("most common:", ", ".join(f"{word} {n}" for word, n in top))
    print(
        f"word count: {sum(counts.values())} words, {len(counts)} distinct, "
        f"matches a local count: {counts == dict(expected)}"
    )


if __name__ == "__main__":
    main()
