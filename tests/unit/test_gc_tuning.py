"""The server's collector settings: raised thresholds, and start-up objects frozen."""

import gc

from meshplane.gc_tuning import MIDDLE, OLD, YOUNG, server_collector


def test_tuning_raises_the_thresholds_and_freezes_what_exists() -> None:
    thresholds = gc.get_threshold()
    with server_collector():
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0


def test_cycles_are_still_collected() -> None:
    with server_collector():

        class Node:
            other: object = None

        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2
