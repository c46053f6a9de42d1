"""The calibration's identity split: the table is fitted on one half, judged on the other."""

import numpy as np

from benchmarks.calibrate import Dataset, split_halves
from benchmarks.split import half_of


def test_every_photo_of_an_identity_falls_in_one_half_after_label_corrections():
    names = [f"faces/{who}/{who}_{i:04d}.jpg" for who in ("Ann", "Bob", "Cy", "Fay", "Gus")
             for i in range(3)]
    names.append("faces/Ann_B/Ann_B_0001.jpg")  # one person filed under a second name
    dataset = Dataset(names, [n.split("/")[1] for n in names],
                      np.arange(len(names) * 2, dtype=np.float32).reshape(-1, 2),
                      missed=["faces/Bob/Bob_0009.jpg"])
    corrections = {"Ann_B": ("Ann", "one person under two names")}
    halves = split_halves(dataset, corrections)
    fit, held = halves["fit"], halves["held_out"]
    assert sorted(fit.names + held.names) == sorted(names)
    assert set(fit.identities) == {"Fay", "Gus"} and "Ann_B" in held.identities
    ann = halves[half_of("Ann")]
    assert "faces/Ann_B/Ann_B_0001.jpg" in ann.names  # goes with the person it really is
    for half in (fit, held):
        for name, vector in zip(half.names, half.descriptors, strict=True):
            assert (vector == dataset.descriptors[names.index(name)]).all()
    assert halves[half_of("Bob")].missed == ["faces/Bob/Bob_0009.jpg"]
