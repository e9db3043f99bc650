"""Process settings of the ``chromaflow`` command: freed frame buffers are reused, not faulted in again; the
import-time objects leave the collector's scans; neither happens in a process nobody claimed."""

import subprocess
import sys
import textwrap

import pytest

from chromaflow.core import process_tuning

# A model batch's last steps, eight times over: a 1x1 convolution to 484 scores at 64x64 for 8 frames (a 64 MB
# tensor; base's 256-bin logits at batch 8 are half that) and their softmax; prints the page faults of the runs
# after the first. Without the settings glibc maps fresh blocks for both tensors every time, so every run faults
# them in again.
_BATCHES = textwrap.dedent(
    """
    import resource, sys
    import torch
    if sys.argv[1] == "claim":
        from chromaflow.core.process_tuning import claim_process
        assert claim_process()
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    conv, x = torch.nn.Conv2d(16, 484, 1), torch.rand(8, 16, 64, 64)
    with torch.no_grad():
        torch.softmax(conv(x), 1)
        before = faults()
        for _ in range(7):
            torch.softmax(conv(x), 1)
    print(faults() - before)
    """
)


def _batch_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _BATCHES, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, Linux only")
def test_claimed_process_reuses_freed_blocks() -> None:
    plain, claimed = _batch_faults("plain"), _batch_faults("claim")
    pages = 7 * 2 * (8 * 484 * 64 * 64 * 4) // 4096
    assert plain > pages // 2, "glibc's default maps fresh blocks (else this test shows nothing)"
    assert claimed < plain // 4


def test_freeze_only_in_a_claimed_process() -> None:
    code = textwrap.dedent(
        """
        import gc, sys
        from chromaflow.core import process_tuning
        before = gc.get_freeze_count()
        process_tuning.freeze_startup_objects()
        unclaimed = gc.get_freeze_count() - before
        process_tuning.claim_process()
        process_tuning.freeze_startup_objects()
        print(unclaimed, gc.get_freeze_count())
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    unclaimed, claimed = map(int, done.stdout.split())
    assert unclaimed == 0 and claimed > 1000


def test_this_test_process_is_not_claimed() -> None:
    """In-process callers of ``main(argv)`` (the tests) must not change their process: only the console script
    (``main()`` with no arguments) claims it."""
    from chromaflow.plugins.cli.main import main

    assert main(["info"]) == 0
    assert not process_tuning._claimed
