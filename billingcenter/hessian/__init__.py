"""Hessian 1 and 2 codec, pure bytes <-> values; knows nothing of billing or Twisted."""

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
]
