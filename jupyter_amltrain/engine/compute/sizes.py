"""How many GPUs a node of an Azure VM size holds, so v1 ``vm_size`` strings keep their meaning locally.

The table covers the GPU families v1 samples use; CPU families (A, B, D, E, F, L, M series) hold none.
An explicit ``gpus_per_node`` (or ``--gpus``) always wins over the table.
"""

from __future__ import annotations

import re

from jupyter_amltrain.exceptions import ComputeTargetException

GPU_SIZES: dict[str, int] = {
    # NC (K80), NCv2 (P100), NCv3 (V100)
    "standard_nc6": 1, "standard_nc12": 2, "standard_nc24": 4, "standard_nc24r": 4,
    "standard_nc6s_v2": 1, "standard_nc12s_v2": 2, "standard_nc24s_v2": 4, "standard_nc24rs_v2": 4,
    "standard_nc6s_v3": 1, "standard_nc12s_v3": 2, "standard_nc24s_v3": 4, "standard_nc24rs_v3": 4,
    # NCasT4_v3 (T4)
    "standard_nc4as_t4_v3": 1, "standard_nc8as_t4_v3": 1, "standard_nc16as_t4_v3": 1, "standard_nc64as_t4_v3": 4,
    # NC A100 v4, NCads H100 v5
    "standard_nc24ads_a100_v4": 1, "standard_nc48ads_a100_v4": 2, "standard_nc96ads_a100_v4": 4,
    "standard_nc40ads_h100_v5": 1, "standard_nc80adis_h100_v5": 2,
    # ND (P40), NDv2 (V100), ND A100 v4, ND H100 v5
    "standard_nd6s": 1, "standard_nd12s": 2, "standard_nd24s": 4, "standard_nd24rs": 4,
    "standard_nd40rs_v2": 8, "standard_nd96asr_v4": 8, "standard_nd96amsr_a100_v4": 8,
    "standard_nd96isr_h100_v5": 8, "standard_nd96isr_h200_v5": 8,
    # NV (M60)
    "standard_nv6": 1, "standard_nv12": 2, "standard_nv24": 4,
}

_CPU_FAMILY = re.compile(r"^standard_(a|b|d|ds|e|es|f|fs|fx|l|ls|m|dc|ec|h|hb|hc)\d", re.IGNORECASE)
DEFAULT_VM_SIZE = "STANDARD_NC6"


def gpus_for_vm_size(vm_size: str) -> int:
    key = (vm_size or DEFAULT_VM_SIZE).strip().lower()
    if key in GPU_SIZES:
        return GPU_SIZES[key]
    if _CPU_FAMILY.match(key):
        return 0
    raise ComputeTargetException(
        f"Unknown vm_size {vm_size!r}: cannot tell how many GPUs a node holds. Use an Azure size such as "
        "'STANDARD_NC6' (1 GPU), 'STANDARD_NC12' (2), 'STANDARD_NC24' (4), 'STANDARD_ND40RS_V2' (8) or "
        "'STANDARD_D2_V2' (CPU only), or pass gpus_per_node= explicitly."
    )
