"""Hessian 1 and 2 codec, pure bytes <-> values; knows nothing of billing or Twisted.

Byte-exact with Caucho's Java library 4.0.38: see :mod:`billingcenter.hessian.encoder` for
the reply framing per call envelope and :mod:`billingcenter.hessian.values` for the mapping
between Hessian and Python values.
"""

from billingcenter.hessian.decoder import decode_call, decode_reply, decode_value
from billingcenter.hessian.encoder import (
    encode_call,
    encode_fault,
    encode_reply,
    encode_value,
    reply_version,
)
from billingcenter.hessian.values import (
    Call,
    DecodeError,
    EncodeError,
    Fault,
    HessianError,
    HessianObject,
    Int,
    Long,
    TypedList,
    TypedMap,
)

__all__ = [
    "Call",
    "DecodeError",
    "EncodeError",
    "Fault",
    "HessianError",
    "HessianObject",
    "Int",
    "Long",
    "TypedList",
    "TypedMap",
    "decode_call",
    "decode_reply",
    "decode_value",
    "encode_call",
    "encode_fault",
    "encode_reply",
    "encode_value",
    "reply_version",
]
