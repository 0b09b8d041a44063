"""The machine description recorded beside timings."""

from __future__ import annotations

import os

from training.machine import cpu_model, describe_machine

ZEN1 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 1
model name\t: AMD EPYC
flags\t\t: fpu vme

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9654 96-Core Processor
"""


def test_cpu_model_names_the_first_processor_with_its_family_and_model() -> None:
    assert cpu_model(ZEN1) == "AMD EPYC (family 23, model 1)"


def test_cpu_model_without_numbers_is_the_bare_name() -> None:
    assert cpu_model("model name\t: Neoverse-N1\n") == "Neoverse-N1"


def test_describe_machine_counts_the_cores_this_process_may_use() -> None:
    machine = describe_machine()
    assert machine["cores"] == len(os.sched_getaffinity(0))
    assert machine["cpu"] and machine["torch"].startswith("2.")
    assert machine["gpu"] is None or isinstance(machine["gpu"], str)
