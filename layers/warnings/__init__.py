"""Early warning (预警): 望远镜 for risk across the city, 放大镜 for case reminders, 显微镜 for a unit.

Pure functions over the columnar case table (:mod:`layers.casedata`) and the case rules
(:mod:`layers.rules`, where every deadline lives), in modules named for what they hold:

* :mod:`~layers.warnings.definitions` — every rule written out (Chinese), shown on 指标说明;
* :mod:`~layers.warnings.records` — the one shape of a warning and its stable id;
* :mod:`~layers.warnings.signals` — strong signals (强信号, rule-based, red);
* :mod:`~layers.warnings.surveillance` — surges against a unit's own baseline (弱信号, yellow);
* :mod:`~layers.warnings.hotspots` — emerging hot spots, Getis-Ord Gi* (弱信号, yellow);
* :mod:`~layers.warnings.microscope` — 显微镜: what drives one unit's cases;
* :mod:`~layers.warnings.storage` — warnings as records with states, queries by scope;
* :mod:`~layers.warnings.run` — compute, store, and re-run after every ingest.
"""
