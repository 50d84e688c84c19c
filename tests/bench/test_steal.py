"""The hypervisor's steal, recorded with every benchmark run: read from /proc/stat, shown in the
Markdown header next to the load average (runs from before it was recorded show neither)."""

from __future__ import annotations

from bench import markdown, system


def test_steal_is_the_stolen_share_of_all_ticks_between_two_readings() -> None:
    assert system.steal_pct((100, 10_000), (150, 11_000)) == 5.0
    assert system.steal_pct((100, 10_000), (100, 10_000)) == 0.0  # no tick passed: nothing to divide
    stolen, ticks = system.machine_ticks()
    assert 0 <= stolen <= ticks and ticks > 0
    later = system.machine_ticks()
    assert later[0] >= stolen and later[1] >= ticks


def test_the_header_gives_the_median_steal_of_the_runs_that_recorded_it() -> None:
    def result(*steals: float | None) -> dict[str, object]:
        runs = [{} if steal is None else {"steal_pct": steal} for steal in steals]
        return {"cases": [{"servers": {"revurb": {"runs": runs}}}]}

    assert markdown._steal(result(2.0, 20.6, 3.1)) == ", median CPU steal 3 %"
    assert markdown._steal(result(None, None)) == ""
