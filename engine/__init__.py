"""goldenhour's engine: the incident model, plans, evaluation (and, on top, search and re-planning).

The stable library surface of SPEC §11 is re-exported here.
"""

from .errors import DeltaError, PlanError, Problem, ScenarioError
from .evaluate import evaluate
from .objective import Objective
from .plan import Plan, Task, load_plan
from .scenario import Scenario, load_scenario

__all__ = [
    "DeltaError", "Objective", "Plan", "PlanError", "Problem", "Scenario", "ScenarioError", "Task",
    "evaluate", "load_plan", "load_scenario",
]
