#!/usr/bin/env python
"""Write the medical demo samples (DICOM from MedMNIST training images, synthetic headers):

    .venv/bin/python scripts/make_medical_demo_samples.py ../shared/data/medmnist domains/medical/demo
"""

from __future__ import annotations

import sys
from pathlib import Path

from verticals.domains.medical.samples import write_samples

if __name__ == "__main__":
    for written in write_samples(Path(sys.argv[1]), Path(sys.argv[2])):
        print(written)
