import time

from rich.progress import Progress

from bench.cases import Case
from bench.commands.progress import PhaseColumn, phase_fields
from bench.phase import FIRST_CALL, PhaseEvent


def _case(mixer, kernel, seconds=10.0):
    return Case(mixer, kernel, seconds, "fp32", 1, 1024, 4, "cuda")


def test_first_call_shown_with_a_running_timer_then_the_description_again():
    progress = Progress(PhaseColumn())
    task_id = progress.add_task("sa:sdpa-10s [ok]", total=3)
    fields = phase_fields(_case("kda", "fla"), PhaseEvent(FIRST_CALL, True), first=True)
    fields["phase_started"] = time.monotonic() - 37.2  # as if the call began 37 s ago
    progress.update(task_id, **fields)
    task = progress.tasks[0]
    assert PhaseColumn().render(task).plain == "kda:fla: first call (compiling, autotuning) 37 s"
    progress.update(task_id, **phase_fields(_case("kda", "fla"), PhaseEvent(FIRST_CALL, False), first=True))
    assert PhaseColumn().render(progress.tasks[0]).plain == "sa:sdpa-10s [ok]"


def test_later_cells_and_twins_say_what_their_first_call_is():
    start = PhaseEvent(FIRST_CALL, True)
    assert phase_fields(_case("kda", "fla", 400.0), start, first=False)["phase"] == "kda:fla 400 s: warm-up call"
    assert phase_fields(_case("kda", "torch"), start, first=True)["phase"] == "kda:torch: first call"
