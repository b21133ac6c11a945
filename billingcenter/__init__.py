"""billingcenter: a billing center with a Caucho-compatible Hessian interface."""

__version__ = "0.1.0"
