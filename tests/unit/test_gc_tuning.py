"""The server's collector settings: raised thresholds, and start-up objects frozen."""

import gc

from meshplane.gc_tuning import MIDDLE, OLD, YOUNG, tune_for_a_server


def test_tuning_raises_the_thresholds_and_freezes_what_exists() -> None:
    thresholds = gc.get_threshold()
    try:
        tune_for_a_server()
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_cycles_are_still_collected() -> None:
    thresholds = gc.get_threshold()
    try:
        tune_for_a_server()

        class Node:
            other: object = None

        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
