"""Fixed-length IN lists: padded to a power of two with a value nothing stored can be."""

from meshplane.store.in_lists import PAD, in_list_maker, padded


def test_lists_are_padded_to_a_power_of_two_and_named_per_element() -> None:
    arities, flat = padded({"name": "web", "hosts": ["a", "b", "c"], "none": [], "one": ["x"]})
    assert arities == (("hosts", 4), ("none", 1), ("one", 1))
    assert flat == {
        "name": "web",
        "hosts_0": "a",
        "hosts_1": "b",
        "hosts_2": "c",
        "hosts_3": PAD,
        "none_0": PAD,
        "one_0": "x",
    }
    assert [p.key for p in in_list_maker(arities)("hosts")] == [f"hosts_{i}" for i in range(4)]
