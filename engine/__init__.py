"""goldenhour's engine: the incident model, plans, evaluation (and, on top, search and re-planning).

The stable library surface of SPEC §11 is re-exported here.
"""

from .algorithms import Annealing, Descent, Tabu
from .errors import DeltaError, InputError, PlanError, Problem, ScenarioError
from .evaluate import evaluate
from .objective import Objective
from .plan import Plan, Task, load_plan
from .planner import Planner
from .result import Result, Statistics
from .scenario import Scenario, load_scenario
from .solve import Callbacks, solve
from .stop import MaxIterations, MaxRuntime, NoImprovement

__all__ = [
    "Annealing", "Callbacks", "DeltaError", "Descent", "InputError", "MaxIterations", "MaxRuntime", "NoImprovement",
    "Objective", "Plan", "PlanError", "Planner", "Problem", "Result", "Scenario", "ScenarioError", "Statistics", "Tabu",
    "Task", "evaluate", "load_plan", "load_scenario", "solve",
]
