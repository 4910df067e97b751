"""Alerting and SLOs: rules evaluated on everything Heron stores, notifications that
arrive once, error budgets with burn-rate alerts (docs/alerting.md).

- ``conditions``: a rule's condition → samples (labels, value) at a time, read through
  ``heron.server.query`` (one cycle shares its reads between rules: ``CycleReads``).
- ``evaluator``: the state machine (inactive → pending → firing → resolved, ``for``,
  ``keep_firing_for``, ``recover_threshold``); one cycle persists through
  ``AlertStore.save_evaluation``; a rule that raises is marked broken, never stops it.
- ``slo``: SLI maths, error budget, burn rates, burn-down, the generated burn rules.
- ``preview``: a rule's condition over the last hours ("would have fired at ...").
- ``notify``: grouping, silences, inhibition, repeat and escalation (``dispatch``), the
  outbox with retries (``deliver``), channels, outgoing-URL checks (``ssrf``).
- ``files``: rule files (TOML) loaded at start and on reload; the starter rule set.
- ``engine``: the thread in the jobs role that runs evaluate → dispatch → deliver.
- ``service``: what the API and the UI call (validation, CRUD, SLO status, test sends).
"""
