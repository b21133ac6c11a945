"""Rating: the pure core that turns usage and order history into charges.

No I/O, no clock: rules, facts and times are passed in.  See ``model`` for the values
and the function contracts each module implements:

* ``ruleset`` -- ``parse_rule_set``: TOML (``conf/rules/README.md``) to a ``RuleSet``;
* ``conditions`` -- ``compile_condition``: a ``[rule.when]`` table to a closure;
  ``predicates`` combines tests, ``index`` finds the rules that could hold;
* ``days`` -- business days, an order's active intervals and account counts;
* ``daily`` -- ``rate_day``: one charge per order per active business day;
* ``usage`` -- ``rate_usage``: one charge per usage record; ``pricing`` holds the
  arithmetic of tiers and increments;
* ``quote`` -- ``quote``: ``getTotalPrice``.
"""
