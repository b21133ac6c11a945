"""Rating: the pure core that turns usage and order history into charges.

No I/O, no clock: rules, facts and times are passed in.  See ``model`` for the values
and the function contracts each module implements.
"""
