"""A short slice of the randomized campaign (tests/dc_stress.py; `make
stress` runs the long one, on the debug kernel): 1,000 valid and
malformed Dynamic Capacity records over two mock DCDs, one region under
cxl_region_sysram and one under cxl_region_dax, checked after every
batch, on the test kernel.  The seed is printed; STRESS_SEED replays
it."""
import os
import random

from cxl import SYSRAM
from dc_stress import Campaign

VM_ARGS = {'mock': True,
           'extra_append': f'{SYSRAM}.online_type=offline'}
FLAVOURS = ('test',)
FLAVOURS_WHY = 'make stress runs 10,000 records on the debug kernel'
S = {}


def test_setup(vm):
    seed = int(os.environ.get('STRESS_SEED') or random.randrange(1 << 32))
    print(f'# stress_slice: seed {seed} (STRESS_SEED={seed} replays it)',
          flush=True)
    S['c'] = Campaign(vm, seed)
    S['c'].setup()


def test_batches_keep_host_and_device_agreeing(vm):
    for _ in range(10):
        S['c'].batch(100)


def test_everything_given_back_at_the_end(vm):
    S['c'].finish()
