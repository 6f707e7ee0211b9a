"""Regenerate the reference core (``qsnn_ref.v``, ``qsnn_ref.json``) from ``digits.qsnn``
beside this file: ``python rtl/regenerate.py``."""

from pathlib import Path

from qsnn_hw.hdl.reference import write_reference

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    for p in write_reference(here / "digits.qsnn", here):
        print(f"wrote {p}")
