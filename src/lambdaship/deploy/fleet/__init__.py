"""Many functions in one project: what changed (:mod:`.changes`), deploy them in parallel
(:mod:`.run`), and the fleet's status (:mod:`.status`)."""
