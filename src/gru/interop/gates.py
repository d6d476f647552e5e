"""The former name of `gru.interop.layout`, kept so that existing imports keep working.

New code imports from `gru.interop.layout`; this module goes once nothing imports it.
"""

from gru.interop.layout import ORDER, gru_from_packed, refuse_variants, reorder

__all__ = ["ORDER", "gru_from_packed", "refuse_variants", "reorder"]
